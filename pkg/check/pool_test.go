package check

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder collects a task's attempts and transitions.
type recorder struct {
	mu       sync.Mutex
	attempts []time.Time
	trans    []Transition
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		OnAttempt: func(Result) { r.mu.Lock(); r.attempts = append(r.attempts, time.Now()); r.mu.Unlock() },
		OnTransition: func(t Transition) {
			r.mu.Lock()
			r.trans = append(r.trans, t)
			r.mu.Unlock()
		},
	}
}

func (r *recorder) counts() (attempts, trans int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.attempts), len(r.trans)
}

// TestPoolRetry: on a Pool a job follows the Scheduler's rule: up at the
// first success, and after a failure of an up check the retry comes
// delay_before_retry later (not delay_loop), the down after retry more
// failures (keepalived check_tcp.c tcp_epilog).
func TestPoolRetry(t *testing.T) {
	p := &Pool{Rand: func(time.Duration) time.Duration { return 0 }}
	defer p.Close()
	sc := &script{results: []bool{true, false, false, true}}
	var rec recorder
	task := p.Start(Job{ID: "j", Checker: sc, Params: Params{DelayLoop: time.Second, Retry: 1, DelayBeforeRetry: 50 * time.Millisecond, Warmup: time.Second}}, rec.hooks())
	waitFor(t, "four attempts", func() bool { n, _ := rec.counts(); return n >= 4 })
	task.Cancel()
	task.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ups []bool
	for _, tr := range rec.trans {
		ups = append(ups, tr.Up)
	}
	if len(ups) != 3 || !ups[0] || ups[1] || !ups[2] || !rec.trans[0].Initial || rec.trans[1].Initial {
		t.Fatalf("transitions %+v, want up (initial), down, up", rec.trans)
	}
	loop, retry := rec.attempts[1].Sub(rec.attempts[0]), rec.attempts[2].Sub(rec.attempts[1])
	if loop < time.Second || retry < 50*time.Millisecond || retry >= 900*time.Millisecond {
		t.Fatalf("attempt gaps %v then %v: want delay_loop (1s) then delay_before_retry (50ms)", loop, retry)
	}
}

// TestPoolCancel: Cancel ends an attempt in flight at once, whether a
// TCP connect in the Connector or a checker in a goroutine, and Wait
// returns when it has ended; nothing is reported after.
func TestPoolCancel(t *testing.T) {
	conn := newConnector(t)
	p := &Pool{Rand: func(time.Duration) time.Duration { return 0 }}
	defer p.Close()
	params := Params{DelayLoop: time.Second, Retry: 1, DelayBeforeRetry: time.Second, Timeout: time.Hour}

	var rec recorder
	hung := p.Start(Job{ID: "tcp", Checker: TCP{Conn: Conn{Target: hungListener(t), Timeout: time.Hour}, Connector: conn}, Params: params}, rec.hooks())
	var started, returned atomic.Bool
	blocking := p.Start(Job{ID: "func", Params: params, Checker: CheckerFunc(func(ctx context.Context) Result {
		started.Store(true)
		<-ctx.Done()
		returned.Store(true)
		return down("canceled")
	})}, rec.hooks())
	waitFor(t, "the connect to be pending", func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return len(conn.pending) == 1
	})
	waitFor(t, "the blocking check to start", started.Load)
	start := time.Now()
	for _, task := range []*Task{hung, blocking} {
		task.Cancel()
	}
	for _, task := range []*Task{hung, blocking} {
		task.Wait()
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Cancel and Wait took %v", d)
	}
	if !returned.Load() {
		t.Fatal("Wait returned before the goroutine's check did")
	}
	conn.mu.Lock()
	pending := len(conn.pending)
	conn.mu.Unlock()
	if a, tr := rec.counts(); a != 0 || tr != 0 || pending != 0 {
		t.Fatalf("after Cancel: %d attempts, %d transitions reported, %d connects pending; want none", a, tr, pending)
	}
}

// TestPoolTCPTimeout: a hung connect is bounded by connect_timeout.
func TestPoolTCPTimeout(t *testing.T) {
	conn := newConnector(t)
	p := &Pool{Rand: func(time.Duration) time.Duration { return 0 }}
	defer p.Close()
	var rec recorder
	task := p.Start(Job{ID: "tcp", Checker: TCP{Conn: Conn{Target: hungListener(t), Timeout: 300 * time.Millisecond}, Connector: conn},
		Params: Params{DelayLoop: time.Second, Timeout: 300 * time.Millisecond}}, rec.hooks())
	waitFor(t, "a transition", func() bool { _, n := rec.counts(); return n > 0 })
	task.Cancel()
	task.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if tr := rec.trans[0]; tr.Up || tr.Result.Reason == "" {
		t.Fatalf("transition %+v, want down", tr)
	}
	expect(t, "hung connect", rec.trans[0].Result, false, "timed out")
}
