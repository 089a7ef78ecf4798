package checkerd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/track"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// tcpServer is a listener that accepts and closes, owned by the test.
type tcpServer struct {
	t    *testing.T
	addr string
	ln   net.Listener
	done chan struct{}
	// accepts counts the connections (the checks) it took.
	accepts atomic.Int64
}

func listenTCP(t *testing.T, addr string) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{t: t, addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) close() {
	s.ln.Close()
	<-s.done
}

func tcpChecker(addr string, at string, delayLoop time.Duration) *pb.LvsChecker {
	ap := netip.MustParseAddrPort(addr)
	return &pb.LvsChecker{DefinedAt: at, Type: pb.LvsCheckerType_LVS_CHECKER_TCP, ConnectIp: ap.Addr().String(), ConnectPort: uint32(ap.Port()),
		ConnectTimeout: durationpb.New(time.Second), DelayLoop: durationpb.New(delayLoop), Retry: 0,
		DelayBeforeRetry: durationpb.New(delayLoop), Warmup: durationpb.New(delayLoop)}
}

// TestRealServerChecks runs checkerd with a virtual server of two real
// servers on 127.0.0.1 checked by TCP_CHECK and follows Health: both come
// up, one whose listener closes goes down with the reason and comes back
// when it reopens; a reload that only moves lines keeps the checks
// running (no re-check), a changed checker is restarted, and a MISC_CHECK
// without a script runner is never up.
func TestRealServerChecks(t *testing.T) {
	a, b := listenTCP(t, "127.0.0.1:0"), listenTCP(t, "127.0.0.1:0")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, Options{RunDir: dir, Log: slog.New(slog.DiscardHandler), AllowUIDs: []uint32{uint32(os.Getuid())}})
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	var c pb.CheckerdClient
	for {
		conn, err := ipc.Dial(dctx, filepath.Join(dir, "checkerd.sock"))
		if err == nil {
			defer conn.Close()
			c = pb.NewCheckerdClient(conn)
			break
		}
		if dctx.Err() != nil {
			t.Fatalf("dial checkerd: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	const loop = 100 * time.Millisecond
	idA, idB, idM := "vs "+a.addr, "vs "+b.addr, "vs misc"
	snap := &pb.ConfigSnapshot{Generation: 1, VirtualServers: []*pb.VirtualServer{{Name: "vs", RealServers: []*pb.LvsRealServer{
		{HealthId: idA, Checkers: []*pb.LvsChecker{tcpChecker(a.addr, "k.conf:3", loop)}},
		{HealthId: idB, Checkers: []*pb.LvsChecker{tcpChecker(b.addr, "k.conf:6", loop)}},
		{HealthId: idM, Checkers: []*pb.LvsChecker{{DefinedAt: "k.conf:9", Type: pb.LvsCheckerType_LVS_CHECKER_MISC,
			MiscPath: []string{"/bin/true"}, DelayLoop: durationpb.New(loop)}}},
	}}}}
	resp, err := c.ApplyConfig(dctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	wantAdded := []string{"real_server " + idA, "real_server " + idB, "real_server " + idM}
	slices.Sort(wantAdded)
	if !slices.Equal(resp.GetAdded(), wantAdded) {
		t.Errorf("added %q, want %q", resp.GetAdded(), wantAdded)
	}

	start := time.Now()
	rs := pb.TrackerKind_TRACKER_KIND_REAL_SERVER
	h := followHealth(t, c)
	// The two come up in either order.
	up := map[string]bool{}
	h.next(t, "A and B up", func(ev *pb.HealthEvent) bool {
		for _, id := range []string{idA, idB} {
			if resultIs(rs, id, true, 0)(ev) {
				up[id] = true
			}
		}
		return up[idA] && up[idB]
	})
	t.Logf("both up after %v (bootstrap %v + warmup <= %v)", time.Since(start), time.Second, loop)

	bAddr := b.addr
	b.close()
	ev := h.next(t, "B down", resultIs(rs, idB, false, 0))
	if d := ev.GetResult().GetDetail(); !strings.Contains(d, "connection refused") || !strings.Contains(d, bAddr) {
		t.Errorf("B down detail %q, want the refused connect to %s", d, bAddr)
	}
	listenTCP(t, bAddr)
	h.next(t, "B up again", resultIs(rs, idB, true, 0))

	// Same settings on other lines: nothing restarts. A restarted checker
	// waits check.BootstrapDelay (1s) before it connects; a running one
	// connects every 100ms.
	snap2 := proto.Clone(snap).(*pb.ConfigSnapshot)
	snap2.Generation = 2
	for _, r := range snap2.VirtualServers[0].RealServers {
		r.Checkers[0].DefinedAt += "0"
	}
	resp, err = c.ApplyConfig(dctx, snap2)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetUnchanged()) != 3 || len(resp.GetChanged())+len(resp.GetAdded())+len(resp.GetRemoved()) != 0 {
		t.Errorf("re-apply with moved lines: %v", resp)
	}
	n0 := a.accepts.Load()
	for deadline := time.Now().Add(600 * time.Millisecond); a.accepts.Load() < n0+3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("A's checker connected %d times in 600ms after an unchanged reload: restarted", a.accepts.Load()-n0)
		}
	}
	s2 := h.next(t, "generation 2 snapshot", func(ev *pb.HealthEvent) bool { return ev.GetSnapshot() != nil && ev.GetGeneration() == 2 })
	for _, id := range []string{idA, idB} {
		if r := findResult(s2.GetSnapshot(), rs, id); r == nil || !r.GetUp() {
			t.Errorf("%s in the generation 2 snapshot: %v, want up", id, r)
		}
	}
	// MISC_CHECK runs through the supervisor's ScriptRunner, absent here
	// (misc_test.go has one).
	if r := findResult(s2.GetSnapshot(), rs, idM); r != nil && r.GetUp() {
		t.Errorf("MISC_CHECK server up without a script runner: %v", r)
	}

	// A changed delay_loop restarts A's checker; B is untouched; a removed
	// server is removed.
	snap3 := proto.Clone(snap2).(*pb.ConfigSnapshot)
	snap3.Generation = 3
	snap3.VirtualServers[0].RealServers[0].Checkers[0].DelayLoop = durationpb.New(2 * loop)
	snap3.VirtualServers[0].RealServers = snap3.VirtualServers[0].RealServers[:2]
	resp, err = c.ApplyConfig(dctx, snap3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.GetChanged(), []string{"real_server " + idA}) || !slices.Equal(resp.GetUnchanged(), []string{"real_server " + idB}) ||
		!slices.Equal(resp.GetRemoved(), []string{"real_server " + idM}) {
		t.Errorf("apply with A changed, misc removed: %v", resp)
	}
	// A keeps its last result while its new checker starts (no flap).
	s3 := h.next(t, "generation 3 snapshot", func(ev *pb.HealthEvent) bool { return ev.GetSnapshot() != nil && ev.GetGeneration() == 3 })
	if r := findResult(s3.GetSnapshot(), rs, idA); r == nil || !r.GetUp() {
		t.Errorf("A in the generation 3 snapshot: %v, want up", r)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v, want < 5s", time.Since(start))
	}
}

