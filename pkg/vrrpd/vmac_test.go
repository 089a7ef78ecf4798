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
type fakeVMACs struct {
	mu    sync.Mutex
	specs map[string]netstate.VMACSpec
	ops   []string
}

func (f *fakeVMACs) Ensure(_ context.Context, s netstate.VMACSpec) (netstate.VMACInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs[s.Name] = s
	f.ops = append(f.ops, "+"+s.Name)
	return netstate.VMACInfo{Name: s.Name, Index: 7, BaseIndex: 1, HardwareAddr: s.HardwareAddr}, nil
}

func (f *fakeVMACs) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.specs, name)
	f.ops = append(f.ops, "-"+name)
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
