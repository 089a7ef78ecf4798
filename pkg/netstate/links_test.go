package netstate

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

const eventTimeout = 5 * time.Second

// watchRun is one WatchLinks call running in its own goroutine.
type watchRun struct {
	events chan LinkState
	cancel context.CancelFunc
	done   chan error
}

// startWatch runs l.WatchLinks(names) until the test ends or stop is
// called. hook, if not nil, runs inside fn before the event is queued.
func startWatch(t *testing.T, l *Links, names []string, hook func(LinkState)) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchRun{events: make(chan LinkState, 4096), cancel: cancel, done: make(chan error, 1)}
	go func() {
		w.done <- l.WatchLinks(ctx, names, func(s LinkState) {
			if hook != nil {
				hook(s)
			}
			w.events <- s
		})
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop cancels the watch and waits for WatchLinks to return.
func (w *watchRun) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err, ok := <-w.done:
		if ok && err != nil {
			t.Errorf("WatchLinks returned %v after cancellation, want nil", err)
		}
		if ok {
			close(w.done)
		}
	case <-time.After(eventTimeout):
		t.Fatalf("WatchLinks did not return within %v of cancellation", eventTimeout)
	}
}

func (w *watchRun) next(t *testing.T) LinkState {
	t.Helper()
	select {
	case s := <-w.events:
		return s
	case err := <-w.done:
		t.Fatalf("WatchLinks returned early: %v", err)
	case <-time.After(eventTimeout):
		t.Fatalf("no link event within %v", eventTimeout)
	}
	panic("unreachable")
}

// expect checks that the next events are want, in order, comparing Name,
// Exists and Up. It returns the events received.
func (w *watchRun) expect(t *testing.T, want ...LinkState) []LinkState {
	t.Helper()
	var got []LinkState
	for _, ws := range want {
		s := w.next(t)
		got = append(got, s)
		if s.Name != ws.Name || s.Exists != ws.Exists || s.Up != ws.Up {
			t.Fatalf("event %d: got %v, want %v", len(got), s, ws)
		}
	}
	return got
}

// expectQuiet checks that no event arrives for d.
func (w *watchRun) expectQuiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case s := <-w.events:
		t.Fatalf("unexpected event %v", s)
	case <-time.After(d):
	}
}

func up(name string) LinkState     { return LinkState{Name: name, Exists: true, Up: true} }
func down(name string) LinkState   { return LinkState{Name: name, Exists: true} }
func absent(name string) LinkState { return LinkState{Name: name} }

// goroutineBaseline records the number of goroutines and returns a check
// that waits for the count to fall back to it (goleak-style, without the
// module), printing the stacks of the extra ones if it does not.
func goroutineBaseline(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines: %d before, %d after the watch ended:\n%s", before, runtime.NumGoroutine(), buf)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func newLinksTest(t *testing.T) (*testNS, *Links, *logBuffer) {
	t.Helper()
	n := newTestNS(t)
	log, buf := testLogger(t)
	l, err := NewLinksAt(n.ns, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n, l, buf
}

func TestLinkByName(t *testing.T) {
	n, l, _ := newLinksTest(t)
	n.veth(t, "veth0", "veth1")
	s, err := l.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Exists || !s.Up || s.Index == 0 || len(s.HardwareAddr) != 6 || s.Name != "veth0" {
		t.Errorf("LinkByName(veth0) = %+v, want an existing, up link with index and MAC", s)
	}
	n.ip(t, "link", "set", "veth1", "down") // veth0's carrier goes
	if s, err := l.LinkByName("veth0"); err != nil || s.Up || !s.Exists {
		t.Errorf("LinkByName(veth0) with its peer down = %+v, %v; want existing and not up", s, err)
	}
	if s, err := l.LinkByName("nosuch0"); err != nil || s.Exists || s.Name != "nosuch0" {
		t.Errorf("LinkByName(nosuch0) = %+v, %v; want absent without error", s, err)
	}
	// Loopback: operational state "unknown" counts as up.
	n.ip(t, "link", "set", "lo", "up")
	if s, err := l.LinkByName("lo"); err != nil || !s.Up {
		t.Errorf("LinkByName(lo) = %+v, %v; want up", s, err)
	}
}

func TestWatchLinks(t *testing.T) {
	n, l, _ := newLinksTest(t)
	n.veth(t, "veth0", "veth1")
	leaks := goroutineBaseline(t)
	w := startWatch(t, l, []string{"veth0", "vethR", "veth0"}, nil)

	// Initial state, once per name, in order; duplicates dropped.
	first := w.expect(t, up("veth0"), absent("vethR"))
	idx := first[0].Index

	// Down and up.
	n.ip(t, "link", "set", "veth0", "down")
	w.expect(t, down("veth0"))
	n.ip(t, "link", "set", "veth0", "up")
	w.expect(t, up("veth0"))

	// Carrier loss through the peer.
	n.ip(t, "link", "set", "veth1", "down")
	w.expect(t, down("veth0"))
	n.ip(t, "link", "set", "veth1", "up")
	w.expect(t, up("veth0"))

	// Noise: none of this calls fn. The next transition must be the
	// very next event.
	n.ip(t, "link", "set", "veth0", "mtu", "1400")
	n.ip(t, "link", "set", "veth0", "alias", "vip side")
	n.ip(t, "addr", "add", "192.0.2.1/24", "dev", "veth0")
	n.ip(t, "link", "add", "br0", "type", "bridge")
	n.ip(t, "link", "set", "veth0", "master", "br0")
	n.ip(t, "link", "set", "veth0", "nomaster") // RTM_DELLINK for AF_BRIDGE
	n.ip(t, "link", "del", "br0")
	n.veth(t, "vethA", "vethB") // other interfaces
	n.ip(t, "link", "set", "vethA", "down")
	n.ip(t, "link", "set", "veth0", "down")
	w.expect(t, down("veth0"))

	// Delete and re-create.
	n.ip(t, "link", "del", "veth0")
	w.expect(t, absent("veth0"))
	n.ip(t, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	got := w.expect(t, down("veth0"))
	if got[0].Index == idx || got[0].Index == 0 {
		t.Errorf("re-created veth0 has index %d, old one had %d", got[0].Index, idx)
	}
	n.ip(t, "link", "set", "veth1", "up")
	n.ip(t, "link", "set", "veth0", "up")
	w.expect(t, up("veth0"))

	// Rename: the old name disappears, the new one appears.
	n.ip(t, "link", "set", "veth0", "down")
	w.expect(t, down("veth0"))
	n.ip(t, "link", "set", "veth0", "name", "vethR")
	w.expect(t, absent("veth0"), down("vethR"))
	n.ip(t, "link", "set", "vethR", "up")
	w.expect(t, up("vethR"))
	w.expectQuiet(t, 200*time.Millisecond)

	w.stop(t)
	leaks()
}

func TestWatchLinksStopsOnCancel(t *testing.T) {
	n, l, _ := newLinksTest(t)
	n.veth(t, "veth0", "veth1")
	for i := range 3 {
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			leaks := goroutineBaseline(t)
			w := startWatch(t, l, []string{"veth0"}, nil)
			w.expect(t, up("veth0"))
			start := time.Now()
			w.stop(t)
			if d := time.Since(start); d > time.Second {
				t.Errorf("WatchLinks took %v to return after cancellation", d)
			}
			leaks()
			// No call of fn after WatchLinks returned.
			n.ip(t, "link", "set", "veth0", "down")
			n.ip(t, "link", "set", "veth0", "up")
			w.expectQuiet(t, 50*time.Millisecond)
		})
	}
}

