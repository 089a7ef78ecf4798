package track

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeClock is a Clock whose time moves only by Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk     *fakeClock
	c       chan time.Time
	at      time.Time
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.fired = true
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the time on by d and fires the timers due by then.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.fired = true
			t.c <- c.now
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// pending reports how many timers are armed.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// call is one RunScript call waiting for its answer.
type call struct {
	gen   uint64
	name  string
	ctx   context.Context
	reply chan reply
}

type reply struct {
	res scriptrun.Result
	err error
}

// chanRunner is a ScriptRunner whose calls the test answers one by one.
type chanRunner struct{ calls chan *call }

func newChanRunner() *chanRunner { return &chanRunner{calls: make(chan *call, 16)} }

func (r *chanRunner) RunScript(ctx context.Context, gen uint64, name string) (scriptrun.Result, error) {
	c := &call{gen: gen, name: name, ctx: ctx, reply: make(chan reply, 1)}
	r.calls <- c
	select {
	case rep := <-c.reply:
		return rep.res, rep.err
	case <-ctx.Done():
		return scriptrun.Result{}, ctx.Err()
	}
}

func (r *chanRunner) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no RunScript call within 5s")
		return nil
	}
}

// noCall fails if a call is waiting.
func (r *chanRunner) noCall(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.calls:
		t.Fatalf("unexpected RunScript call for %s", c.name)
	default:
	}
}

// logRec records log messages.
type logRec struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRec) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRec) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRec) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l: l, attrs: as}
}
func (l *logRec) WithGroup(string) slog.Handler { return l }

type attrHandler struct {
	l     *logRec
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(h.attrs...)
	return h.l.Handle(ctx, r)
}
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{l: h.l, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *attrHandler) WithGroup(string) slog.Handler { return h }

func (l *logRec) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// resultOf returns k's result in s's snapshot.
func resultOf(s *Set, k Key) (Result, bool) {
	for _, r := range s.Snapshot().Results {
		if r.Key == k {
			return r, true
		}
	}
	return Result{}, false
}

func scriptKey(name string) Key { return Key{pb.TrackerKind_TRACKER_KIND_SCRIPT, name} }
func fileKey(name string) Key   { return Key{pb.TrackerKind_TRACKER_KIND_FILE, name} }
func procKey(name string) Key   { return Key{pb.TrackerKind_TRACKER_KIND_PROCESS, name} }