// TestRealServerTimes: a real server's results carry since (when up last
// changed) and last_check (when a check last ended); while checks run a
// refresh is signalled every refresh period (Health then sends a
// snapshot), whose results have a later last_check and the same since; a
// down result names the checker.
func TestRealServerTimes(t *testing.T) {
	a := listenTCP(t, "127.0.0.1:0")
	const loop, refresh = 100 * time.Millisecond, 300 * time.Millisecond
	r := newRealServers(slog.New(slog.DiscardHandler), check.SnapshotOptions{}, refresh)
	defer r.close()
	_, sub := r.subscribe()
	defer sub.Close()
	id := "vs " + a.addr
	start := time.Now()
	r.apply(1, &pb.ConfigSnapshot{Generation: 1, VirtualServers: []*pb.VirtualServer{{Name: "vs", RealServers: []*pb.LvsRealServer{
		{HealthId: id, Checkers: []*pb.LvsChecker{tcpChecker(a.addr, "k.conf:3", loop)}}}}}})
	next := func(what string, ok func(*pb.TrackerResult) bool) *pb.TrackerResult {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev, open := <-sub.C:
				if !open {
					t.Fatalf("%s: stream ended", what)
				}
				if ok(ev.Result) {
					return ev.Result
				}
			case <-deadline:
				t.Fatalf("%s: not within 10s", what)
			}
		}
	}
	up := next("up", func(r *pb.TrackerResult) bool { return r.GetUp() })
	if up.GetSince() == nil || up.GetLastCheck() == nil || up.GetSince().AsTime().Before(start) ||
		up.GetLastCheck().AsTime().Before(start) || !strings.Contains(up.GetDetail(), "TCP connect to "+a.addr+" succeeded") {
		t.Fatalf("up result %v: want since and last_check after %v and the check's words", up, start)
	}
	// A refresh may come before the next check ends (on a loaded machine):
	// wait for one that carries a later check, with the same since.
	var again *pb.TrackerResult
	for deadline := time.After(10 * time.Second); again == nil; {
		select {
		case <-r.refreshChan():
		case <-deadline:
			t.Fatal("no refresh with a later last_check within 10s")
		}
		snap := r.snapshot()
		if len(snap) != 1 {
			t.Fatalf("snapshot %v, want one result", snap)
		}
		if !snap[0].GetSince().AsTime().Equal(up.GetSince().AsTime()) {
			t.Fatalf("refresh: since %v, want %v", snap[0].GetSince().AsTime(), up.GetSince().AsTime())
		}
		if snap[0].GetLastCheck().AsTime().After(up.GetLastCheck().AsTime()) {
			again = snap[0]
		}
	}
	t.Logf("refreshed %v after the first up result (refresh %v)", time.Since(up.GetLastCheck().AsTime()).Round(time.Millisecond), refresh)
	a.close()
	down := next("down", func(r *pb.TrackerResult) bool { return !r.GetUp() })
	if !strings.HasPrefix(down.GetDetail(), "TCP_CHECK: TCP connect to "+a.addr+" failed") || !down.GetSince().AsTime().After(up.GetSince().AsTime()) {
		t.Errorf("down result %v: want the checker named, a later since", down)
	}
}