func TestWatchLinksErrors(t *testing.T) {
	_, l, _ := newLinksTest(t)
	fn := func(LinkState) { t.Error("fn called") }
	if err := l.WatchLinks(context.Background(), nil, fn); err == nil {
		t.Error("WatchLinks with no names succeeded")
	}
	if err := l.WatchLinks(context.Background(), []string{"veth0", ""}, fn); err == nil {
		t.Error("WatchLinks with an empty name succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.WatchLinks(ctx, []string{"veth0"}, fn); err != nil {
		t.Errorf("WatchLinks with a cancelled context: %v", err)
	}
}

// TestWatchLinksResyncAfterOverflow makes the kernel drop link events
// (ENOBUFS) while fn is blocked, and checks that the watcher resubscribes,
// re-reads the link and reports its final state, and keeps watching.
func TestWatchLinksResyncAfterOverflow(t *testing.T) {
	n, l, logs := newLinksTest(t)
	n.veth(t, "veth0", "veth1")
	l.rcvBuf = 1 // the kernel's minimum: a handful of messages
	leaks := goroutineBaseline(t)

	blocked := make(chan struct{})
	release := make(chan struct{})
	calls := 0
	w := startWatch(t, l, []string{"veth0"}, func(LinkState) {
		calls++
		if calls == 2 { // the first change after the initial state
			close(blocked)
			<-release
		}
	})
	w.expect(t, up("veth0"))

	n.ip(t, "link", "set", "veth0", "down")
	select {
	case <-blocked:
	case <-time.After(eventTimeout):
		t.Fatal("fn not called for the first change")
	}
	link, err := n.h.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := n.h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
		if err := n.h.LinkSetDown(link); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	close(release)

	w.expect(t, down("veth0")) // the call that blocked
	// Then whatever the surviving events and the resync report; the last
	// state must be up once the watcher has caught up.
	// (The resync itself reports nothing if the last event already
	// matched the kernel, so poll the log too.)
	var last LinkState
	deadline := time.After(eventTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(logs.String(), "resynchronised") || !last.Up {
		select {
		case last = <-w.events:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no resynchronisation to up: last event %v", last)
		}
	}
	// Events queued on the new subscription before the re-read may
	// still replay real flaps; once quiet, the last state must be up.
	for quiet := false; !quiet; {
		select {
		case last = <-w.events:
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	if !last.Up || !last.Exists {
		t.Fatalf("last event after resynchronisation %v, want veth0 up", last)
	}
	if !strings.Contains(logs.String(), "no buffer space available") {
		t.Errorf("overflow not seen as ENOBUFS; log:\n%s", logs)
	}

	// Still watching.
	n.ip(t, "link", "set", "veth0", "down")
	w.expect(t, down("veth0"))

	w.stop(t)
	leaks()
}

func TestWatchLinksAltName(t *testing.T) {
	n, l, _ := newLinksTest(t)
	n.veth(t, "veth0", "veth1")
	if out, err := exec.Command("ip", "-n", n.name, "link", "property", "add", "dev", "veth0", "altname", "vip-uplink").CombinedOutput(); err != nil {
		t.Skipf("alternative interface names not supported: %v: %s", err, out)
	}
	s, err := l.LinkByName("vip-uplink")
	if err != nil || !s.Exists || s.Name != "vip-uplink" {
		t.Fatalf("LinkByName(vip-uplink) = %+v, %v", s, err)
	}
	w := startWatch(t, l, []string{"vip-uplink"}, nil)
	w.expect(t, up("vip-uplink"))
	n.ip(t, "link", "set", "veth0", "down")
	w.expect(t, down("vip-uplink"))
	n.ip(t, "link", "del", "veth0")
	w.expect(t, absent("vip-uplink"))
}
