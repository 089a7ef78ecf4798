package vrrpd

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeScripts stands in for the supervisor's ScriptRunner: it records each
// request ("gen KIND name") and, while hold is set, blocks until released.
type fakeScripts struct {
	mu       sync.Mutex
	calls    []string
	deadline []time.Duration // time left on each call's context
	hold     chan struct{}   // nil: answer at once
	missing  map[string]bool // names answered NotFound
}

func (f *fakeScripts) Run(ctx context.Context, gen uint64, kind pb.ScriptKind, name string) (scriptrun.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%d %s %s", gen, scriptKeyword(kind), name))
	d, _ := ctx.Deadline()
	f.deadline = append(f.deadline, time.Until(d))
	hold, missing := f.hold, f.missing[name]
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return scriptrun.Result{}, ctx.Err()
		}
	}
	if missing {
		return scriptrun.Result{}, status.Error(codes.NotFound, "no such script")
	}
	return scriptrun.Result{ExitStatus: 0}, nil
}

func (f *fakeScripts) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newQuorumRig(t *testing.T, scripts ScriptRunner) (*rig, *fakeIPVS, *syncLog) {
	t.Helper()
	k := newFakeIPVS()
	logs := &syncLog{}
	clk := newFakeClock()
	r := &rig{clock: clk, net: &fakeNet{clock: clk, primary: netip.MustParseAddr("192.0.2.1")},
		addrs: newFakeAddrs(), links: fakeLinks{changes: make(chan netstate.LinkState)}, done: make(chan error, 1)}
	r.e = New(Options{Clock: clk, Addresses: r.addrs, Links: r.links, Network: r.net,
		LVS: func() (lvs.Kernel, error) { return k, nil }, Scripts: scripts,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.e.Run(ctx) }()
	clk.sl.settle(t)
	t.Cleanup(r.stop)
	return r, k, logs
}

// quorumVS is webVS with quorum 2 over two real servers of weight 1.
func quorumVS(sorry bool) *pb.VirtualServer {
	vs := webVS()
	vs.Quorum = 2
	if sorry {
		vs.SorryServer = &pb.LvsRealServer{Address: "10.0.9.9", Port: 8080, Weight: 1, Unchecked: true}
	}
	return vs
}

// The order is kept per virtual server only: each has its own queue
// (quorum.go), so two virtual servers' scripts may run in either order.
func waitCalls(t *testing.T, f *fakeScripts, want ...string) {
	t.Helper()
	perVS := func(calls []string) string {
		byVS := map[string][]string{}
		for _, c := range calls {
			vs := c[strings.LastIndex(c, " ")+1:]
			byVS[vs] = append(byVS[vs], c)
		}
		var out []string
		for _, vs := range slices.Sorted(maps.Keys(byVS)) {
			out = append(out, strings.Join(byVS[vs], "|"))
		}
		return strings.Join(out, "\n")
	}
	eventually(t, fmt.Sprintf("script requests %q", want), func() bool { return perVS(f.got()) == perVS(want) })
}

// TestQuorumScripts: keepalived's quorum_up / quorum_down (ipwrapper.c
// update_quorum_state): quorum_up at start with quorum up (keepalived
// 2.2.7 logs "Gained quorum" at start: TestLVSVMMiscDynamic); quorum_down
// when it is lost, quorum_up when it is gained again, each named by the
// virtual server and the generation, in order.
func TestQuorumScripts(t *testing.T) {
	f := &fakeScripts{}
	r, _, logs := newQuorumRig(t, f)
	r.apply(t, lvsSnap(2, quorumVS(false)))
	r.e.ApplyHealth(rsResult(2, "rs1", true))
	r.e.ApplyHealth(rsResult(2, "rs2", true))
	eventually(t, "the table programmed", func() bool { return lvsPasses(r.e) > 0 })
	waitCalls(t, f, "2 quorum_up web")
	r.e.ApplyHealth(rsResult(2, "rs1", false))
	waitCalls(t, f, "2 quorum_up web", "2 quorum_down web")
	r.e.ApplyHealth(rsResult(2, "rs2", false)) // still down: nothing more
	r.apply(t, lvsSnap(3, quorumVS(false)))    // a reload keeps the state
	r.e.ApplyHealth(rsResult(3, "rs1", true))
	r.e.ApplyHealth(rsResult(3, "rs2", true))
	waitCalls(t, f, "2 quorum_up web", "2 quorum_down web", "3 quorum_up web")
	for _, want := range []string{"Lost quorum", "Gained quorum"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log has no %q:\n%s", want, logs.String())
		}
	}
}

// TestQuorumScriptsAtStart: starting with quorum down runs quorum_down
// only when there is a sorry server (update_quorum_state(vs, init)); the
// same for a virtual server a reload adds, which then gains its quorum.
func TestQuorumScriptsAtStart(t *testing.T) {
	f := &fakeScripts{}
	r, _, _ := newQuorumRig(t, f)
	down := quorumVS(true)
	down.RealServers[0].StartsDown = true // alpha: live weight 1 < quorum 2
	r.apply(t, lvsSnap(1, down))
	waitCalls(t, f, "1 quorum_down web")

	noSorry := quorumVS(false)
	noSorry.Name = "other"
	noSorry.Services[0].Port = 81
	noSorry.RealServers[0].StartsDown = true
	noSorry.RealServers[0].HealthId, noSorry.RealServers[1].HealthId = "o1", "o2"
	r.apply(t, lvsSnap(2, down, noSorry))
	eventually(t, "the table programmed", func() bool { return lvsPasses(r.e) > 0 })
	r.e.ApplyHealth(rsResult(2, "o1", true)) // gains quorum: quorum_up
	waitCalls(t, f, "1 quorum_down web", "2 quorum_up other")
}

