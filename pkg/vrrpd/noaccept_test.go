package vrrpd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeNFT is the kernel's nftables as the engine's firewalls see it: tables
// by name, each the set of addresses it blocks. Making a firewall drops a
// table of its name, as netstate.NewNoAccept drops a crashed vrrpd's. It
// checks the order against the address table: an address is blocked before
// it is added and unblocked after it is removed.
type fakeNFT struct {
	mu       sync.Mutex
	addrs    *fakeAddrs
	tables   map[string]map[netstate.BlockedAddr]bool
	quiet    map[string]map[int]netstate.QuietVMAC // by table, by VMAC index
	made     []FirewallConfig
	closed   int
	ops      []string
	disorder []string
	// anyOrder turns the order check off, for reconciling the addresses
	// of a running master, which it holds throughout.
	anyOrder bool
}

func (f *fakeNFT) setAnyOrder(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.anyOrder = v
}

func newFakeNFT(addrs *fakeAddrs) *fakeNFT {
	return &fakeNFT{addrs: addrs, tables: map[string]map[netstate.BlockedAddr]bool{}, quiet: map[string]map[int]netstate.QuietVMAC{}}
}

func (f *fakeNFT) factory(_ context.Context, cfg FirewallConfig) (VIPFirewall, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tables, cfg.Table)
	delete(f.quiet, cfg.Table)
	f.made = append(f.made, cfg)
	f.ops = append(f.ops, "new "+cfg.Table)
	return &fakeFirewall{nft: f, table: cfg.Table}, nil
}

// held reports whether the address table has a.
func (f *fakeNFT) held(a netip.Addr) bool {
	f.addrs.mu.Lock()
	defer f.addrs.mu.Unlock()
	for p, ok := range f.addrs.held {
		if ok && p.Addr() == a {
			return true
		}
	}
	return false
}

// blocked lists what the table blocks, sorted ("" when it does not exist).
func (f *fakeNFT) blocked(table string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for b := range f.tables[table] {
		out = append(out, b.String())
	}
	sort.Strings(out)
	return out
}

func (f *fakeNFT) tableNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.tables {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (f *fakeNFT) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.disorder {
		t.Error(d)
	}
}

type fakeFirewall struct {
	nft    *fakeNFT
	table  string
	closed bool
}

func (w *fakeFirewall) Block(_ context.Context, addrs ...netstate.BlockedAddr) error {
	f := w.nft
	f.mu.Lock()
	defer f.mu.Unlock()
	if w.closed {
		return fmt.Errorf("closed")
	}
	if f.tables[w.table] == nil {
		f.tables[w.table] = map[netstate.BlockedAddr]bool{}
	}
	for _, b := range addrs {
		if !f.anyOrder && f.held(b.Addr) {
			f.disorder = append(f.disorder, "blocked "+b.String()+" after it was added")
		}
		f.tables[w.table][b] = true
		f.ops = append(f.ops, "block "+b.String())
	}
	return nil
}

func (w *fakeFirewall) Unblock(_ context.Context, addrs ...netstate.BlockedAddr) error {
	f := w.nft
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range addrs {
		if !f.anyOrder && f.held(b.Addr) {
			f.disorder = append(f.disorder, "unblocked "+b.String()+" while it is still held")
		}
		if !f.tables[w.table][b] {
			f.disorder = append(f.disorder, "unblocked "+b.String()+", which is not blocked")
		}
		delete(f.tables[w.table], b)
		f.ops = append(f.ops, "unblock "+b.String())
	}
	return nil
}

func (w *fakeFirewall) QuietVMAC(_ context.Context, v netstate.QuietVMAC) error {
	f := w.nft
	f.mu.Lock()
	defer f.mu.Unlock()
	if w.closed {
		return fmt.Errorf("closed")
	}
	if f.quiet[w.table] == nil {
		f.quiet[w.table] = map[int]netstate.QuietVMAC{}
	}
	f.quiet[w.table][v.Index] = v
	f.ops = append(f.ops, fmt.Sprintf("quiet %d on %d v4=%v v6=%v", v.Index, v.BaseIndex, v.IPv4, v.IPv6))
	return nil
}

