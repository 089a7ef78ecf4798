package check

import (
	"context"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"
)

// keepalived's timing defaults.
const (
	// DefaultDelayLoop is delay_loop's default (check_data.h
	// KEEPALIVED_DEFAULT_DELAY).
	DefaultDelayLoop = 60 * time.Second
	// DefaultRetry and DefaultDelayBeforeRetry are a checker's own
	// defaults (check_api.c queue_checker); DNS_CHECK differs.
	DefaultRetry            = 1
	DefaultDelayBeforeRetry = time.Second
	// BootstrapDelay comes before every first run (scheduler.h
	// BOOTSTRAP_DELAY, one TIMER_HZ).
	BootstrapDelay = time.Second
)

// Level is one level's setting of the timing keywords (checker, real
// server, virtual server); nil means unset there.
type Level struct {
	DelayLoop        *time.Duration
	Retry            *uint32
	DelayBeforeRetry *time.Duration
	Warmup           *time.Duration
	ConnectTimeout   *time.Duration
	Alpha            *bool
}

// Params are the resolved timing of one check.
type Params struct {
	DelayLoop        time.Duration
	Retry            uint32
	DelayBeforeRetry time.Duration
	// Warmup bounds the random wait before the first run (after
	// BootstrapDelay), which spreads checks of one real server.
	Warmup time.Duration
	// Alpha starts the check down: it needs a success to come up.
	Alpha bool
	// Timeout is the deadline of one attempt (connect_timeout, or
	// misc_timeout for MISC_CHECK).
	Timeout time.Duration
}

// Resolve applies keepalived's inheritance (check_data.c
// validate_check_config): a virtual server's values fill a real server's
// unset ones, the real server's fill the checker's, and then the checker
// type's defaults: retry defaultRetry, delay_before_retry
// defaultDelayBeforeRetry (0: delay_loop), warmup delay_loop,
// connect_timeout 5s, delay_loop 60s, alpha off.
func Resolve(checker, rs, vs Level, defaultRetry uint32, defaultDelayBeforeRetry time.Duration) Params {
	pickD := func(get func(Level) *time.Duration) *time.Duration {
		for _, l := range []Level{checker, rs, vs} {
			if v := get(l); v != nil {
				return v
			}
		}
		return nil
	}
	p := Params{DelayLoop: DefaultDelayLoop, Timeout: DefaultConnectTimeout, Retry: defaultRetry}
	if v := pickD(func(l Level) *time.Duration { return l.DelayLoop }); v != nil {
		p.DelayLoop = *v
	}
	if v := pickD(func(l Level) *time.Duration { return l.ConnectTimeout }); v != nil {
		p.Timeout = *v
	}
	p.Warmup = p.DelayLoop
	if v := pickD(func(l Level) *time.Duration { return l.Warmup }); v != nil {
		p.Warmup = *v
	}
	p.DelayBeforeRetry = defaultDelayBeforeRetry
	if p.DelayBeforeRetry == 0 {
		p.DelayBeforeRetry = p.DelayLoop
	}
	if v := pickD(func(l Level) *time.Duration { return l.DelayBeforeRetry }); v != nil {
		p.DelayBeforeRetry = *v
	}
	for _, l := range []Level{checker, rs, vs} {
		if l.Retry != nil {
			p.Retry = *l.Retry
			break
		}
	}
	for _, l := range []Level{checker, rs, vs} {
		if l.Alpha != nil {
			p.Alpha = *l.Alpha
			break
		}
	}
	return p
}

// machine is the up/down rule of keepalived's check epilogues
// (check_dns.c dns_final, check_udp.c udp_epilog, check_http.c epilog):
// the first attempt decides at once (retry_it starts at retry,
// check_data.c), later an up check goes down only after retry more
// failed attempts spaced by delay_before_retry, and a down check comes
// up on its first success.
type machine struct {
	p       Params
	up      bool
	hasRun  bool
	retryIt uint32
	last    Result
}

func newMachine(p Params) *machine {
	return &machine{p: p, up: !p.Alpha, retryIt: p.Retry}
}

// step folds one result in: emit says the state (or weight) is news,
// next is the wait before the next attempt.
func (m *machine) step(r Result) (emit bool, next time.Duration) {
	first := !m.hasRun
	if !r.Up {
		if m.up || !m.hasRun {
			if m.retryIt < m.p.Retry {
				m.retryIt++
				m.hasRun = true
				return false, m.p.DelayBeforeRetry
			}
			emit = m.up || first
			m.up = false
			m.last = r
		}
	} else {
		weightNews := m.up && (r.HasWeight != m.last.HasWeight || r.Weight != m.last.Weight)
		emit = !m.up || first || weightNews
		m.up = true
		if emit {
			m.last = r
		}
	}
	m.hasRun = true
	m.retryIt = 0
	return emit, m.p.DelayLoop
}

// Clock is the time source of the scheduler.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Bounded is a Checker whose Check returns by its Params.Timeout of
// itself (TCP: connect_timeout bounds the connect). The Scheduler then
// adds no deadline of its own to the attempt: no context and timer per
// attempt, and no deadline that could fire before the checker's own and
// turn a completed attempt into a failure.
type Bounded interface {
	Bounded() bool
}

// Job is one check of one real server.
type Job struct {
	// ID names the check in transitions ("vs/rs/HTTP_GET#0").
	ID      string
	Checker Checker
	Params  Params
	// Key, when set, merges jobs: jobs with the same Key (the same check
	// of the same real server, configured twice) share one run, and each
	// ID gets its transitions.
	Key string
}

// periodFromStart is a Checker whose period runs from the start of each
// attempt rather than its end.
type periodFromStart interface{ periodFromStart() bool }

