package vrrpd

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeVMACs and fakeRoutes record what the engine asks of the kernel.
// A VMAC gets interface index 7, 8, ... in the order made; the base is 1.
type fakeVMACs struct {
	mu    sync.Mutex
	specs map[string]netstate.VMACSpec
	index map[string]int
	made  int
	ops   []string
	// log, if set, also gets each operation (to order them against the
	// firewall's).
	log func(string)
}

func (f *fakeVMACs) Ensure(_ context.Context, s netstate.VMACSpec) (netstate.VMACInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs[s.Name] = s
	if f.index == nil {
		f.index = map[string]int{}
	}
	if f.index[s.Name] == 0 {
		f.index[s.Name] = 7 + f.made
		f.made++
	}
	op := "+" + s.Name
	if s.LinkLocal.IsValid() {
		op += " " + s.LinkLocal.String()
	}
	f.ops = append(f.ops, op)
	if f.log != nil {
		f.log(op)
	}
	return netstate.VMACInfo{Name: s.Name, Index: f.index[s.Name], BaseIndex: 1, HardwareAddr: s.HardwareAddr}, nil
}

func (f *fakeVMACs) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.specs, name)
	delete(f.index, name)
	f.ops = append(f.ops, "-"+name)
	if f.log != nil {
		f.log("-" + name)
	}
	return nil
}

func (f *fakeVMACs) held() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.specs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

type fakeRoutes struct {
	mu     sync.Mutex
	routes map[netstate.Route]bool
	rules  map[netstate.Rule]bool
	ops    []string
}

func (f *fakeRoutes) AddRoute(_ context.Context, r netstate.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[r] = true
	f.ops = append(f.ops, "+route "+r.String())
	return nil
}
func (f *fakeRoutes) RemoveRoute(_ context.Context, r netstate.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, r)
	f.ops = append(f.ops, "-route "+r.String())
	return nil
}
func (f *fakeRoutes) AddRule(_ context.Context, r netstate.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules[r] = true
	f.ops = append(f.ops, "+rule "+r.String())
	return nil
}
func (f *fakeRoutes) RemoveRule(_ context.Context, r netstate.Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rules, r)
	f.ops = append(f.ops, "-rule "+r.String())
	return nil
}
func (f *fakeRoutes) count() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.routes), len(f.rules)
}

// newVMACRig is newRig with fake VMACs and routes.
func newVMACRig(t *testing.T) (*rig, *fakeVMACs, *fakeRoutes) {
	t.Helper()
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	vm := &fakeVMACs{specs: map[string]netstate.VMACSpec{}}
	rt := &fakeRoutes{routes: map[netstate.Route]bool{}, rules: map[netstate.Rule]bool{}}
	r.e = New(Options{Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net, VMACs: vm, Routes: rt})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	return r, vm, rt
}

// newVMACNFTRig is newVMACRig with the fake nftables too, whose ops also
// record the VMACs'.
func newVMACNFTRig(t *testing.T) (*rig, *fakeVMACs, *fakeNFT) {
	t.Helper()
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	nft := newFakeNFT(r.addrs)
	vm := &fakeVMACs{specs: map[string]netstate.VMACSpec{}, log: nft.log}
	rt := &fakeRoutes{routes: map[netstate.Route]bool{}, rules: map[netstate.Rule]bool{}}
	r.e = New(Options{Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net, VMACs: vm, Routes: rt, Firewall: nft.factory})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	t.Cleanup(func() { nft.check(t) })
	return r, vm, nft
}

func vmacVI() *pb.VrrpInstance {
	c := vi1()
	c.UseVmac, c.VmacInterface = true, "vrrp.51"
	c.VirtualRoutes = []*pb.Route{
		{To: "198.51.100.0/24", Via: "192.0.2.254"},
		{To: "203.0.113.0/24", Type: "blackhole", NoTrack: true},
	}
	c.VirtualRules = []*pb.Rule{{From: "192.0.2.100", Table: 100, Priority: 1000}}
	return c
}

