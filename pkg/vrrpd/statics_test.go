package vrrpd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// adoptingRoutes is fakeRoutes with a RouteAdopter and routes or rules
// whose add fails, by their String.
type adoptingRoutes struct {
	*fakeRoutes
	mu      sync.Mutex
	fail    map[string]bool
	adopted []string
}

func (a *adoptingRoutes) failing(s string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail[s] = on
}

func (a *adoptingRoutes) refused(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fail[s]
}

func (a *adoptingRoutes) AddRoute(ctx context.Context, r netstate.Route) error {
	if a.refused(r.String()) {
		return errors.New("netstate: add route " + r.String() + ": file exists")
	}
	return a.fakeRoutes.AddRoute(ctx, r)
}

func (a *adoptingRoutes) AddRule(ctx context.Context, r netstate.Rule) error {
	if a.refused(r.String()) {
		return errors.New("netstate: add rule " + r.String() + ": invalid argument")
	}
	return a.fakeRoutes.AddRule(ctx, r)
}

func (a *adoptingRoutes) AdoptRoute(r netstate.Route) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.adopted = append(a.adopted, "route "+r.String())
}

func (a *adoptingRoutes) AdoptRule(r netstate.Rule) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.adopted = append(a.adopted, "rule "+r.String())
}

func (a *adoptingRoutes) adoptedCopy() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.adopted)
}

// syncBuffer is a log sink for the engine's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newStaticsRig is newRig with adoptingRoutes and a log kept in a buffer.
func newStaticsRig(t *testing.T) (*rig, *adoptingRoutes, *syncBuffer) {
	t.Helper()
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	rt := &adoptingRoutes{fakeRoutes: &fakeRoutes{routes: map[netstate.Route]bool{}, rules: map[netstate.Rule]bool{}}, fail: map[string]bool{}}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.e = New(Options{Log: log, Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net, VMACs: &fakeVMACs{specs: map[string]netstate.VMACSpec{}}, Routes: rt})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	return r, rt, logs
}

func (f *fakeRoutes) opsCopy() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

func staticSnap(gen uint64) *pb.ConfigSnapshot {
	s := snapshot(gen, vi1())
	s.StaticIpaddress = []*pb.VirtualAddress{{Prefix: "198.51.100.7/24", Dev: "eth1"}}
	s.StaticRoutes = []*pb.Route{
		{DefinedAt: "k.conf:10", To: "10.9.0.0/16", Via: "198.51.100.254", Dev: "eth1"},
		{DefinedAt: "k.conf:11", To: "10.10.0.0/16", Type: "blackhole", NoTrack: true},
	}
	s.StaticRules = []*pb.Rule{{DefinedAt: "k.conf:14", From: "198.51.100.7/32", Table: 100}}
	return s
}

const (
	stRoute1 = "10.9.0.0/16 via 198.51.100.254 dev eth1 proto 18"
	stRoute2 = "blackhole 10.10.0.0/16"
	stRoute3 = "10.11.0.0/16 dev eth1 proto 18"
	stRule   = "from 198.51.100.7/32 lookup 100"
)

