package checkerd

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeAddrs is the host's addresses, changed by the test.
type fakeAddrs struct {
	initial []hostAddr
	changes chan fakeChange
}

type fakeChange struct {
	a       hostAddr
	present bool
}

func (f *fakeAddrs) Watch(ctx context.Context, reset func(), fn func(hostAddr, bool), listed func()) {
	reset()
	for _, a := range f.initial {
		fn(a, true)
	}
	listed()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-f.changes:
			fn(c.a, c.present)
		}
	}
}

// TestHASuspend: the checker of a virtual server with ha_suspend runs only
// while the virtual server's address is on the host; the other virtual
// server's checker runs throughout (keepalived check_api.c
// update_checker_activity).
func TestHASuspend(t *testing.T) {
	a, b := listenTCP(t, "127.0.0.1:0"), listenTCP(t, "127.0.0.1:0")
	vip := hostAddr{ifindex: 2, addr: netip.MustParseAddr("192.0.2.100")}
	src := &fakeAddrs{changes: make(chan fakeChange)}
	r := newRealServers(slog.New(slog.DiscardHandler), check.SnapshotOptions{}, 0)
	r.ha.src = src
	t.Cleanup(r.close)

	const loop = 100 * time.Millisecond
	snap := func(gen uint64, haSuspend bool) *pb.ConfigSnapshot {
		return &pb.ConfigSnapshot{Generation: gen, VirtualServers: []*pb.VirtualServer{
			{Name: "192.0.2.100:80/TCP", HaSuspend: haSuspend,
				Services:    []*pb.LvsService{{Family: "inet", Address: "192.0.2.100", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP}},
				RealServers: []*pb.LvsRealServer{{HealthId: "ha " + a.addr, Checkers: []*pb.LvsChecker{tcpChecker(a.addr, "k.conf:3", loop)}}}},
			{Name: "192.0.2.101:80/TCP",
				Services:    []*pb.LvsService{{Family: "inet", Address: "192.0.2.101", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP}},
				RealServers: []*pb.LvsRealServer{{HealthId: "plain " + b.addr, Checkers: []*pb.LvsChecker{tcpChecker(b.addr, "k.conf:9", loop)}}}},
		}}
	}
	r.apply(1, snap(1, true))

	// The plain one is checked (bootstrap 1 s, then every 100 ms); the
	// suspended one never.
	waitCount(t, "the plain checker runs", func() bool { return b.accepts.Load() >= 3 })
	if n := a.accepts.Load(); n != 0 {
		t.Fatalf("the ha_suspend checker ran %d times without its address on the host", n)
	}

	src.changes <- fakeChange{vip, true}
	waitCount(t, "the ha_suspend checker runs once its address is here", func() bool { return a.accepts.Load() >= 3 })

	src.changes <- fakeChange{vip, false}
	// Suspended: over the next five checks of the plain one, at most the
	// one check that may have been in flight at the removal lands.
	n := a.accepts.Load()
	bBefore := b.accepts.Load()
	waitCount(t, "the plain checker keeps running", func() bool { return b.accepts.Load() >= bBefore+5 })
	if m := a.accepts.Load(); m > n+1 {
		t.Fatalf("the ha_suspend checker ran %d more times after its address went", m-n)
	}
	// Its server keeps its last result.
	found := false
	for _, res := range r.snapshot() {
		if res.GetName() == "ha "+a.addr {
			found = true
			if !res.GetUp() {
				t.Errorf("suspended server's result %v, want it to keep up", res)
			}
		}
	}
	if !found {
		t.Error("no result for the suspended server")
	}

	// A reload that drops ha_suspend alone runs the checker again.
	r.apply(2, snap(2, false))
	waitCount(t, "the checker runs after a reload without ha_suspend", func() bool { return a.accepts.Load() >= n+3 })
}

// waitCount polls cond for up to 10 s (checks start after a 1 s bootstrap).
func waitCount(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
