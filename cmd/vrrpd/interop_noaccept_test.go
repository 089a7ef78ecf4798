package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// TestInteropNoAccept is no_accept (RFC 5798 §6.1 Accept_Mode false)
// against keepalived 2.2.7: vrrpkit (priority 150) is master, keepalived
// (100) backup, both with the same configuration. With no_accept, or with
// vrrp_strict and no accept, a client on the segment gets no answer from
// the VIP, neither to ping nor to a TCP connect, while the master's own
// address answers both, the master still answers ARP / neighbour
// discovery for the VIP, and VRRP goes on (keepalived stays backup). With
// accept the VIP answers. A clean stop (SIGTERM) removes vrrpkit's
// nftables tables.
func TestInteropNoAccept(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		v6     bool
		vrid   int
		mode   string // the keyword: "no_accept", "accept", or "vrrp_strict" in global_defs
		blocks bool
	}{
		{"ipv4 no_accept", false, 81, "no_accept", true},
		{"ipv6 no_accept", true, 82, "no_accept", true},
		{"ipv4 vrrp_strict", false, 83, "vrrp_strict", true},
		{"ipv4 accept", false, 84, "accept", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testNoAccept(t, c.v6, c.vrid, c.mode, c.blocks)
		})
	}
}

// TestInteropNoAcceptVrrpdCrash: vrrpd, a no_accept master, is SIGKILLed
// (the supervisor lives on). Its table stays, so the VIP it left on eth0
// accepts nothing meanwhile; the restarted vrrpd resumes as master, makes
// its firewall (which replaces the stale table) and blocks the VIP again,
// with no failover.
func TestInteropNoAcceptVrrpdCrash(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha, hb, hc := lab.Host("ra", lan), lab.Host("rb", lan), lab.Host("rc", lan)
	vip := lan.VIP4(1)
	c := inst{vrid: 85, version: 3, interval: 500 * time.Millisecond, vips: []netip.Addr{vip}}
	high, low := c, c
	high.prio, low.prio = 200, 100
	va := startVrrpkit(t, lab, ha, noAcceptConf("ra", "no_accept", high))
	kb := start(t, lab, keepalived, hb, noAcceptConf("rb", "no_accept", low)).(*keepalivedRouter)
	waitElected(t, "VI_1", c.vips, 15*time.Second, va, kb)
	elected := kb.masterEntries("VI_1")
	// The supervisor's resume record comes from vrrpd's event stream.
	if err := va.Proc().WaitLog(`msg="vrrp transition" instance=VI_1 from=BACKUP to=MASTER`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	before, err := va.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	handle := nftTableHandle(t, ha, "ip")
	if handle == "" {
		t.Fatal("ra: no vrrpkit table on the no_accept master")
	}
	killVrrpd(t, va)
	if err := eventually(10*time.Second, func() (bool, string) {
		st, err := va.Instance("VI_1")
		if err != nil {
			return false, err.Error()
		}
		return st.GetState().String() == "VRRP_STATE_MASTER" && st.GetStateSince().AsTime().After(before.GetStateSince().AsTime()),
			"restarted vrrpd is " + st.GetState().String()
	}); err != nil {
		t.Fatal(err)
	}
	if h := nftTableHandle(t, ha, "ip"); h == "" || h == handle {
		t.Fatalf("ra: table handle %q after the resume, was %q: want the restarted vrrpd's own", h, handle)
	}
	if set, err := nftSet(ha, "ip", "vips"); err != nil || !strings.Contains(set, vip.String()) {
		t.Fatalf("ra: resumed master's vips set (err %v):\n%s", err, set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hc.Ping(ctx, vip, 1); err == nil {
		t.Fatal("rc: the resumed no_accept master answers ping to the VIP")
	}
	if !hasVIP(t, ha, vip) || hasVIP(t, hb, vip) {
		t.Errorf("the VIP moved: on ra %v, on rb %v", hasVIP(t, ha, vip), hasVIP(t, hb, vip))
	}
	if n := kb.masterEntries("VI_1") - elected; n != 0 {
		t.Errorf("keepalived became master %d times during the vrrpd crash", n)
	}
}

// noAcceptConf is conf with the accept mode keyword.
func noAcceptConf(routerID, mode string, c inst) string {
	text := conf(routerID, c)
	if mode == "vrrp_strict" {
		return strings.Replace(text, "global_defs {\n", "global_defs {\n  vrrp_strict\n", 1)
	}
	return strings.Replace(text, "  state BACKUP\n", "  state BACKUP\n  "+mode+"\n", 1)
}

func testNoAccept(t *testing.T, v6 bool, vrid int, mode string, blocks bool) {
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha, hb, hc := lab.Host("ra", lan), lab.Host("rb", lan), lab.Host("rc", lan)
	vip, own, family := lan.VIP4(1), ha.IPv4(), "ip"
	if v6 {
		vip, own, family = lan.VIP6(1), ha.IPv6(), "ip6"
	}
	const interval = 200 * time.Millisecond
	c := inst{vrid: vrid, version: 3, interval: interval, vips: []netip.Addr{vip}}
	high, low := c, c
	high.prio, low.prio = 150, 100
	t0 := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(t0).Seconds(), what) }

	const port = 8080
	listenTCP(t, ha, port)
	va := startVrrpkit(t, lab, ha, noAcceptConf("ra", mode, high))
	kb := start(t, lab, keepalived, hb, noAcceptConf("rb", mode, low)).(*keepalivedRouter)
	waitElected(t, "VI_1", []netip.Addr{vip}, 15*time.Second, va, kb)
	// keepalived may have been master before vrrpkit's supervisor was up.
	elected := kb.masterEntries("VI_1")
	step("vrrpkit master, keepalived backup")

	// The table, as keepalived names its sets ("vips").
	set, err := nftSet(ha, family, "vips")
	switch {
	case blocks && err != nil:
		t.Fatalf("ra: no_accept master without its nftables set: %v", err)
	case blocks && !strings.Contains(set, vip.String()):
		t.Errorf("ra: the vips set does not hold %v:\n%s", vip, set)
	case !blocks && err == nil:
		t.Errorf("ra: accepting master has an nftables table:\n%s", set)
	}

	// The master itself answers on its own address either way.
	clientPings(t, hc, own)
	if err := dialTCP(hc, own, port); err != nil {
		t.Fatalf("rc: TCP to the master's own address %v: %v", own, err)
	}
	step("own address answers")

	if blocks {
		for i := 0; i < 3; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := hc.Ping(ctx, vip, 1)
			cancel()
			if err == nil {
				t.Fatalf("rc: ping to the VIP %v answered by a no_accept master", vip)
			}
		}
		if err := dialTCP(hc, vip, port); err == nil {
			t.Fatalf("rc: TCP to the VIP %v connected on a no_accept master", vip)
		}
		// Dropped, yet the VIP resolves to the master: ARP / ND pass.
		mac, err := hc.Neighbor(vip)
		if err != nil || mac.String() != ha.MAC().String() {
			t.Errorf("rc: neighbour %v is %v (err %v), want the master's %v", vip, mac, err, ha.MAC())
		}
		step("VIP dropped")
	} else {
		clientPings(t, hc, vip)
		if err := dialTCP(hc, vip, port); err != nil {
			t.Fatalf("rc: TCP to the VIP %v on an accepting master: %v", vip, err)
		}
		step("VIP answers")
	}

	// VRRP goes on: adverts still leave the master and reach the backup.
	hold := time.Now().Add(10 * interval)
	for time.Now().Before(hold) {
		if st, err := kb.State("VI_1"); err != nil || st != "BACKUP" {
			t.Fatalf("keepalived left BACKUP (%q, %v) while vrrpkit is a no_accept master", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := kb.masterEntries("VI_1") - elected; n != 0 {
		t.Fatalf("keepalived became master %d times after the election", n)
	}
	if st, err := va.State("VI_1"); err != nil || st != "MASTER" {
		t.Fatalf("vrrpkit is %q (%v), want MASTER", st, err)
	}
	step("VRRP unaffected")

	if blocks && !v6 && mode == "no_accept" {
		va = noAcceptCrash(t, lab, ha, kb, va, noAcceptConf("ra", mode, high), vip, family)
		step("crashed, restarted, stale table replaced")
	}

	// A clean stop removes the tables; keepalived takes over.
	if err := va.Proc().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := va.Proc().Wait(10 * time.Second); err != nil {
		t.Errorf("vrrpkit after SIGTERM: %v", err)
	}
	waitNoProcs(t, ha)
	for _, fam := range []string{"ip", "ip6"} {
		if out, err := nftTable(ha, fam); err == nil {
			t.Errorf("ra: table %s vrrpkit still there after vrrpkit stopped:\n%s", fam, out)
		}
	}
	waitState(t, kb, "VI_1", "MASTER", 5*time.Second)
	step("stopped; tables gone")
}

// noAcceptCrash kills vrrpkit (supervisor and vrrpd at once): its table
// stays, still dropping traffic to the VIP it left on eth0 (taken down, as
// a dead machine's link would be). A new vrrpkit replaces the stale table
// with its own (netstate.NewNoAccept) and, master again, blocks the VIP.
func noAcceptCrash(t *testing.T, lab *netlab.Lab, ha *netlab.Host, kb *keepalivedRouter, va *vrrpkitRouter, text string, vip netip.Addr, family string) *vrrpkitRouter {
	t.Helper()
	before := nftTableHandle(t, ha, family)
	va.Crash(t)
	linkDown(t, ha)
	waitState(t, kb, "VI_1", "MASTER", 5*time.Second)
	if h := nftTableHandle(t, ha, family); h != before {
		t.Fatalf("ra: the crashed vrrpd's table is handle %q, was %q", h, before)
	}
	setLink(t, ha, "up")
	va = startVrrpkit(t, lab, ha, text)
	waitElected(t, "VI_1", []netip.Addr{vip}, 15*time.Second, va, kb)
	after := nftTableHandle(t, ha, family)
	if after == "" || after == before {
		t.Fatalf("ra: table handle %q after the restart, was %q: want a new table", after, before)
	}
	if set, err := nftSet(ha, family, "vips"); err != nil || !strings.Contains(set, vip.String()) {
		t.Fatalf("ra: restarted master's vips set (err %v):\n%s", err, set)
	}
	return va
}

// nftTableHandle is the kernel's handle of vrrpkit's table, "" if none.
func nftTableHandle(t *testing.T, h *netlab.Host, family string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "nft", "-a", "list", "table", family, "vrrpkit")
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	_, handle, ok := strings.Cut(first, "# handle ")
	if !ok {
		t.Fatalf("%s: no handle in %q", h, first)
	}
	return strings.TrimSpace(handle)
}

// listenTCP accepts TCP connections on port in h's namespace (any
// address) and closes each at once, until the test ends.
func listenTCP(t *testing.T, h *netlab.Host, port int) {
	t.Helper()
	var ln net.Listener
	if err := h.InNetns(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
}

// dialTCP connects from h's namespace to addr:port within 2s.
func dialTCP(h *netlab.Host, addr netip.Addr, port int) error {
	return h.InNetns(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), 2*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// nftTable lists vrrpkit's table of family in h's namespace; an error when
// it does not exist.
func nftTable(h *netlab.Host, family string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "nft", "list", "table", family, "vrrpkit")
	return string(out), err
}

func nftSet(h *netlab.Host, family, set string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "nft", "list", "set", family, "vrrpkit", set)
	if err == nil && len(out) == 0 {
		err = errors.New("empty listing")
	}
	return string(out), err
}