// TestRecordAttemptAllocs: recording an attempt's end allocates nothing
// (checkerd runs thousands of checks).
func TestRecordAttemptAllocs(t *testing.T) {
	c := &rsCheck{}
	if n := testing.AllocsPerRun(100, func() { c.recordAttempt(time.Now()) }); n != 0 {
		t.Errorf("%v allocations per attempt, want 0", n)
	}
	if c.lastCheck.Load() == 0 {
		t.Error("last check not recorded")
	}
}

// TestHealthRefreshSnapshot: while real-server checks run, Health sends a
// full snapshot every refresh period whose results carry a later
// last_check and the same since, with nothing else changing.
func TestHealthRefreshSnapshot(t *testing.T) {
	a := listenTCP(t, "127.0.0.1:0")
	log := slog.New(slog.DiscardHandler)
	set := track.NewSet(track.Options{Log: log})
	defer set.Close()
	api := NewServer(set, log)
	// The refresh period of the test: 300ms, not 30s.
	api.rs.close()
	api.rs = newRealServers(log, check.SnapshotOptions{}, 300*time.Millisecond)
	defer api.Close()
	path := filepath.Join(t.TempDir(), "checkerd.sock")
	ln, err := ipc.ListenConfig{Mode: 0o600}.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterCheckerdServer(srv, api)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := ipc.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewCheckerdClient(conn)
	id := "vs " + a.addr
	if _, err := c.ApplyConfig(ctx, &pb.ConfigSnapshot{Generation: 1, VirtualServers: []*pb.VirtualServer{{Name: "vs",
		RealServers: []*pb.LvsRealServer{{HealthId: id, Checkers: []*pb.LvsChecker{tcpChecker(a.addr, "k.conf:3", 100*time.Millisecond)}}}}}}); err != nil {
		t.Fatal(err)
	}
	rs := pb.TrackerKind_TRACKER_KIND_REAL_SERVER
	h := followHealth(t, c)
	up := h.next(t, "up", func(ev *pb.HealthEvent) bool {
		if r := findResult(ev.GetSnapshot(), rs, id); r != nil && r.GetUp() {
			return true
		}
		return resultIs(rs, id, true, 0)(ev)
	})
	first := up.GetResult()
	if first == nil {
		first = findResult(up.GetSnapshot(), rs, id)
	}
	prev := first
	for i := range 2 {
		ev := h.next(t, fmt.Sprintf("refresh snapshot %d", i+1), func(ev *pb.HealthEvent) bool {
			r := findResult(ev.GetSnapshot(), rs, id)
			return r != nil && r.GetLastCheck().AsTime().After(prev.GetLastCheck().AsTime())
		})
		r := findResult(ev.GetSnapshot(), rs, id)
		if !r.GetUp() || !r.GetSince().AsTime().Equal(first.GetSince().AsTime()) {
			t.Errorf("refresh %d: %v, want up since %v", i+1, r, first.GetSince().AsTime())
		}
		prev = r
	}
	t.Logf("last_check moved %v in two refreshes (period 300ms, delay_loop 100ms)",
		prev.GetLastCheck().AsTime().Sub(first.GetLastCheck().AsTime()).Round(time.Millisecond))
}