func (w *fakeFirewall) UnquietVMAC(_ context.Context, index int) error {
	f := w.nft
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.quiet[w.table][index]; !ok {
		f.disorder = append(f.disorder, fmt.Sprintf("unquieted VMAC %d, which is not quiet", index))
	}
	delete(f.quiet[w.table], index)
	f.ops = append(f.ops, fmt.Sprintf("unquiet %d", index))
	return nil
}

// quieted lists the VMACs the table keeps quiet, by index.
func (f *fakeNFT) quieted(table string) []netstate.QuietVMAC {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netstate.QuietVMAC
	for _, q := range f.quiet[table] {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b netstate.QuietVMAC) int { return a.Index - b.Index })
	return out
}

// log records an operation of another fake among the firewall's.
func (f *fakeNFT) log(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
}

func (f *fakeNFT) opsSnapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

func (w *fakeFirewall) Close() error {
	f := w.nft
	f.mu.Lock()
	defer f.mu.Unlock()
	if !w.closed {
		w.closed = true
		delete(f.tables, w.table)
		delete(f.quiet, w.table)
		f.closed++
		f.ops = append(f.ops, "close "+w.table)
	}
	return nil
}

// newNoAcceptRig is newRig with the fake nftables.
func newNoAcceptRig(t *testing.T) (*rig, *fakeNFT) {
	t.Helper()
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	nft := newFakeNFT(r.addrs)
	r.e = New(Options{Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net, Firewall: nft.factory})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	t.Cleanup(func() { nft.check(t) })
	return r, nft
}

// noAcceptVI is VI_1 with no_accept and an excluded address.
func noAcceptVI() *pb.VrrpInstance {
	c := vi1()
	c.VirtualIpaddressExcluded = []*pb.VirtualAddress{{Prefix: "192.0.2.101/32"}}
	return c
}

func TestNoAcceptBlocksOnlyAsMaster(t *testing.T) {
	r, nft := newNoAcceptRig(t)
	r.apply(t, snapshot(1, noAcceptVI()))
	if got := nft.blocked("vrrpkit"); len(got) != 0 {
		t.Fatalf("blocked as backup: %v", got)
	}
	d := r.clock.sl.settle(t)
	r.clock.advanceTo(t, d)
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("state %v, want MASTER", st)
	}
	want := []string{"192.0.2.100", "192.0.2.101"}
	if got := nft.blocked("vrrpkit"); !slices.Equal(got, want) {
		t.Fatalf("blocked as master %v, want %v (VIPs and excluded VIPs)", got, want)
	}
	if !slices.Equal(nft.made, []FirewallConfig{{Table: "vrrpkit", Priority: -1}}) {
		t.Errorf("firewalls made %v, want one with the defaults", nft.made)
	}

	r.clock.advance(t, 100*time.Millisecond)
	r.received(t, advert(200), peer, 255)
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("state %v after a higher priority advert, want BACKUP", st)
	}
	if got := nft.blocked("vrrpkit"); len(got) != 0 {
		t.Fatalf("still blocked after leaving master: %v", got)
	}

	// Master again, then stop: the addresses go, then the blocks, then
	// the table.
	r.runUntil(t, r.clock.Now().Add(4*time.Second))
	if got := nft.blocked("vrrpkit"); !slices.Equal(got, want) {
		t.Fatalf("blocked as master again %v, want %v", got, want)
	}
	r.stop()
	if names := nft.tableNames(); len(names) != 0 || nft.closed != 1 {
		t.Errorf("after shutdown: tables %v, %d closed; want none left, one closed", names, nft.closed)
	}
	if n := len(nft.made); n != 1 {
		t.Errorf("%d firewalls made, want 1", n)
	}
}

