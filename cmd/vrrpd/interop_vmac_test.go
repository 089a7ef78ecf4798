package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// TestInteropVMAC is use_vmac end to end: vrrpkit (priority 150) and
// keepalived (100) both run the instance with use_vmac, as a real
// deployment would. A client on the segment resolves the VIP to the virtual
// MAC 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID, RFC 5798 §7.3), and
// keeps that same entry when vrrpkit crashes and keepalived takes over:
// the point of a VMAC is that the VIP's MAC never changes, only the switch
// port behind it. On vrrpkit's side it checks the macvlan keepalived would
// make (vrrp/vrrp_vmac.c netlink_link_add_vmac: private mode, the virtual
// MAC, addrgenmode none), that the VIP is on it and not on the base, that
// adverts and gratuitous ARP / unsolicited NA leave with the virtual MAC,
// and that a clean stop (SIGTERM) removes the macvlan again.
func TestInteropVMAC(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		v6   bool
		vrid int
	}{
		{"ipv4", false, 71},
		{"ipv6", true, 72},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testVMAC(t, c.v6, c.vrid)
		})
	}
}

func testVMAC(t *testing.T, v6 bool, vrid int) {
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha, hb, hc := lab.Host("ra", lan), lab.Host("rb", lan), lab.Host("rc", lan)
	vip := lan.VIP4(1)
	vmac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, byte(vrid)}
	if v6 {
		vip = lan.VIP6(1)
		vmac[4] = 0x02
	}
	vmacIf := fmt.Sprintf("vrrp.%d", vrid)
	const interval = 200 * time.Millisecond
	c := inst{vrid: vrid, version: 3, interval: interval, vips: []netip.Addr{vip}}
	high, low := c, c
	high.prio, low.prio = 150, 100
	// step logs the test's progress with the time since here, to show
	// where the time goes on a loaded machine.
	t0 := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(t0).Seconds(), what) }
	arpBefore := baseARPSysctls(t, ha)
	if !v6 {
		// The VIP shares eth0's subnet, so a master's replies to the
		// client leave by eth0, and so does the ARP request it makes for
		// the client: "who-has client tell VIP" from eth0's own MAC,
		// which makes the client re-point the VIP at that MAC. keepalived
		// 2.2.7 does exactly the same (it sets arp_ignore/arp_filter on
		// the base, not arp_announce); its doc/source/software_design.rst
		// leaves "well known ARP issues" to the admin. arp_announce=2
		// makes eth0 announce its own address instead.
		for _, h := range []*netlab.Host{ha, hb} {
			setSysctl(t, h, "net/ipv4/conf/eth0/arp_announce", "2")
		}
	}

	// Everything the routers say about the VIP, from the start: the first
	// GARP / NA is sent when vrrpkit becomes master.
	capt := lan.Capture(vmacCaptureFilter)
	va := startVrrpkit(t, lab, ha, vmacConf("ra", high))
	kb := start(t, lab, keepalived, hb, vmacConf("rb", low))
	waitVMACElected(t, vip, vmacIf, va, kb)
	step("vrrpkit master, keepalived backup")

	// The macvlan as keepalived makes it.
	link := vmacLink(t, ha, vmacIf)
	if link == nil {
		t.Fatalf("ra: no %s after vrrpkit became master", vmacIf)
	}
	checkVMACLink(t, ha, link, vmacIf, vmac)
	if ok, err := ha.HasAddr("eth0", vip); err != nil || ok {
		t.Errorf("ra: VIP %v on the base eth0: %v (err %v), want it only on %s", vip, ok, err, vmacIf)
	}
	checkVMACAddrs(t, ha, vmacIf, vip, v6)
	t.Logf("ra: %s: %s mode %s on %s, %s, addrgenmode %s, operstate %s",
		vmacIf, link.LinkInfo.InfoKind, link.LinkInfo.InfoData.Mode, link.Link, link.Address, link.AddrGenMode, link.Operstate)

	// The master's adverts, steadily: each from the virtual MAC.
	advCapt := lan.Capture(vrrpFilter)
	if err := advCapt.WaitPackets(5, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	checkVMACAdverts(t, vmacFrames(t, advCapt), ha, vmac, 150, 5, false)
	step("adverts checked")

	// The client resolves the VIP to the virtual MAC.
	clientPings(t, hc, vip)
	mac, err := hc.Neighbor(vip)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rc: neighbour %v is %v with vrrpkit master", vip, mac)
	if !bytes.Equal(mac, vmac) {
		t.Errorf("rc: neighbour %v is %v with vrrpkit master, want the virtual MAC %v (ra's eth0 is %v)", vip, mac, vmac, ha.MAC())
	}
	step("client resolved")

	// Failover: vrrpkit dies, keepalived's VMAC on rb takes the VIP. ra's
	// eth0 goes down too: a killed vrrpd leaves its macvlan with the VIP,
	// which would otherwise still answer for it.
	va.Crash(t)
	crashAt := time.Now()
	linkDown(t, ha)
	waitState(t, kb, "VI_1", "MASTER", 5*time.Second)
	if err := eventually(5*time.Second, func() (bool, string) {
		ok, err := hb.HasAddr(vmacIf, vip)
		return ok && err == nil, fmt.Sprintf("rb: VIP %v on %s: %v (err %v)", vip, vmacIf, ok, err)
	}); err != nil {
		t.Fatal(err)
	}
	step("keepalived master")
	clientPings(t, hc, vip)
	mac, err = hc.Neighbor(vip)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rc: neighbour %v is %v with keepalived master", vip, mac)
	if !bytes.Equal(mac, vmac) {
		t.Errorf("rc: neighbour %v is %v after failover to keepalived, want the same virtual MAC %v", vip, mac, vmac)
	}
	step("client pinged after failover")
	frames := vmacFrames(t, capt)
	checkVMACAnnouncements(t, frames, ha, hb, vip, vmac, crashAt)
	vmacStray(t, frames, ha, hb, vmac)

	// A clean stop removes the macvlan. The crashed vrrpd left its
	// macvlan behind: the new one adopts it (a private macvlan on eth0 with
	// the virtual MAC, as keepalived reuses "a matching interface").
	setLink(t, ha, "up")
	left := vmacLink(t, ha, vmacIf)
	if left == nil {
		t.Fatalf("ra: the crashed vrrpd's %s is gone", vmacIf)
	}
	capt = lan.Capture(vmacCaptureFilter)
	va = startVrrpkit(t, lab, ha, vmacConf("ra", high))
	waitVMACElected(t, vip, vmacIf, va, kb)
	if l := vmacLink(t, ha, vmacIf); l == nil || l.Ifindex != left.Ifindex {
		t.Errorf("ra: %s was re-created (%+v), want the one left behind (index %d) adopted", vmacIf, l, left.Ifindex)
	} else {
		checkVMACLink(t, ha, l, vmacIf, vmac)
	}
	clientPings(t, hc, vip)
	if mac, err := hc.Neighbor(vip); err != nil || !bytes.Equal(mac, vmac) {
		t.Errorf("rc: neighbour %v is %v (err %v) with vrrpkit master again, want %v", vip, mac, err, vmac)
	}
	step("vrrpkit master again")
	stopAt := time.Now()
	if err := va.Proc().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := va.Proc().Wait(10 * time.Second); err != nil {
		t.Errorf("vrrpkit after SIGTERM: %v", err)
	}
	waitNoProcs(t, ha)
	if l := vmacLink(t, ha, vmacIf); l != nil {
		t.Errorf("ra: %s (%s %s) still there after vrrpkit stopped cleanly", vmacIf, l.LinkInfo.InfoKind, l.Address)
	}
	if ok, err := ha.HasAddr("eth0", vip); err != nil || ok {
		t.Errorf("ra: VIP %v on eth0 after the stop: %v (err %v)", vip, ok, err)
	}
	waitState(t, kb, "VI_1", "MASTER", 5*time.Second)
	clientPings(t, hc, vip)
	if mac, err := hc.Neighbor(vip); err != nil || !bytes.Equal(mac, vmac) {
		t.Errorf("rc: neighbour %v is %v (err %v) after vrrpkit's stop, want %v", vip, mac, err, vmac)
	}
	step("stopped")
	frames = vmacFrames(t, capt)
	checkVMACAdverts(t, frames, ha, vmac, 150, 1, true)
	checkVMACAnnouncements(t, frames, ha, hb, vip, vmac, stopAt)
	vmacStray(t, frames, ha, hb, vmac)
	step("done")
	// The restarted vrrpd saved the base's ARP settings as the crashed one
	// had left them, so it restores those (keepalived, which reads them at
	// start, does the same): only logged.
	t.Logf("ra: eth0 arp_ignore/arp_filter before vrrpkit %s, after crash, restart and clean stop %s",
		arpBefore, baseARPSysctls(t, ha))
}