func TestVMACFollowsInstanceLifecycle(t *testing.T) {
	r, vm, rt := newVMACRig(t)
	r.apply(t, snapshot(1, vmacVI()))

	// Created at start, in BACKUP already, up (netstate sets it up).
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("state %v, want BACKUP", st)
	}
	if got := vm.held(); !slices.Equal(got, []string{"vrrp.51"}) {
		t.Fatalf("VMACs held in BACKUP: %v, want [vrrp.51]", got)
	}
	spec := vm.specs["vrrp.51"]
	if spec.Base != "eth0" || spec.HardwareAddr.String() != "00:00:5e:00:01:33" || !spec.IPv4Sysctls || !spec.DisableIPv6 || spec.LinkLocal.IsValid() {
		t.Errorf("VMAC spec %+v", spec)
	}
	// The socket is on the VMAC, so adverts carry the virtual MAC.
	r.net.mu.Lock()
	ifaces := []string{}
	for _, c := range r.net.conns {
		ifaces = append(ifaces, c.cfg.Interface)
	}
	r.net.mu.Unlock()
	if !slices.Equal(ifaces, []string{"vrrp.51"}) {
		t.Errorf("sockets on %v, want [vrrp.51]", ifaces)
	}
	if n, m := rt.count(); n != 0 || m != 0 {
		t.Errorf("routes/rules held as BACKUP: %d/%d", n, m)
	}

	// Master: VIP on the VMAC, routes then rules.
	r.clock.advance(t, 4*time.Second)
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("state %v, want MASTER", st)
	}
	if n, m := rt.count(); n != 2 || m != 1 {
		t.Errorf("as MASTER: %d routes, %d rules; want 2, 1", n, m)
	}
	rt.mu.Lock()
	ops := slices.Clone(rt.ops)
	tracked := rt.routes[netstate.Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Gw: netip.MustParseAddr("192.0.2.254"), Protocol: netstate.RouteProtoKeepalived}]
	untracked := rt.routes[netstate.Route{Dst: netip.MustParsePrefix("203.0.113.0/24"), Type: "blackhole"}]
	rt.mu.Unlock()
	if !tracked || !untracked {
		t.Errorf("routes: tracked %v (proto keepalived, no dev), no_track %v (no proto); ops %v", tracked, untracked, ops)
	}
	if ops[len(ops)-1][:5] != "+rule" {
		t.Errorf("rules not added after routes: %v", ops)
	}
	// Announced through the VMAC's own announcer.
	if r.net.announcedCount() == 0 {
		t.Error("no gratuitous ARP on becoming master")
	}

	// A higher priority advert: back to BACKUP, rules then routes go.
	r.received(t, advert(200), peer, 255)
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("state %v, want BACKUP", st)
	}
	if n, m := rt.count(); n != 0 || m != 0 {
		t.Errorf("after leaving MASTER: %d routes, %d rules held", n, m)
	}
	rt.mu.Lock()
	ops = slices.Clone(rt.ops)
	rt.mu.Unlock()
	if ops[3][:5] != "-rule" {
		t.Errorf("rules not removed before routes: %v", ops)
	}
	if got := vm.held(); !slices.Equal(got, []string{"vrrp.51"}) {
		t.Errorf("VMACs held after leaving MASTER: %v", got)
	}

	// Removed from the config: the VMAC goes.
	r.apply(t, snapshot(2))
	if got := vm.held(); len(got) != 0 {
		t.Errorf("VMACs held after the instance was removed: %v", got)
	}
}

func TestVMACAddressesAndShutdown(t *testing.T) {
	r, vm, rt := newVMACRig(t)
	c := vmacVI()
	c.VirtualIpaddress = append(c.VirtualIpaddress, &pb.VirtualAddress{Prefix: "192.0.2.101/32", Dev: "eth0"})
	r.apply(t, snapshot(1, c))
	r.clock.advance(t, 4*time.Second)
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("state %v, want MASTER", st)
	}
	r.e.mu.Lock()
	devs := map[string]string{}
	for _, a := range r.e.instances["VI_1"].addrs {
		devs[a.Prefix.String()] = a.Dev
	}
	r.e.mu.Unlock()
	if devs[vip] != "vrrp.51" || devs["192.0.2.101/32"] != "eth0" {
		t.Errorf("address devices %v: want the VIP without dev on vrrp.51, the one with dev on eth0", devs)
	}
	r.stop()
	if got := vm.held(); len(got) != 0 {
		t.Errorf("VMACs held after shutdown: %v", got)
	}
	if n, m := rt.count(); n != 0 || m != 0 {
		t.Errorf("after shutdown: %d routes, %d rules held", n, m)
	}
}