func TestNoAcceptNeverForAcceptOrOwner(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*pb.VrrpInstance)
	}{
		{"accept", func(c *pb.VrrpInstance) { c.Accept = true }},
		{"owner", func(c *pb.VrrpInstance) { c.Priority = 255 }},
		{"owner with accept", func(c *pb.VrrpInstance) { c.Priority, c.Accept = 255, true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, nft := newNoAcceptRig(t)
			c := noAcceptVI()
			tt.edit(c)
			r.apply(t, snapshot(1, c))
			r.runUntil(t, r.clock.Now().Add(5*time.Second))
			if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_MASTER {
				t.Fatalf("state %v, want MASTER", st)
			}
			if !nft.held(netip.MustParseAddr("192.0.2.100")) {
				t.Fatal("the VIP was not added")
			}
			// The first snapshot only sweeps a crashed vrrpd's table.
			if !slices.Equal(nft.ops, []string{"new vrrpkit", "close vrrpkit"}) {
				t.Errorf("firewall ops %v, want only the sweep at start", nft.ops)
			}
		})
	}
}

func TestNoAcceptReload(t *testing.T) {
	r, nft := newNoAcceptRig(t)
	c := noAcceptVI()
	r.master(t, c)

	// An address goes, one comes: blocked before it is added, unblocked
	// after it is removed (fakeNFT checks the order).
	c2 := noAcceptVI()
	c2.VirtualIpaddress = []*pb.VirtualAddress{{Prefix: "192.0.2.102/32"}}
	resp := r.apply(t, snapshot(2, c2))
	if !slices.Equal(resp.GetChanged(), []string{"VI_1"}) || len(resp.GetWarnings()) != 0 {
		t.Fatalf("changed %v, warnings %v: want an in-place change", resp.GetChanged(), resp.GetWarnings())
	}
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.101", "192.0.2.102"}; !slices.Equal(got, want) {
		t.Fatalf("after the reload blocked %v, want %v", got, want)
	}
	if !nft.held(netip.MustParseAddr("192.0.2.102")) || nft.held(netip.MustParseAddr("192.0.2.100")) {
		t.Fatal("the addresses were not changed")
	}

	// dont_track_primary changes in place, and with it how a link-local
	// address is keyed (by name): the old key goes, the new one comes.
	c3 := noAcceptVI()
	c3.VirtualIpaddress = c2.VirtualIpaddress
	c3.VirtualIpaddressExcluded = append(c3.VirtualIpaddressExcluded, &pb.VirtualAddress{Prefix: "fe80::100/64"})
	r.apply(t, snapshot(3, c3))
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.101", "192.0.2.102", "fe80::100%eth0"}; !slices.Equal(got, want) {
		t.Fatalf("blocked %v, want %v", got, want)
	}
	c4 := noAcceptVI()
	c4.VirtualIpaddress, c4.VirtualIpaddressExcluded = c3.VirtualIpaddress, c3.VirtualIpaddressExcluded
	c4.DontTrackPrimary = true
	nft.setAnyOrder(true)
	r.apply(t, snapshot(4, c4))
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.101", "192.0.2.102", "fe80::100%eth0 (by name)"}; !slices.Equal(got, want) {
		t.Fatalf("with dont_track_primary blocked %v, want %v", got, want)
	}
	// nftables_ifindex keys it by index again.
	snap := snapshot(5, c4)
	snap.Global = &pb.GlobalDefs{NftablesTable: "vrrpkit", NftablesPriority: -1, NftablesIfindex: true}
	r.apply(t, snap)
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.101", "192.0.2.102", "fe80::100%eth0"}; !slices.Equal(got, want) {
		t.Fatalf("with nftables_ifindex blocked %v, want %v", got, want)
	}
	nft.setAnyOrder(false)

	// Accept on: nothing blocked (the instance restarts, as the plan says
	// for accept), whatever state it is in afterwards.
	c6 := noAcceptVI()
	c6.Accept = true
	r.apply(t, snapshot(6, c6))
	if got := nft.blocked("vrrpkit"); len(got) != 0 {
		t.Fatalf("with accept blocked %v, want nothing", got)
	}
	r.runUntil(t, r.clock.Now().Add(5*time.Second))
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("state %v, want MASTER", st)
	}
	if got := nft.blocked("vrrpkit"); len(got) != 0 {
		t.Fatalf("accepting master blocked %v, want nothing", got)
	}
	// And off again.
	r.apply(t, snapshot(7, noAcceptVI()))
	r.runUntil(t, r.clock.Now().Add(5*time.Second))
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.100", "192.0.2.101"}; !slices.Equal(got, want) {
		t.Fatalf("no_accept master again blocked %v, want %v", got, want)
	}
}