// TestQuorumScriptDoesNotBlockEngine: a script that takes its time holds
// neither the engine nor IPVS; later changes queue behind it, in order.
func TestQuorumScriptDoesNotBlockEngine(t *testing.T) {
	f := &fakeScripts{hold: make(chan struct{})}
	r, k, _ := newQuorumRig(t, f)
	r.apply(t, lvsSnap(2, quorumVS(false)))
	waitCalls(t, f, "2 quorum_up web") // at start
	r.e.ApplyHealth(rsResult(2, "rs1", false))
	// The script is running (held). The engine still answers, follows
	// health and programs IPVS.
	r.e.ApplyHealth(rsResult(2, "rs1", true))
	r.e.ApplyHealth(rsResult(2, "rs1", false))
	r.e.ApplyHealth(rsResult(2, "rs1", true))
	waitDump(t, k, webBoth)
	if _, err := r.e.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.got(); len(got) != 1 {
		t.Fatalf("while the first script runs: %q, want the others queued", got)
	}
	close(f.hold)
	waitCalls(t, f, "2 quorum_up web", "2 quorum_down web", "2 quorum_up web", "2 quorum_down web", "2 quorum_up web")
}

// TestQuorumOmegaAtStop: with omega, stopping runs quorum_down, cut after
// a second (ipwrapper.c do_vs_notifies when stopping); without, nothing.
func TestQuorumOmegaAtStop(t *testing.T) {
	f := &fakeScripts{}
	r, _, _ := newQuorumRig(t, f)
	vs := quorumVS(false)
	vs.Omega = true
	plain := quorumVS(false)
	plain.Name = "plain"
	plain.Services[0].Port = 81
	r.apply(t, lvsSnap(1, vs, plain))
	waitCalls(t, f, "1 quorum_up web", "1 quorum_up plain")
	r.stop()
	if got := f.got(); strings.Join(got[2:], "|") != "1 quorum_down web" {
		t.Fatalf("at stop: %q, want only the omega virtual server's quorum_down", got[2:])
	}
	if d := f.deadline[2]; d > quorumStopTimeout || d <= 0 {
		t.Errorf("stop script deadline %v, want within %v", d, quorumStopTimeout)
	}
}

// TestQuorumScriptsNotConfigured: a virtual server without quorum scripts
// answers NotFound; that is not worth a warning.
func TestQuorumScriptsNotConfigured(t *testing.T) {
	f := &fakeScripts{missing: map[string]bool{"web": true}}
	r, _, logs := newQuorumRig(t, f)
	r.apply(t, lvsSnap(1, quorumVS(false)))
	r.e.ApplyHealth(rsResult(1, "rs1", false))
	waitCalls(t, f, "1 quorum_up web", "1 quorum_down web")
	eventually(t, "the NotFound answer logged", func() bool { return strings.Contains(logs.String(), "no script configured") })
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a warning for a virtual server without quorum scripts:\n%s", logs.String())
	}
}

// TestLVSDynamicWeight: a real server's misc_dynamic weight
// (TrackerResult.weight) becomes its destination weight; exit 0 (no
// weight) restores the configured one.
func TestLVSDynamicWeight(t *testing.T) {
	r, k, _ := newQuorumRig(t, nil)
	r.apply(t, lvsSnap(1, webVS()))
	waitDump(t, k, webBoth)
	five := uint32(5)
	ev := rsResult(1, "rs1", true)
	ev.GetResult().Weight = &five
	if !r.e.ApplyHealth(ev) {
		t.Fatal("health event refused")
	}
	waitDump(t, k, "TCP 192.0.2.10:80 [10.0.0.1:8080=5 10.0.0.2:8080=1]")
	r.e.ApplyHealth(rsResult(1, "rs1", true))
	waitDump(t, k, webBoth)
}

// TestQuorumScriptRemovedVirtualServer: a reload that removes a virtual
// server whose quorum is up runs its quorum_down, from the generation it
// was in (keepalived clear_diff_services -> update_vs_notifies); one whose
// quorum was already down runs nothing more.
func TestQuorumScriptRemovedVirtualServer(t *testing.T) {
	f := &fakeScripts{}
	r, _, _ := newQuorumRig(t, f)
	down := quorumVS(false)
	down.Name = "down"
	down.Services[0].Port = 81
	down.RealServers[0].HealthId, down.RealServers[1].HealthId = "d1", "d2"
	r.apply(t, lvsSnap(1, quorumVS(false), down))
	eventually(t, "the table programmed", func() bool { return lvsPasses(r.e) > 0 })
	waitCalls(t, f, "1 quorum_up web", "1 quorum_up down")
	r.e.ApplyHealth(rsResult(1, "d1", false))
	waitCalls(t, f, "1 quorum_up web", "1 quorum_up down", "1 quorum_down down")
	r.apply(t, lvsSnap(2))
	waitCalls(t, f, "1 quorum_up web", "1 quorum_up down", "1 quorum_down down", "1 quorum_down web")
}