func TestVMACXmitBaseAndIPv6(t *testing.T) {
	r, vm, _ := newVMACRig(t)
	c := vmacVI()
	c.VmacXmitBase = true
	r.apply(t, snapshot(1, c))
	r.net.mu.Lock()
	iface := r.net.conns[0].cfg.Interface
	r.net.mu.Unlock()
	if iface != "eth0" {
		t.Errorf("vmac_xmit_base: socket on %s, want eth0", iface)
	}
	if got := vm.held(); !slices.Equal(got, []string{"vrrp.51"}) {
		t.Errorf("vmac_xmit_base: VMACs %v, want [vrrp.51] (the VIPs still go there)", got)
	}

	// IPv6: MAC 00:00:5e:00:02:VRID, the base's link-local on the VMAC.
	c6 := vmacVI()
	c6.Name, c6.Ipv6, c6.VmacInterface, c6.Vrid = "VI_6", true, "vrrp.52", 52
	c6.VirtualIpaddress = []*pb.VirtualAddress{{Prefix: "2001:db8::100/64"}}
	c6.VirtualRoutes, c6.VirtualRules = nil, nil
	r.net.mu.Lock()
	r.net.primary = netip.MustParseAddr("fe80::5054:ff:fe12:3456")
	r.net.mu.Unlock()
	r.apply(t, snapshot(2, c, c6))
	vm.mu.Lock()
	s := vm.specs["vrrp.52"]
	vm.mu.Unlock()
	if s.HardwareAddr.String() != "00:00:5e:00:02:34" || s.LinkLocal != netip.MustParseAddr("fe80::5054:ff:fe12:3456") || s.IPv4Sysctls || s.DisableIPv6 {
		t.Errorf("IPv6 VMAC spec %+v", s)
	}
}