// TestNoAcceptInPlaceAcceptChange reconciles a running master whose accept
// changes without a restart (the plan restarts it today; Apply must not
// depend on that).
func TestNoAcceptInPlaceAcceptChange(t *testing.T) {
	r, nft := newNoAcceptRig(t)
	r.master(t, noAcceptVI())
	nft.setAnyOrder(true)
	r.e.mu.Lock()
	in := r.e.instances["VI_1"]
	cfg := noAcceptVI()
	cfg.Accept = true
	in.cfg = cfg
	r.e.applyNoAcceptLocked(snapshot(2, cfg))
	r.e.mu.Unlock()
	if got := nft.blocked("vrrpkit"); len(got) != 0 {
		t.Fatalf("accept on: blocked %v, want nothing", got)
	}
	r.e.mu.Lock()
	in.cfg = noAcceptVI()
	r.e.applyNoAcceptLocked(snapshot(3, in.cfg))
	r.e.mu.Unlock()
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.100", "192.0.2.101"}; !slices.Equal(got, want) {
		t.Fatalf("accept off: blocked %v, want %v", got, want)
	}
}

func TestNoAcceptGlobals(t *testing.T) {
	r, nft := newNoAcceptRig(t)
	snap := snapshot(1, noAcceptVI())
	snap.Global = &pb.GlobalDefs{NftablesTable: "fw", NftablesPriority: 0, NftablesCounters: true}
	r.apply(t, snap)
	r.runUntil(t, r.clock.Now().Add(5*time.Second))
	if !slices.Equal(nft.made, []FirewallConfig{{Table: "fw", Priority: 0, Counters: true}}) {
		t.Fatalf("firewalls made %v", nft.made)
	}
	if got := nft.blocked("fw"); len(got) != 2 {
		t.Fatalf("table fw blocks %v", got)
	}
	// Another table at a reload: everything moves to it, the old one goes.
	snap2 := snapshot(2, noAcceptVI())
	snap2.Global = &pb.GlobalDefs{NftablesTable: "fw2", NftablesPriority: 10}
	nft.setAnyOrder(true)
	r.apply(t, snap2)
	if names := nft.tableNames(); !slices.Equal(names, []string{"fw2"}) {
		t.Fatalf("tables %v, want fw2 alone", names)
	}
	if got := nft.blocked("fw2"); len(got) != 2 {
		t.Fatalf("table fw2 blocks %v", got)
	}
	// Same table, another priority: remade.
	snap3 := snapshot(3, noAcceptVI())
	snap3.Global = &pb.GlobalDefs{NftablesTable: "fw2", NftablesPriority: 20}
	r.apply(t, snap3)
	if got := nft.blocked("fw2"); len(got) != 2 {
		t.Fatalf("table fw2 at priority 20 blocks %v", got)
	}
	if last := nft.made[len(nft.made)-1]; last != (FirewallConfig{Table: "fw2", Priority: 20}) {
		t.Fatalf("last firewall made %v", last)
	}
	nft.setAnyOrder(false)
	// Leaving master unblocks in the firewall of now.
	r.received(t, advert(200), peer, 255)
	if got := nft.blocked("fw2"); len(got) != 0 {
		t.Fatalf("backup: fw2 blocks %v", got)
	}
}

