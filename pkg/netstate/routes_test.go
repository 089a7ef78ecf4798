package netstate

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func newRoutesTest(t *testing.T) (*testNS, *Routes) {
	t.Helper()
	n := newTestNS(t)
	log, _ := testLogger(t)
	n.veth(t, "vmacrt0", "vmacrt1")
	n.ip(t, "addr", "add", "192.0.2.1/24", "dev", "vmacrt0")
	return n, NewRoutes(n.h, log)
}

func TestRoutesOwnership(t *testing.T) {
	n, m := newRoutesTest(t)
	ctx := context.Background()
	p := netip.MustParsePrefix
	a := netip.MustParseAddr

	ours := Route{Dst: p("198.51.100.0/24"), Gw: a("192.0.2.254"), Dev: "vmacrt0", Protocol: RouteProtoKeepalived}
	linkRoute := Route{Dst: p("203.0.113.0/25"), Dev: "vmacrt0", Table: 100}
	bh := Route{Dst: p("203.0.113.128/25"), Type: "blackhole", Metric: 7}
	for _, r := range []Route{ours, linkRoute, bh} {
		if err := m.AddRoute(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if out := n.ip(t, "route", "show", "198.51.100.0/24"); !strings.Contains(out, "via 192.0.2.254 dev vmacrt0 proto keepalived") {
		t.Errorf("route 198.51.100.0/24: %q", out)
	}
	if out := n.ip(t, "route", "show", "table", "100"); !strings.Contains(out, "203.0.113.0/25 dev vmacrt0 scope link") {
		t.Errorf("table 100: %q", out)
	}
	// Adding again is fine and changes nothing.
	if err := m.AddRoute(ctx, ours); err != nil {
		t.Errorf("second AddRoute: %v", err)
	}

	// A route that existed before vrrpkit asked for it is not ours.
	n.ip(t, "route", "add", "10.9.0.0/16", "via", "192.0.2.253", "dev", "vmacrt0")
	pre := Route{Dst: p("10.9.0.0/16"), Gw: a("192.0.2.253"), Dev: "vmacrt0"}
	if err := m.AddRoute(ctx, pre); err != nil {
		t.Errorf("AddRoute of an identical existing route: %v", err)
	}
	// A different route under the same key is an error, and not touched.
	if err := m.AddRoute(ctx, Route{Dst: p("10.9.0.0/16"), Gw: a("192.0.2.252"), Dev: "vmacrt0"}); err == nil {
		t.Error("AddRoute over a different existing route: no error")
	}
	if got := len(m.OwnedRoutes()); got != 3 {
		t.Errorf("OwnedRoutes: %d, want 3", got)
	}
	if err := m.RemoveRoute(ctx, pre); err != nil {
		t.Fatal(err)
	}
	if out := n.ip(t, "route", "show", "10.9.0.0/16"); !strings.Contains(out, "via 192.0.2.253") {
		t.Errorf("pre-existing route removed: %q", out)
	}

	for _, r := range []Route{ours, linkRoute, bh} {
		if err := m.RemoveRoute(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if out := n.ip(t, "route", "show", "198.51.100.0/24") + n.ip(t, "route", "show", "table", "100") +
		n.ip(t, "route", "show", "203.0.113.128/25"); strings.TrimSpace(out) != "" {
		t.Errorf("routes left after RemoveRoute: %q", out)
	}
	if len(m.OwnedRoutes()) != 0 {
		t.Errorf("OwnedRoutes after removal: %v", m.OwnedRoutes())
	}

	// Someone else's route with the same destination as one we removed is
	// not ours either: Remove does nothing.
	n.ip(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "vmacrt0")
	if err := m.RemoveRoute(ctx, Route{Dst: p("198.51.100.0/24"), Gw: a("192.0.2.254"), Dev: "vmacrt0"}); err != nil {
		t.Fatal(err)
	}
	if out := n.ip(t, "route", "show", "198.51.100.0/24"); out == "" {
		t.Error("a route vrrpkit did not add was removed")
	}
	// A route of ours deleted behind our back: removal is quiet.
	if err := m.AddRoute(ctx, Route{Dst: p("198.51.100.0/25"), Dev: "vmacrt0"}); err != nil {
		t.Fatal(err)
	}
	n.ip(t, "route", "del", "198.51.100.0/25")
	if err := m.RemoveRoute(ctx, Route{Dst: p("198.51.100.0/25"), Dev: "vmacrt0"}); err != nil {
		t.Errorf("RemoveRoute of a vanished route: %v", err)
	}
}

func TestRulesOwnership(t *testing.T) {
	n, m := newRoutesTest(t)
	ctx := context.Background()
	p := netip.MustParsePrefix
	rules := []Rule{
		{From: p("192.0.2.0/24"), Table: 100, Priority: 1000},
		{To: p("2001:db8::/32"), Table: 101, Priority: 1001},
		{Mark: 0x10, Mask: 0xff, Table: 102, Priority: 1002, IIF: "vmacrt0"},
		{From: p("198.51.100.0/24"), Action: "blackhole", Priority: 1003},
	}
	for _, r := range rules {
		if err := m.AddRule(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	v4, v6 := n.ip(t, "rule", "show"), n.ip(t, "-6", "rule", "show")
	for _, want := range []string{"1000:\tfrom 192.0.2.0/24 lookup 100", "1002:\tfrom all fwmark 0x10/0xff iif vmacrt0 lookup 102", "1003:\tfrom 198.51.100.0/24 blackhole"} {
		if !strings.Contains(v4, want) {
			t.Errorf("ip rule: no %q in\n%s", want, v4)
		}
	}
	if !strings.Contains(v6, "1001:\tfrom all to 2001:db8::/32 lookup 101") {
		t.Errorf("ip -6 rule: %s", v6)
	}
	// Pre-existing identical rule: not ours, left in place.
	n.ip(t, "rule", "add", "pref", "1500", "from", "10.1.0.0/16", "lookup", "200")
	pre := Rule{From: p("10.1.0.0/16"), Table: 200, Priority: 1500}
	if err := m.AddRule(ctx, pre); err != nil {
		t.Errorf("AddRule of an existing rule: %v", err)
	}
	if err := m.RemoveRule(ctx, pre); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(n.ip(t, "rule", "show"), "1500:\tfrom 10.1.0.0/16 lookup 200") {
		t.Error("pre-existing rule removed")
	}
	for _, r := range rules {
		if err := m.RemoveRule(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all := n.ip(t, "rule", "show") + n.ip(t, "-6", "rule", "show")
	for _, gone := range []string{"1000:", "1001:", "1002:", "1003:"} {
		if strings.Contains(all, gone) {
			t.Errorf("rule %s left:\n%s", gone, all)
		}
	}
	if len(m.OwnedRules()) != 0 {
		t.Errorf("OwnedRules after removal: %v", m.OwnedRules())
	}
	for _, bad := range []Rule{{Priority: 1}, {From: p("10.0.0.0/8"), To: p("2001:db8::/32"), Table: 1}, {Action: "goto"}, {Action: "nat", Table: 1}} {
		if err := m.AddRule(ctx, bad); err == nil {
			t.Errorf("AddRule(%+v): no error", bad)
		}
	}
}