func TestRouteOfRuleOf(t *testing.T) {
	for _, c := range []struct {
		in   *pb.Route
		want netstate.Route
		err  bool
	}{
		{in: &pb.Route{To: "0.0.0.0/0", Via: "192.0.2.1", Dev: "eth1", Table: 10, Metric: 5},
			want: netstate.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.1"), Dev: "eth1", Table: 10, Metric: 5, Protocol: 18}},
		{in: &pb.Route{To: "10.0.0.1", Src: "192.0.2.5", NoTrack: true},
			want: netstate.Route{Dst: netip.MustParsePrefix("10.0.0.1/32"), Src: netip.MustParseAddr("192.0.2.5")}},
		{in: &pb.Route{To: "nonsense"}, err: true},
		{in: &pb.Route{To: "10.0.0.0/8", Via: "x"}, err: true},
	} {
		got, err := RouteOf(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("RouteOf(%v) = %+v, %v; want %+v (error %v)", c.in, got, err, c.want, c.err)
		}
	}
	got, err := RuleOf(&pb.Rule{From: "192.0.2.0/24", To: "all", Table: 5, Fwmark: 3})
	if err != nil || got.From != netip.MustParsePrefix("192.0.2.0/24") || got.To.IsValid() || got.Table != 5 || got.Mark != 3 {
		t.Errorf("RuleOf = %+v, %v", got, err)
	}
	if _, err := RuleOf(&pb.Rule{Action: "goto"}); err == nil {
		t.Error("RuleOf(goto): no error")
	}
}

// TestVMACQuieted: a VMAC is quieted (IGMP/MLD reports moved to the base,
// router solicitations dropped) from its creation, in BACKUP already, for
// the instance's family and that of its other addresses, and before an
// IPv6 VMAC gets its link-local; the entries go after the VMAC does
// (keepalived: vrrp_vmac.c firewall_add_vmac / firewall_remove_vmac). The
// firewall exists for use_vmac alone, even with accept.
func TestVMACQuieted(t *testing.T) {
	r, vm, nft := newVMACNFTRig(t)
	c4 := vmacVI()
	c4.Accept = true // no no_accept: the table is there for the VMAC
	c4.VirtualRoutes, c4.VirtualRules = nil, nil
	c6 := vmacVI()
	c6.Name, c6.Ipv6, c6.VmacInterface, c6.Vrid = "VI_6", true, "vrrp.52", 52
	c6.VirtualIpaddress = []*pb.VirtualAddress{{Prefix: "2001:db8::100/64"}}
	c6.VirtualIpaddressExcluded = []*pb.VirtualAddress{{Prefix: "192.0.2.200/32"}} // the other family
	c6.VirtualRoutes, c6.VirtualRules = nil, nil
	r.net.mu.Lock()
	r.net.primary = netip.MustParseAddr("fe80::5054:ff:fe12:3456")
	r.net.mu.Unlock()
	r.apply(t, snapshot(1, c4, c6))
	for _, name := range []string{"VI_1", "VI_6"} {
		if st := r.instance(t, name).GetState(); st != pb.VrrpState_VRRP_STATE_BACKUP {
			t.Fatalf("%s: state %v, want BACKUP", name, st)
		}
	}
	want := []netstate.QuietVMAC{
		{Index: 7, BaseIndex: 1, IPv4: true},
		{Index: 8, BaseIndex: 1, IPv4: true, IPv6: true},
	}
	if got := nft.quieted("vrrpkit"); !slices.Equal(got, want) {
		t.Fatalf("quieted %+v, want %+v", got, want)
	}
	wantOps := []string{
		"new vrrpkit", // the sweep, kept: use_vmac needs it
		"+vrrp.51", "quiet 7 on 1 v4=true v6=false",
		"+vrrp.52", "quiet 8 on 1 v4=true v6=true", "+vrrp.52 fe80::5054:ff:fe12:3456",
	}
	if got := nft.opsSnapshot(); !slices.Equal(got, wantOps) {
		t.Errorf("ops %q, want %q", got, wantOps)
	}

	// VI_6 removed by a reload: its VMAC goes, then its entries.
	r.apply(t, snapshot(2, c4))
	if got := nft.quieted("vrrpkit"); !slices.Equal(got, want[:1]) {
		t.Errorf("quieted after VI_6 went %+v, want %+v", got, want[:1])
	}
	ops := nft.opsSnapshot()
	if i := slices.Index(ops, "-vrrp.52"); i < 0 || !slices.Equal(ops[i:], []string{"-vrrp.52", "unquiet 8"}) {
		t.Errorf("ops %q, want -vrrp.52 then unquiet 8 at the end", ops)
	}
	r.stop()
	if got := vm.held(); len(got) != 0 {
		t.Errorf("VMACs after shutdown: %v", got)
	}
	if names := nft.tableNames(); len(names) != 0 || nft.closed != 1 || len(nft.quieted("vrrpkit")) != 0 {
		t.Errorf("after shutdown: tables %v, %d closed, quieted %v; want none, one, none", names, nft.closed, nft.quieted("vrrpkit"))
	}
}

// TestVMACQuietedAcrossFirewallReplace: a reload that changes the nftables
// table moves the quieted VMACs to the new table.
func TestVMACQuietedAcrossFirewallReplace(t *testing.T) {
	r, _, nft := newVMACNFTRig(t)
	c := vmacVI()
	c.VirtualRoutes, c.VirtualRules = nil, nil
	r.apply(t, snapshot(1, c))
	snap := snapshot(2, c)
	snap.Global = &pb.GlobalDefs{NftablesTable: "other", NftablesPriority: -1}
	r.apply(t, snap)
	want := []netstate.QuietVMAC{{Index: 7, BaseIndex: 1, IPv4: true}}
	if got := nft.quieted("other"); !slices.Equal(got, want) {
		t.Errorf("quieted in the new table %+v, want %+v", got, want)
	}
	if got := nft.quieted("vrrpkit"); len(got) != 0 {
		t.Errorf("quieted in the old table %+v, want it gone", got)
	}
}