// TestNoAcceptResume: a restarted vrrpd resuming as master blocks at once
// (making the firewall removed what the crashed one left).
func TestNoAcceptResume(t *testing.T) {
	r, nft := newNoAcceptRig(t)
	ctx := context.Background()
	for _, p := range []string{vip, "192.0.2.101/32"} {
		if err := r.addrs.Add(ctx, netstate.Address{Prefix: netip.MustParsePrefix(p)}); err != nil {
			t.Fatal(err)
		}
	}
	// The crashed vrrpd's table.
	nft.tables["vrrpkit"] = map[netstate.BlockedAddr]bool{{Addr: netip.MustParseAddr("192.0.2.100")}: true, {Addr: netip.MustParseAddr("192.0.2.99")}: true}
	nft.addrs = newFakeAddrs() // the order check would see the held addresses
	snap := snapshot(1, noAcceptVI())
	snap.ResumeMaster = []string{"VI_1"}
	r.apply(t, snap)
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_MASTER {
		t.Fatalf("state %v, want MASTER", st)
	}
	if got, want := nft.blocked("vrrpkit"), []string{"192.0.2.100", "192.0.2.101"}; !slices.Equal(got, want) {
		t.Fatalf("resumed master blocks %v, want %v", got, want)
	}
}

func TestBlockedAddr(t *testing.T) {
	ll := "fe80::100/64"
	tests := []struct {
		name      string
		va        *pb.VirtualAddress
		vmac      bool
		dontTrack bool
		ifindex   bool
		want      string
	}{
		{name: "IPv4", va: &pb.VirtualAddress{Prefix: "192.0.2.5/24", Dev: "eth1"}, dontTrack: true, want: "192.0.2.5"},
		{name: "IPv6 global", va: &pb.VirtualAddress{Prefix: "2001:db8::5/64"}, dontTrack: true, want: "2001:db8::5"},
		{name: "link-local by index", va: &pb.VirtualAddress{Prefix: ll}, want: "fe80::100%eth0"},
		{name: "link-local on the interface, dont_track_primary", va: &pb.VirtualAddress{Prefix: ll}, dontTrack: true, want: "fe80::100%eth0 (by name)"},
		{name: "nftables_ifindex", va: &pb.VirtualAddress{Prefix: ll}, dontTrack: true, ifindex: true, want: "fe80::100%eth0"},
		{name: "other interface", va: &pb.VirtualAddress{Prefix: ll, Dev: "eth1"}, dontTrack: true, want: "fe80::100%eth1"},
		{name: "other interface, no_track", va: &pb.VirtualAddress{Prefix: ll, Dev: "eth1", NoTrack: true}, dontTrack: true, want: "fe80::100%eth1 (by name)"},
		{name: "VMAC is the instance's interface", va: &pb.VirtualAddress{Prefix: ll}, vmac: true, dontTrack: true, want: "fe80::100%vrrp.51 (by name)"},
		{name: "base interface with VMAC", va: &pb.VirtualAddress{Prefix: ll, Dev: "eth0"}, vmac: true, dontTrack: true, want: "fe80::100%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := vi1()
			c.VirtualIpaddress = []*pb.VirtualAddress{tt.va}
			c.DontTrackPrimary = tt.dontTrack
			if tt.vmac {
				c.UseVmac, c.VmacInterface = true, "vrrp.51"
			}
			in, err := newInstance(c)
			if err != nil {
				t.Fatal(err)
			}
			e := &Engine{}
			e.noAccept.ifindex = tt.ifindex
			if got := e.blockedAddr(in, in.addrs[0]).String(); got != tt.want {
				t.Errorf("blocked as %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNoAcceptDefaultFirewall(t *testing.T) {
	e := &Engine{log: slog.New(slog.DiscardHandler)}
	e.initNoAccept(Options{})
	if e.noAccept.factory == nil {
		t.Error("the real system's engine has no firewall")
	}
	e.initNoAccept(Options{Addresses: newFakeAddrs()})
	if e.noAccept.factory != nil {
		t.Error("an engine with substitute addresses got the real firewall")
	}
}
