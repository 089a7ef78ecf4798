package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// staticsConf is the static_ipaddress / static_routes / static_rules block
// both implementations run; gw is an on-link gateway.
func staticsConf(gw netip.Addr) string {
	return fmt.Sprintf(`static_ipaddress {
  198.51.100.7/24 dev eth0
}
static_routes {
  10.99.0.0/16 via %s dev eth0
  10.98.0.0/16 dev eth0 table 100
}
static_rules {
  from 198.51.100.7/32 table 100 priority 1000
}
`, gw)
}

// hostStatics reports which of the statics of staticsConf are on h.
func hostStatics(t *testing.T, h *netlab.Host) (addr, route, tableRoute, rule bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	run := func(args ...string) string {
		out, err := h.Run(ctx, "ip", args...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	addr = strings.Contains(run("-4", "address", "show", "dev", "eth0"), "inet 198.51.100.7/24 ")
	route = strings.Contains(run("-4", "route", "show", "10.99.0.0/16"), "10.99.0.0/16 via ")
	tableRoute = strings.Contains(run("-4", "route", "show", "table", "100"), "10.98.0.0/16 dev eth0")
	rule = strings.Contains(run("-4", "rule", "show"), "1000:\tfrom 198.51.100.7 lookup 100")
	return
}

func waitStatics(t *testing.T, who string, h *netlab.Host, want bool, timeout time.Duration) {
	t.Helper()
	err := eventually(timeout, func() (bool, string) {
		a, r, tr, ru := hostStatics(t, h)
		return a == want && r == want && tr == want && ru == want,
			fmt.Sprintf("address %v, route %v, table 100 route %v, rule %v; want all %v", a, r, tr, ru, want)
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", who, h, err)
	}
}

// TestInteropStatics: the statics are on the host once vrrpkit runs, even
// as BACKUP, and gone after SIGTERM; keepalived, the master next to it with
// the same statics, behaves the same (vrrp/vrrp_daemon.c: start_vrrp adds
// them whatever the state, vrrp_terminate_phase1 removes them). A vrrpd
// crash keeps them in place: the restarted vrrpd finds them and does not
// remove them to add them again.
func TestInteropStatics(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	seg := lab.Segment("lan")
	ha, hb := lab.Host("ra", seg), lab.Host("rb", seg)
	c := inst{vrid: 63, version: 3, interval: 500 * time.Millisecond, vips: []netip.Addr{seg.VIP4(1)}}
	high, low := c, c
	high.prio, low.prio = 200, 100
	kb := start(t, lab, keepalived, hb, conf("rb", high)+staticsConf(ha.IPv4()))
	waitState(t, kb, "VI_1", "MASTER", 15*time.Second)
	va := startVrrpkit(t, lab, ha, conf("ra", low)+staticsConf(hb.IPv4()))
	waitState(t, va, "VI_1", "BACKUP", 15*time.Second)
	waitStatics(t, "vrrpkit (BACKUP)", ha, true, 5*time.Second)
	waitStatics(t, "keepalived (MASTER)", hb, true, 5*time.Second)

	// A vrrpd crash: the statics stay while the supervisor restarts it,
	// and the new vrrpd holds them (it adopts what it finds in place), so
	// that SIGTERM removes them still.
	crashVrrpdKeepsStatics(t, va)

	for _, r := range []router{va, kb} {
		if err := r.Proc().Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := r.Proc().Wait(15 * time.Second); err != nil {
			t.Errorf("%s after SIGTERM: %v", r.Impl(), err)
		}
		waitStatics(t, fmt.Sprint(r.Impl(), " stopped"), r.Host(), false, 5*time.Second)
	}
}

// crashVrrpdKeepsStatics SIGKILLs vrrpd and checks that the statics stay
// in place while the supervisor restarts it, until the new vrrpd runs.
func crashVrrpdKeepsStatics(t *testing.T, va *vrrpkitRouter) {
	t.Helper()
	ha := va.Host()
	if err := va.Proc().WaitLog(`added route`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	killVrrpd(t, va)
	// Sample the statics until the restarted vrrpd has applied its
	// configuration (its instance started after the kill), and once after.
	err := eventually(15*time.Second, func() (bool, string) {
		if a, r, tr, ru := hostStatics(t, ha); !a || !r || !tr || !ru {
			t.Fatalf("a static went during the vrrpd restart: address %v, route %v, table 100 route %v, rule %v", a, r, tr, ru)
		}
		st, err := va.Instance("VI_1")
		if err != nil {
			return false, err.Error()
		}
		return st.GetState().String() == "VRRP_STATE_BACKUP" && st.GetStateSince().AsTime().After(killedAt),
			"restarted vrrpd is " + st.GetState().String()
	})
	if err != nil {
		t.Fatal(err)
	}
	waitStatics(t, "the restarted vrrpd", ha, true, time.Second)
}