// Transition is a check's state as it changed.
type Transition struct {
	ID     string
	Up     bool
	Result Result
	At     time.Time
	// Initial marks the first verdict of a check.
	Initial bool
	// Shutdown marks the down that omega sends at exit.
	Shutdown bool
}

// Snapshot is every check's current state, in ID order; a check that has
// not run yet is listed with its starting state (down with alpha).
type Snapshot struct {
	At     time.Time
	Checks []Transition
}

// Scheduler runs Jobs: one owner goroutine per job (or per Key).
type Scheduler struct {
	// Clock defaults to the wall clock.
	Clock Clock
	// Rand draws the warmup wait in [0, n]; defaults to math/rand.
	Rand func(n time.Duration) time.Duration
	// OnTransition receives transitions one at a time, in order.
	OnTransition func(Transition)
	// OnSnapshot, with SnapshotEvery > 0, receives a full snapshot
	// every SnapshotEvery and once when Run starts.
	OnSnapshot    func(Snapshot)
	SnapshotEvery time.Duration
	// Omega sends, when Run ends, a Shutdown down transition for each
	// check that is up: keepalived's omega runs the down notifiers at
	// exit (keepalived.conf(5) virtual_server "omega").
	Omega bool

	mu     sync.Mutex
	emitMu sync.Mutex
	states map[string]Transition
}

func (s *Scheduler) clock() Clock {
	if s.Clock == nil {
		return wallClock{}
	}
	return s.Clock
}

func (s *Scheduler) draw(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if s.Rand != nil {
		return s.Rand(n)
	}
	return rand.N(n + 1)
}

func (s *Scheduler) emit(t Transition) {
	s.emitMu.Lock()
	defer s.emitMu.Unlock()
	s.mu.Lock()
	s.states[t.ID] = t
	s.mu.Unlock()
	if s.OnTransition != nil {
		s.OnTransition(t)
	}
}

// Snapshot returns every check's current state.
func (s *Scheduler) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{At: s.clock().Now()}
	for _, t := range s.states {
		snap.Checks = append(snap.Checks, t)
	}
	sort.Slice(snap.Checks, func(i, j int) bool { return snap.Checks[i].ID < snap.Checks[j].ID })
	return snap
}

// Run runs jobs until ctx ends, then returns after every goroutine it
// started has stopped.
func (s *Scheduler) Run(ctx context.Context, jobs []Job) {
	groups := map[string][]Job{}
	var order []string
	s.mu.Lock()
	s.states = map[string]Transition{}
	for i, j := range jobs {
		k := j.Key
		if k == "" {
			k = "\x00" + j.ID + "\x00" + strconv.Itoa(i)
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], j)
		s.states[j.ID] = Transition{ID: j.ID, Up: !j.Params.Alpha, Result: Result{Up: !j.Params.Alpha, Reason: "not checked yet"}}
	}
	s.mu.Unlock()

	if len(order) == 1 && (s.OnSnapshot == nil || s.SnapshotEvery <= 0) {
		// One job (checkerd runs a Scheduler per checker): no goroutine
		// beside the caller's.
		s.runJob(ctx, groups[order[0]])
		s.omega()
		return
	}
	var wg sync.WaitGroup
	for _, k := range order {
		g := groups[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runJob(ctx, g)
		}()
	}
	if s.OnSnapshot != nil && s.SnapshotEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.emitMu.Lock()
			s.OnSnapshot(s.Snapshot())
			s.emitMu.Unlock()
			for {
				select {
				case <-ctx.Done():
					return
				case <-s.clock().After(s.SnapshotEvery):
				}
				s.emitMu.Lock()
				s.OnSnapshot(s.Snapshot())
				s.emitMu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.omega()
}

// omega sends the Shutdown transitions (see Scheduler.Omega).
func (s *Scheduler) omega() {
	if s.Omega {
		for _, t := range s.Snapshot().Checks {
			if t.Up {
				s.emit(Transition{ID: t.ID, Up: false, At: s.clock().Now(), Shutdown: true,
					Result: Result{Reason: "checker stopping (omega)"}})
			}
		}
	}
}

func (s *Scheduler) runJob(ctx context.Context, g []Job) {
	j := g[0]
	m := newMachine(j.Params)
	wait := BootstrapDelay + s.draw(j.Params.Warmup)
	// With the wall clock, one timer reset for each wait rather than a
	// new one (time.After) per attempt.
	var timer *time.Timer
	if s.Clock == nil {
		timer = time.NewTimer(wait)
		defer timer.Stop()
	}
	bounded := false
	if b, ok := j.Checker.(Bounded); ok {
		bounded = b.Bounded()
	}
	for {
		var fire <-chan time.Time
		if timer != nil {
			timer.Reset(wait)
			fire = timer.C
		} else {
			fire = s.clock().After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-fire:
		}
		began := s.clock().Now()
		var r Result
		if j.Params.Timeout > 0 && !bounded {
			actx, cancel := context.WithTimeout(ctx, j.Params.Timeout)
			r = j.Checker.Check(actx)
			cancel()
		} else {
			r = j.Checker.Check(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		first := !m.hasRun
		emit, next := m.step(r)
		if emit {
			now := s.clock().Now()
			for _, jj := range g {
				s.emit(Transition{ID: jj.ID, Up: m.up, Result: m.last, At: now, Initial: first})
			}
		}
		wait = next
		if p, ok := j.Checker.(periodFromStart); ok && p.periodFromStart() {
			// The next run is due a period after this one began, not
			// after it ended (MISC_CHECK: check_misc.c schedules from
			// last_ran), at once if that is past.
			wait = max(next-s.clock().Now().Sub(began), 0)
		}
	}
}