// vmacCaptureFilter is VRRP plus ARP and IPv6 (NS/NA), where the routers
// say which MAC the VIP has, and IGMP and IPv6's MLD and router
// solicitations, which no VMAC may send (see vmacStray).
const vmacCaptureFilter = vrrpFilter + " or arp or igmp or ip6"

// vmacConf is conf with use_vmac in every instance, its interface named by
// default (vrrp.<VRID>).
func vmacConf(routerID string, instances ...inst) string {
	return strings.ReplaceAll(conf(routerID, instances...), "  interface eth0\n", "  interface eth0\n  use_vmac\n")
}

// waitVMACElected waits until master is MASTER with vip on its VMAC and
// backup is BACKUP with vip nowhere; waitElected looks for the VIP on eth0.
func waitVMACElected(t *testing.T, vip netip.Addr, vmacIf string, master, backup router) {
	t.Helper()
	err := eventually(10*time.Second, func() (bool, string) {
		if ok, why := stateIs(master, "VI_1", "MASTER")(); !ok {
			return false, why
		}
		if ok, why := stateIs(backup, "VI_1", "BACKUP")(); !ok {
			return false, why
		}
		if ok, err := master.Host().HasAddr(vmacIf, vip); err != nil || !ok {
			return false, fmt.Sprintf("%s: VIP %v on %s: %v (err %v)", master.Host(), vip, vmacIf, ok, err)
		}
		for _, dev := range []string{"eth0", vmacIf} {
			if ok, _ := backup.Host().HasAddr(dev, vip); ok {
				return false, fmt.Sprintf("%s: backup holds VIP %v on %s", backup.Host(), vip, dev)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("election: %v", err)
	}
}

// linkDetails is what `ip -d -j link show` says about a macvlan.
type linkDetails struct {
	Ifindex     int    `json:"ifindex"`
	Ifname      string `json:"ifname"`
	Link        string `json:"link"`
	Address     string `json:"address"`
	Operstate   string `json:"operstate"`
	TxQLen      int    `json:"txqlen"`
	AddrGenMode string `json:"inet6_addr_gen_mode"`
	LinkInfo    struct {
		InfoKind string `json:"info_kind"`
		InfoData struct {
			Mode string `json:"mode"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

// vmacLink returns `ip -d link show name` in h's namespace, nil if there is
// no such link.
func vmacLink(t *testing.T, h *netlab.Host, name string) *linkDetails {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// `ip link show` of a missing device fails; list all and pick.
	out, err := h.Run(ctx, "ip", "-d", "-j", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var links []linkDetails
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("%s: ip -d -j link show: %v\n%s", h, err, out)
	}
	for i := range links {
		if links[i].Ifname == name {
			return &links[i]
		}
	}
	return nil
}

func checkVMACLink(t *testing.T, h *netlab.Host, l *linkDetails, name string, vmac net.HardwareAddr) {
	t.Helper()
	if l.LinkInfo.InfoKind != "macvlan" || l.LinkInfo.InfoData.Mode != "private" {
		t.Errorf("%s: %s is %q mode %q, want a macvlan in private mode", h, name, l.LinkInfo.InfoKind, l.LinkInfo.InfoData.Mode)
	}
	if l.Link != "eth0" {
		t.Errorf("%s: %s is on %q, want eth0", h, name, l.Link)
	}
	if mac, err := net.ParseMAC(l.Address); err != nil || !bytes.Equal(mac, vmac) {
		t.Errorf("%s: %s has MAC %q, want %v", h, name, l.Address, vmac)
	}
	if l.AddrGenMode != "none" {
		t.Errorf("%s: %s has addrgenmode %q, want none (no link-local from the virtual MAC, RFC 5798 §7.4)", h, name, l.AddrGenMode)
	}
	// keepalived leaves the kernel's default queue length (1000).
	if l.TxQLen != 1000 {
		t.Errorf("%s: %s has txqueuelen %d, want the kernel's default 1000, as keepalived's", h, name, l.TxQLen)
	}
	if l.Operstate != "UP" && l.Operstate != "UNKNOWN" {
		t.Errorf("%s: %s is %s, want up", h, name, l.Operstate)
	}
}

// checkVMACAddrs: the VMAC holds the VIP and, for IPv6, the base's
// link-local address (the adverts' source, vrrp_vmac.c
// set_link_local_address), and nothing else.
func checkVMACAddrs(t *testing.T, h *netlab.Host, name string, vip netip.Addr, v6 bool) {
	t.Helper()
	addrs, err := h.Addrs(name)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]bool{vip: true}
	if v6 {
		want[h.LinkLocal()] = true
	}
	got := map[netip.Addr]bool{}
	for _, p := range addrs {
		got[p.Addr()] = true
		if !want[p.Addr()] {
			t.Errorf("%s: unexpected address %v on %s (all: %v)", h, p, name, addrs)
		}
	}
	for a := range want {
		if !got[a] {
			t.Errorf("%s: %v is not on %s (all: %v)", h, a, name, addrs)
		}
	}
}

// clientPings waits until h's pings of vip are answered, then wants three
// in a row: just after a takeover the switch may still send the virtual
// MAC to the old port.
func clientPings(t *testing.T, h *netlab.Host, vip netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		if last = h.Ping(ctx, vip, 1); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatal(last)
	}
	if err := h.Ping(ctx, vip, 3); err != nil {
		t.Fatal(err)
	}
}

// vmacFrame is one frame of a capture, with the fields the VMAC checks
// look at; a field the frame lacks is "".
type vmacFrame struct {
	at        time.Time
	ethSrc    string
	ipSrc     string // ip.src or ipv6.src
	vrrpPrio  string // set for VRRP adverts only
	arpSrcIP  string
	arpSrcMAC string
	arpGrat   bool
	arpOp     string
	naTarget  string // icmpv6.type 136 only
	naLLAddr  string
	naSolicit bool
	icmp6Type string
	igmp      bool
}

// vmacFrames stops the capture and decodes it, with one tshark run: under
// load each run takes a second or more.
func vmacFrames(t *testing.T, c *netlab.Capture) []vmacFrame {
	t.Helper()
	rows, err := c.Fields("", "frame.time_epoch", "eth.src", "ip.src", "ipv6.src", "vrrp.prio",
		"arp.src.proto_ipv4", "arp.src.hw_mac", "arp.isgratuitous", "arp.opcode",
		"icmpv6.type", "icmpv6.nd.na.target_address", "icmpv6.opt.linkaddr", "icmpv6.nd.na.flag.s", "igmp.type")
	if err != nil {
		t.Fatal(err)
	}
	flag := func(s string) bool { return s == "1" || strings.EqualFold(s, "true") }
	var out []vmacFrame
	for _, r := range rows {
		at, err := netlab.ParseEpoch(r[0])
		if err != nil {
			t.Fatal(err)
		}
		f := vmacFrame{at: at, ethSrc: r[1], ipSrc: r[2] + r[3], vrrpPrio: r[4],
			arpSrcIP: r[5], arpSrcMAC: r[6], arpGrat: flag(r[7]), arpOp: r[8], icmp6Type: r[9], igmp: r[13] != ""}
		if r[9] == "136" {
			f.naTarget, f.naLLAddr, f.naSolicit = r[10], r[11], flag(r[12])
		}
		out = append(out, f)
	}
	return out
}

// vmacStray fails on any IGMP or MLD report or router solicitation that
// left a VMAC with the virtual MAC as source: wherever a router sends
// them, switches learn the virtual MAC there, so from a backup they pull
// the master's traffic to the backup until the master's next advert.
// keepalived 2.2.7 moves IGMP/MLD reports from a VMAC to its base and
// drops its router solicitations with nftables, whatever the state
// (vrrp/vrrp_nftables.c setup_rule_move_igmp,
// setup_rule_drop_router_solicit; firewall_add_vmac in vrrp_vmac.c), and
// so does vrrpkit (netstate.NoAccept.QuietVMAC). Both routers' VMACs have
// the same MAC, so a frame is told apart by its IP source where it can be.
func vmacStray(t *testing.T, frames []vmacFrame, ha, hb *netlab.Host, vmac net.HardwareAddr) {
	t.Helper()
	seen := map[string]int{}
	for _, f := range frames {
		var what string
		switch {
		case f.igmp:
			what = "IGMP"
		case f.icmp6Type == "143" || f.icmp6Type == "131":
			what = "MLD report"
		case f.icmp6Type == "133":
			what = "router solicitation"
		default:
			continue
		}
		if mac, err := net.ParseMAC(f.ethSrc); err != nil || !bytes.Equal(mac, vmac) {
			continue
		}
		who := "IP source " + f.ipSrc
		switch f.ipSrc {
		case ha.IPv4().String(), ha.LinkLocal().String():
			who = "vrrpkit on " + ha.Name()
		case hb.IPv4().String(), hb.LinkLocal().String():
			who = "keepalived on " + hb.Name()
		}
		seen[what+" from "+who]++
	}
	if len(seen) > 0 {
		t.Errorf("capture: IGMP/MLD/RS sent with the virtual MAC %v (a switch would learn it on the sender's port): %v", vmac, seen)
	}
}

// fromVrrpkit reports whether f is a VRRP advert of vrrpkit on ha.
func (f vmacFrame) fromVrrpkit(ha *netlab.Host) bool {
	return f.vrrpPrio != "" && (f.ipSrc == ha.IPv4().String() || f.ipSrc == ha.LinkLocal().String())
}

// checkVMACAdverts checks vrrpkit's VRRP adverts among frames: at least
// min of them, each from the virtual MAC, of priority vkPrio, or 0 when it
// stops, which wantZero wants to see.
func checkVMACAdverts(t *testing.T, frames []vmacFrame, ha *netlab.Host, vmac net.HardwareAddr, vkPrio, min int, wantZero bool) {
	t.Helper()
	seen := map[string]int{}
	n, zero := 0, 0
	for _, f := range frames {
		if !f.fromVrrpkit(ha) {
			continue
		}
		n++
		seen["eth.src "+f.ethSrc+" prio "+f.vrrpPrio]++
		if f.vrrpPrio == "0" {
			zero++
		} else if f.vrrpPrio != fmt.Sprint(vkPrio) {
			t.Errorf("vrrpkit advert with priority %s, want %d", f.vrrpPrio, vkPrio)
		}
		if mac, err := net.ParseMAC(f.ethSrc); err != nil || !bytes.Equal(mac, vmac) {
			t.Errorf("vrrpkit advert (from %s, priority %s) left with MAC %s, want the virtual MAC %v", f.ipSrc, f.vrrpPrio, f.ethSrc, vmac)
		}
	}
	t.Logf("capture: vrrpkit's adverts: %v", seen)
	if n < min {
		t.Errorf("capture: %d VRRP adverts from vrrpkit, want at least %d (%d frames)", n, min, len(frames))
	}
	if wantZero && zero == 0 {
		t.Errorf("capture: vrrpkit sent no priority 0 advert when it stopped")
	}
}

// checkVMACAnnouncements checks every ARP or NA among frames that speaks
// for the VIP: the frame's source and the address it gives (ARP sender
// hardware address, NA target link-layer address) are the virtual MAC.
// vrrpkit, the master from its first advert until endAt, sent at least
// one gratuitous ARP / unsolicited NA then, and keepalived, the master
// after it, at least one after. (keepalived may also have been master for
// a moment at startup, before vrrpkit's first advert: its announcements
// then do not count for vrrpkit.)
func checkVMACAnnouncements(t *testing.T, frames []vmacFrame, ha, hb *netlab.Host, vip netip.Addr, vmac net.HardwareAddr, endAt time.Time) {
	t.Helper()
	var vkFirst time.Time
	for _, f := range frames {
		if f.fromVrrpkit(ha) && f.vrrpPrio != "0" {
			vkFirst = f.at
			break
		}
	}
	if vkFirst.IsZero() {
		t.Fatalf("capture: no advert from vrrpkit")
	}
	var before, after int
	seen := map[string]int{}
	for _, f := range frames {
		var what, lladdr string
		var unsolicited bool
		switch {
		case f.arpSrcIP == vip.String():
			what, lladdr, unsolicited = "arp op "+f.arpOp, f.arpSrcMAC, f.arpGrat
		case f.naTarget == vip.String():
			what, lladdr, unsolicited = "na", f.naLLAddr, !f.naSolicit
		default:
			continue
		}
		seen[fmt.Sprintf("%s eth.src %s lladdr %s unsolicited %v", what, f.ethSrc, lladdr, unsolicited)]++
		for _, m := range []string{f.ethSrc, lladdr} {
			if mac, err := net.ParseMAC(m); err != nil || !bytes.Equal(mac, vmac) {
				t.Errorf("%s for %v at %s: eth.src %s, lladdr %s, want the virtual MAC %v for both (ra is %v, rb %v)",
					what, vip, f.at.Format(time.StampMicro), f.ethSrc, lladdr, vmac, ha.MAC(), hb.MAC())
				break
			}
		}
		switch {
		case !unsolicited, f.at.Before(vkFirst):
		case f.at.Before(endAt):
			before++
		default:
			after++
		}
	}
	t.Logf("capture: frames announcing %v: %v", vip, seen)
	if before == 0 {
		t.Errorf("capture: vrrpkit sent no gratuitous ARP / unsolicited NA for %v", vip)
	}
	if after == 0 {
		t.Errorf("capture: keepalived sent no gratuitous ARP / unsolicited NA for %v when it took over", vip)
	}
}

// baseARPSysctls reads eth0's arp_ignore and arp_filter in h's namespace.
func baseARPSysctls(t *testing.T, h *netlab.Host) string {
	t.Helper()
	var vals []string
	err := h.InNetns(func() error {
		for _, k := range []string{"arp_ignore", "arp_filter"} {
			b, err := os.ReadFile("/proc/sys/net/ipv4/conf/eth0/" + k)
			if err != nil {
				return err
			}
			vals = append(vals, strings.TrimSpace(string(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(vals, "/")
}

// setSysctl writes a /proc/sys value in h's namespace.
func setSysctl(t *testing.T, h *netlab.Host, key, value string) {
	t.Helper()
	if err := h.InNetns(func() error { return os.WriteFile("/proc/sys/"+key, []byte(value), 0) }); err != nil {
		t.Fatal(err)
	}
}
