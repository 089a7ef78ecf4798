package check

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Pool runs many jobs with no goroutine of their own between attempts:
// one heap of due times under one timer, as keepalived's scheduler does
// for all its checkers (scheduler.c, one timer tree in one thread). An
// attempt of a TCP check with a Connector runs in the Connector's epoll
// loop, with no goroutine at all; any other checker's attempt runs in a
// goroutine of its own that ends with the attempt, bounded by the job's
// Timeout like the Scheduler's. The up/down rule is the Scheduler's
// (machine). At 5,000 checks this saves 5,000 parked goroutines (their
// stacks grow to 8 KiB on the check path and stay there), a timer each
// and the wake-ups of both.
//
// A Task is one job's owner: Cancel stops it, and Wait returns once no
// attempt of it runs; the Pool keeps no goroutine past that.
type Pool struct {
	// Rand draws the warmup wait in [0, n]; defaults to math/rand.
	Rand func(n time.Duration) time.Duration

	mu    sync.Mutex
	heap  []*Task // by due time
	timer *time.Timer
	armed time.Time // when timer fires; zero: stopped
	due   []*Task   // fire's scratch
}

// Hooks receive what a Task does. They are called from the goroutine
// the attempt ended on, one attempt of a task at a time.
type Hooks struct {
	// OnTransition is the Scheduler's OnTransition for this job.
	OnTransition func(Transition)
	// OnAttempt, if set, is called after each attempt, before any
	// transition it makes.
	OnAttempt func(Result)
}

// Task is a job running on a Pool.
type Task struct {
	p       *Pool
	job     Job
	hooks   Hooks
	m       *machine
	bounded bool
	tcp     *TCP // set when attempts go through a Connector
	tcpDone func(error)
	tcpUp   Result // a successful connect's, made once
	// fromStart: the period runs from the start of each attempt
	// (periodFromStart: MISC_CHECK), began is when the last one started.
	fromStart bool
	began     time.Time

	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by p.mu:
	at       time.Time
	idx      int // in p.heap; -1: out
	running  bool
	stopped  bool
	idle     chan struct{} // closed when a stopped task's attempt ends
	probe    *connect      // the TCP attempt in flight
	probeSeq uint32
}

func (p *Pool) draw(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if p.Rand != nil {
		return p.Rand(n)
	}
	return rand.N(n + 1)
}

// Start runs job from now: its first attempt after BootstrapDelay and a
// random part of its Warmup, as Scheduler.Run.
func (p *Pool) Start(job Job, h Hooks) *Task {
	t := &Task{p: p, job: job, hooks: h, m: newMachine(job.Params), idx: -1}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if b, ok := job.Checker.(Bounded); ok {
		t.bounded = b.Bounded()
	}
	if f, ok := job.Checker.(periodFromStart); ok {
		t.fromStart = f.periodFromStart()
	}
	if tc, ok := job.Checker.(TCP); ok && tc.async() {
		t.tcp = &tc
		t.tcpDone = t.endTCP
		t.tcpUp = tc.result(nil)
	}
	p.mu.Lock()
	t.at = time.Now().Add(BootstrapDelay + p.draw(job.Params.Warmup))
	p.pushLocked(t)
	p.mu.Unlock()
	return t
}

// Cancel stops the task: no attempt starts after it, and one in flight is
// ended (canceled) rather than waited for. Wait for it to end.
func (t *Task) Cancel() {
	p := t.p
	p.mu.Lock()
	if t.stopped {
		p.mu.Unlock()
		return
	}
	t.stopped = true
	p.removeLocked(t)
	running, probe, seq := t.running, t.probe, t.probeSeq
	if running {
		t.idle = make(chan struct{})
	}
	p.mu.Unlock()
	t.cancel()
	if running && probe != nil {
		t.tcp.Connector.abort(probe, seq)
	}
}

// Wait returns once the task is canceled and no attempt of it runs.
func (t *Task) Wait() {
	p := t.p
	p.mu.Lock()
	idle := t.idle
	running := t.running
	p.mu.Unlock()
	if running && idle != nil {
		<-idle
	}
}

// fireSlack: fire also starts the attempts due within this much, rather
// than a timer and a wake-up each: at 5,000 checks a second they are 0.2
// ms apart. keepalived's loop has the same grain: its epoll_wait timeout
// is in milliseconds (scheduler.c).
const fireSlack = time.Millisecond

