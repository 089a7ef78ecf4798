package check

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) pending() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiters) }

// next moves time to the earliest waiter and fires it; it returns how far
// time moved.
func (c *fakeClock) next() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := 0
	for i, w := range c.waiters {
		if w.at.Before(c.waiters[best].at) {
			best = i
		}
	}
	w := c.waiters[best]
	c.waiters = append(c.waiters[:best], c.waiters[best+1:]...)
	d := w.at.Sub(c.now)
	if d > 0 {
		c.now = w.at
	}
	w.ch <- c.now
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a bound, for a loaded machine
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// script is a Checker that returns scripted results and counts attempts.
type script struct {
	mu      sync.Mutex
	results []bool
	calls   int
}

func (s *script) Check(ctx context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	if ok {
		return up("ok")
	}
	return down("fail")
}

func (s *script) n() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func TestMachine(t *testing.T) {
	p := Params{DelayLoop: 10 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second}
	type step struct {
		ok       bool
		emit, up bool
		next     time.Duration
	}
	cases := []struct {
		name  string
		alpha bool
		steps []step
	}{
		{"first failure is down at once", false, []step{{false, true, false, 10 * time.Second}}},
		{"first success up", false, []step{{true, true, true, 10 * time.Second}, {true, false, true, 10 * time.Second}}},
		{"retries before down", false, []step{
			{true, true, true, 10 * time.Second},
			{false, false, true, 3 * time.Second},
			{false, false, true, 3 * time.Second},
			{false, true, false, 10 * time.Second},
			{false, false, false, 10 * time.Second},
			{true, true, true, 10 * time.Second},
		}},
		{"a success resets the retries", false, []step{
			{true, true, true, 10 * time.Second},
			{false, false, true, 3 * time.Second},
			{true, false, true, 10 * time.Second},
			{false, false, true, 3 * time.Second},
			{false, false, true, 3 * time.Second},
			{false, true, false, 10 * time.Second},
		}},
		{"alpha starts down, first failure reported", true, []step{{false, true, false, 10 * time.Second}, {true, true, true, 10 * time.Second}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pp := p
			pp.Alpha = tc.alpha
			m := newMachine(pp)
			if m.up == tc.alpha {
				t.Fatalf("initial up=%v with alpha=%v", m.up, tc.alpha)
			}
			for i, st := range tc.steps {
				r := down("x")
				if st.ok {
					r = up("y")
				}
				emit, next := m.step(r)
				if emit != st.emit || m.up != st.up || next != st.next {
					t.Fatalf("step %d: emit=%v up=%v next=%v, want %v %v %v", i, emit, m.up, next, st.emit, st.up, st.next)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	d := func(s time.Duration) *time.Duration { return &s }
	u := func(n uint32) *uint32 { return &n }
	tr := true
	p := Resolve(Level{}, Level{}, Level{}, DefaultRetry, DefaultDelayBeforeRetry)
	if p != (Params{DelayLoop: 60 * time.Second, Retry: 1, DelayBeforeRetry: time.Second, Warmup: 60 * time.Second, Timeout: 5 * time.Second}) {
		t.Fatalf("defaults: %+v", p)
	}
	p = Resolve(Level{Retry: u(4)}, Level{DelayLoop: d(7 * time.Second), Retry: u(9)}, Level{Alpha: &tr, ConnectTimeout: d(2 * time.Second)}, DNSDefaultRetry, 0)
	want := Params{DelayLoop: 7 * time.Second, Retry: 4, DelayBeforeRetry: 7 * time.Second, Warmup: 7 * time.Second, Alpha: true, Timeout: 2 * time.Second}
	if p != want {
		t.Fatalf("inherited: %+v, want %+v", p, want)
	}
}

func TestSchedulerFakeClock(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	var mu sync.Mutex
	var got []Transition
	var snaps []Snapshot
	a := &script{results: []bool{true, true, false, false, true}}
	b := &script{results: []bool{true}}
	s := &Scheduler{
		Clock: clk,
		Rand:  func(n time.Duration) time.Duration { return n / 2 },
		OnTransition: func(tr Transition) {
			mu.Lock()
			got = append(got, tr)
			mu.Unlock()
		},
		OnSnapshot:    func(sn Snapshot) { mu.Lock(); snaps = append(snaps, sn); mu.Unlock() },
		SnapshotEvery: time.Hour,
		Omega:         true,
	}
	p := Params{DelayLoop: 10 * time.Second, Retry: 1, DelayBeforeRetry: 2 * time.Second, Warmup: 4 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx, []Job{
			{ID: "a", Checker: a, Params: p},
			{ID: "b1", Checker: b, Params: p, Key: "same"},
			{ID: "b2", Checker: b, Params: p, Key: "same"},
		})
		close(done)
	}()
	// Three waiters: job a, the merged b, the snapshot ticker.
	waitFor(t, "three timers", func() bool { return clk.pending() == 3 })
	start := clk.Now()
	// First runs at BootstrapDelay + warmup/2 = 3s.
	clk.next()
	waitFor(t, "first attempt", func() bool { return a.n()+b.n() == 1 })
	if d := clk.Now().Sub(start); d != 3*time.Second {
		t.Fatalf("first run after %v, want 3s", d)
	}
	// Walk a through: up, up, fail (retry after 2s), fail -> down, up.
	for a.n() < 5 {
		waitFor(t, "timers armed", func() bool { return clk.pending() == 3 })
		clk.next()
		time.Sleep(0)
	}
	waitFor(t, "a back up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 5
	})
	mu.Lock()
	var seq []string
	for _, tr := range got {
		if tr.ID == "a" {
			st := "down"
			if tr.Up {
				st = "up"
			}
			seq = append(seq, st)
		}
	}
	nb := 0
	for _, tr := range got {
		if tr.ID == "b1" || tr.ID == "b2" {
			nb++
		}
	}
	mu.Unlock()
	if len(seq) != 3 || seq[0] != "up" || seq[1] != "down" || seq[2] != "up" {
		t.Fatalf("a transitions %v, want [up down up]", seq)
	}
	if nb != 2 || b.n() == 0 {
		t.Fatalf("merged job b: %d transitions (want one per ID), %d attempts", nb, b.n())
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(snaps) == 0 || len(snaps[0].Checks) != 3 {
		t.Fatalf("initial snapshot %+v", snaps)
	}
	var omega int
	for _, tr := range got {
		if tr.Shutdown && !tr.Up {
			omega++
		}
	}
	if omega != 3 {
		t.Fatalf("omega downs: %d, want 3", omega)
	}
}