// TestStaticsLifecycle: the statics are added at the first apply whatever
// the VRRP state (addresses, routes, rules), a reload touches only what
// changed, and the engine's end removes them (rules, routes, addresses),
// as keepalived's start_vrrp, clear_diff_static_* and
// vrrp_terminate_phase1 do.
func TestStaticsLifecycle(t *testing.T) {
	r, rt, _ := newStaticsRig(t)
	r.apply(t, staticSnap(1))
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Fatalf("VI_1 is %v, want BACKUP (statics do not depend on the state)", st)
	}
	if got, want := r.addrs.opsCopy(), []string{"+198.51.100.7/24"}; !slices.Equal(got, want) {
		t.Errorf("addresses after start: %q, want %q", got, want)
	}
	if got, want := rt.opsCopy(), []string{"+route " + stRoute1, "+route " + stRoute2, "+rule " + stRule}; !slices.Equal(got, want) {
		t.Errorf("routes after start: %q, want %q", got, want)
	}
	if got, want := rt.adoptedCopy(), []string{"route " + stRoute1, "route " + stRoute2, "rule " + stRule}; !slices.Equal(got, want) {
		t.Errorf("adopted: %q, want %q", got, want)
	}

	// Reload: the blackhole route goes, a new route comes, the rest stays.
	s2 := staticSnap(2)
	s2.StaticRoutes[1] = &pb.Route{DefinedAt: "k.conf:11", To: "10.11.0.0/16", Dev: "eth1"}
	r.apply(t, s2)
	if got, want := rt.opsCopy()[3:], []string{"-route " + stRoute2, "+route " + stRoute3}; !slices.Equal(got, want) {
		t.Errorf("routes after reload: %q, want %q", got, want)
	}
	if got := r.addrs.opsCopy(); len(got) != 1 {
		t.Errorf("addresses after reload: %q, want the first add only", got)
	}
	// The same generation again changes nothing.
	r.apply(t, s2)
	if n := len(rt.opsCopy()); n != 5 {
		t.Errorf("re-applying the running snapshot made %d route operations, want none: %q", n-5, rt.opsCopy()[5:])
	}

	r.stop()
	if got, want := rt.opsCopy()[5:], []string{"-rule " + stRule, "-route " + stRoute1, "-route " + stRoute3}; !slices.Equal(got, want) {
		t.Errorf("routes at stop: %q, want %q", got, want)
	}
	if got, want := r.addrs.opsCopy()[1:], []string{"-198.51.100.7/24"}; !slices.Equal(got, want) {
		t.Errorf("addresses at stop: %q, want %q", got, want)
	}
	if nr, nl := rt.count(); nr != 0 || nl != 0 {
		t.Errorf("%d routes and %d rules left after stop", nr, nl)
	}
}

// TestStaticsFailures: a static that cannot be added is logged with where
// it is defined and does not fail the apply; the next apply tries it
// again. A static address without dev is refused and logged.
func TestStaticsFailures(t *testing.T) {
	r, rt, logs := newStaticsRig(t)
	rt.failing(stRoute1, true)
	s := staticSnap(1)
	s.StaticIpaddress = append(s.StaticIpaddress, &pb.VirtualAddress{Prefix: "203.0.113.1/32"})
	r.apply(t, s)
	if got, want := rt.opsCopy(), []string{"+route " + stRoute2, "+rule " + stRule}; !slices.Equal(got, want) {
		t.Errorf("routes: %q, want %q", got, want)
	}
	if l := logs.String(); !strings.Contains(l, `msg="adding static route"`) || !strings.Contains(l, "defined_at=k.conf:10") {
		t.Errorf("no error with defined_at logged for the refused route:\n%s", l)
	}
	if l := logs.String(); !strings.Contains(l, `msg="ignoring static address" address=203.0.113.1/32`) {
		t.Errorf("the static address without dev was not reported:\n%s", l)
	}
	if got := r.addrs.opsCopy(); !slices.Equal(got, []string{"+198.51.100.7/24"}) {
		t.Errorf("addresses: %q", got)
	}
	if st := r.instance(t, "VI_1").GetState(); st != pb.VrrpState_VRRP_STATE_BACKUP {
		t.Errorf("VI_1 is %v, want BACKUP", st)
	}

	// Still refused at the next apply: tried again, nothing else redone.
	r.apply(t, staticSnap(2))
	if got := rt.opsCopy(); len(got) != 2 {
		t.Errorf("routes after a reload while the route is refused: %q", got)
	}
	if n := strings.Count(logs.String(), `msg="adding static route"`); n != 2 {
		t.Errorf("the refused route was tried %d times, want 2", n)
	}
	rt.failing(stRoute1, false)
	r.apply(t, staticSnap(3))
	if got, want := rt.opsCopy()[2:], []string{"+route " + stRoute1}; !slices.Equal(got, want) {
		t.Errorf("routes once the route can be added: %q, want %q", got, want)
	}
	r.stop()
	if nr, nl := rt.count(); nr != 0 || nl != 0 {
		t.Errorf("%d routes and %d rules left after stop", nr, nl)
	}
}

// TestStaticsKeptOnRefusedSnapshot: a snapshot refused whole changes no
// static.
func TestStaticsKeptOnRefusedSnapshot(t *testing.T) {
	r, rt, _ := newStaticsRig(t)
	r.apply(t, staticSnap(1))
	bad := staticSnap(2)
	bad.StaticRoutes = nil
	bad.Instances = append(bad.Instances, vi1()) // VI_1 twice
	if _, err := r.e.Apply(context.Background(), bad); err == nil {
		t.Fatal("a snapshot with VI_1 twice was accepted")
	}
	if got := rt.opsCopy(); len(got) != 3 {
		t.Errorf("route operations after a refused snapshot: %q, want the 3 adds only", got)
	}
}