// fire starts the attempts that are due and sets the timer for the next.
func (p *Pool) fire() {
	p.mu.Lock()
	p.armed = time.Time{}
	now := time.Now().Add(fireSlack)
	due := p.due[:0]
	for len(p.heap) > 0 && !p.heap[0].at.After(now) {
		t := p.heap[0]
		p.removeLocked(t)
		t.running = true
		due = append(due, t)
	}
	p.armLocked()
	p.due = due[:0]
	// Copy out: the scratch slice is reused by the next fire, which may
	// run while these attempts start.
	var start []*Task
	if len(due) <= 64 {
		var buf [64]*Task
		start = append(buf[:0], due...)
	} else {
		start = append([]*Task(nil), due...)
	}
	clear(due)
	p.mu.Unlock()
	for _, t := range start {
		t.begin()
	}
}

// begin starts one attempt.
func (t *Task) begin() {
	if t.tcp != nil {
		c := t.tcp.Connector
		timeout := t.tcp.Timeout
		if timeout <= 0 {
			timeout = t.job.Params.Timeout // as the Scheduler bounds it
		}
		probe, seq, err, pending := c.startTo(t.tcp.Target, monoDeadline(t.ctx, timeout), t.tcpDone)
		if !pending {
			t.endTCP(err)
			return
		}
		t.p.mu.Lock()
		stopped := t.stopped
		if t.running {
			t.probe, t.probeSeq = probe, seq
		}
		t.p.mu.Unlock()
		if stopped {
			c.abort(probe, seq) // Cancel came before the probe was known
		}
		return
	}
	t.began = time.Now()
	go func() {
		var r Result
		if t.job.Params.Timeout > 0 && !t.bounded {
			actx, cancel := context.WithTimeout(t.ctx, t.job.Params.Timeout)
			r = t.job.Checker.Check(actx)
			cancel()
		} else {
			r = t.job.Checker.Check(t.ctx)
		}
		t.end(r)
	}()
}

func (t *Task) endTCP(err error) {
	if err == nil {
		t.end(t.tcpUp)
		return
	}
	t.end(t.tcp.result(err))
}

// end folds an attempt's result in and schedules the next attempt.
func (t *Task) end(r Result) {
	p := t.p
	p.mu.Lock()
	t.probe = nil
	stopped := t.stopped
	p.mu.Unlock()
	var next time.Duration
	if !stopped {
		first := !t.m.hasRun
		var emit bool
		emit, next = t.m.step(r)
		if t.hooks.OnAttempt != nil {
			t.hooks.OnAttempt(r)
		}
		if emit && t.hooks.OnTransition != nil {
			t.hooks.OnTransition(Transition{ID: t.job.ID, Up: t.m.up, Result: t.m.last, At: time.Now(), Initial: first})
		}
	}
	p.mu.Lock()
	t.running = false
	if t.stopped {
		if t.idle != nil {
			close(t.idle)
			t.idle = nil
		}
	} else {
		t.at = time.Now().Add(next)
		if t.fromStart {
			// The next run is due a period after this one began, at once
			// if that is past (check_misc.c schedules from last_ran).
			now := time.Now()
			t.at = t.began.Add(next)
			if t.at.Before(now) {
				t.at = now
			}
		}
		p.pushLocked(t)
	}
	p.mu.Unlock()
}

// armLocked sets the timer for the heap's head.
func (p *Pool) armLocked() {
	if len(p.heap) == 0 {
		return
	}
	at := p.heap[0].at
	if !p.armed.IsZero() && !p.armed.After(at) {
		return // fires in time already
	}
	p.armed = at
	d := time.Until(at)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.fire)
		return
	}
	p.timer.Reset(d)
}

func (p *Pool) pushLocked(t *Task) {
	t.idx = len(p.heap)
	p.heap = append(p.heap, t)
	p.upHeap(t.idx)
	if t.idx == 0 {
		p.armLocked()
	}
}

func (p *Pool) removeLocked(t *Task) {
	i := t.idx
	if i < 0 {
		return
	}
	last := len(p.heap) - 1
	if i != last {
		p.swap(i, last)
	}
	p.heap[last] = nil
	p.heap = p.heap[:last]
	t.idx = -1
	if i != last {
		p.downHeap(i)
		p.upHeap(i)
	}
}

func (p *Pool) swap(i, j int) {
	p.heap[i], p.heap[j] = p.heap[j], p.heap[i]
	p.heap[i].idx, p.heap[j].idx = i, j
}

func (p *Pool) upHeap(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.heap[i].at.Before(p.heap[parent].at) {
			return
		}
		p.swap(i, parent)
		i = parent
	}
}

func (p *Pool) downHeap(i int) {
	n := len(p.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && p.heap[r].at.Before(p.heap[l].at) {
			m = r
		}
		if !p.heap[m].at.Before(p.heap[i].at) {
			return
		}
		p.swap(i, m)
		i = m
	}
}

// Close stops the timer. Every task must have been canceled and waited.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.armed = time.Time{}
}
