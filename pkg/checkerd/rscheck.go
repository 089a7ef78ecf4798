package checkerd

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/track"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// realServers runs the real-server health checks of the snapshot's virtual
// servers (pkg/check), one check.Scheduler per checker so that a reload
// adds and removes checkers without touching the others. Each real server
// is one tracker of kind TRACKER_KIND_REAL_SERVER named by its health_id:
// up while every checker is up (keepalived check_api.c: a real server is
// alive while num_failed_checkers is 0). Its methods are safe for
// concurrent use.
type realServers struct {
	log   *slog.Logger
	opts  check.SnapshotOptions
	clock check.Clock // nil: the wall clock
	now   func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	gen     uint64
	servers map[string]*rsServer // by health_id
	subs    map[*rsSub]struct{}
	warned  map[string]bool // checker keys whose failure to build was logged
	ha      haSuspend       // hasuspend.go
}

type rsServer struct {
	id     string
	checks []*rsCheck // in configuration order
	result track.Result
}

type rsCheck struct {
	sc     check.SnapshotCheck
	cancel context.CancelFunc
	done   chan struct{} // nil for a checker that does not run
	ran    bool
	last   check.Transition
}

func newRealServers(log *slog.Logger, opts check.SnapshotOptions) *realServers {
	ctx, cancel := context.WithCancel(context.Background())
	return &realServers{log: log, opts: opts, now: time.Now, ctx: ctx, cancel: cancel,
		servers: map[string]*rsServer{}, subs: map[*rsSub]struct{}{}, warned: map[string]bool{}}
}

func rsKey(id string) track.Key {
	return track.Key{Kind: pb.TrackerKind_TRACKER_KIND_REAL_SERVER, Name: id}
}

// apply makes snap's real-server checks the running ones, keeping every
// checker whose Key (health_id and settings) is unchanged running with
// its state: no re-check (design.md, Reload). gen is the generation the
// results are then stamped with. It returns what changed, by
// "real_server <health_id>".
func (r *realServers) apply(gen uint64, snap *pb.ConfigSnapshot) (added, removed, changed, unchanged []string) {
	want := check.FromSnapshot(snap, r.opts)
	r.haApply(snap) // hasuspend.go: ha_suspend, before any checker starts
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.gen = gen
	var stopped []*rsCheck
	next := map[string]*rsServer{}
	for _, sc := range want {
		name := "real_server " + sc.HealthID
		old := r.servers[sc.HealthID]
		running := map[string]*rsCheck{}
		if old != nil {
			for _, c := range old.checks {
				running[c.sc.Job.Key] = c
			}
		}
		// The server keeps its identity: the running checkers report to it.
		s := old
		if s == nil {
			s = &rsServer{id: sc.HealthID, result: track.Result{Key: rsKey(sc.HealthID), State: track.StateInit}}
		}
		same := old != nil && len(old.checks) == len(sc.Checks)
		var checks []*rsCheck
		for _, want := range sc.Checks {
			if c, ok := running[want.Job.Key]; ok {
				delete(running, want.Job.Key)
				checks = append(checks, c)
				continue
			}
			same = false
			checks = append(checks, r.startLocked(s, want))
		}
		s.checks = checks
		for _, c := range running {
			stopped = append(stopped, c)
		}
		next[sc.HealthID] = s
		switch {
		case old == nil:
			added = append(added, name)
		case same:
			unchanged = append(unchanged, name)
		default:
			changed = append(changed, name)
		}
		r.updateLocked(s)
	}
	for id, s := range r.servers {
		if _, ok := next[id]; !ok {
			removed = append(removed, "real_server "+id)
			stopped = append(stopped, s.checks...)
		}
	}
	r.servers = next
	r.mu.Unlock()
	for _, c := range stopped {
		if c.cancel != nil {
			c.cancel()
		}
	}
	for _, c := range stopped {
		if c.done != nil {
			<-c.done
		}
	}
	for _, l := range []*[]string{&added, &removed, &changed, &unchanged} {
		slices.Sort(*l)
	}
	r.haFollow() // hasuspend.go: a reload may have changed ha_suspend alone
	return added, removed, changed, unchanged
}

// startLocked starts checker sc of server s; one that cannot run is kept,
// not run, and logged once per settings. r.mu is held.
func (r *realServers) startLocked(s *rsServer, sc check.SnapshotCheck) *rsCheck {
	c := &rsCheck{sc: sc}
	if sc.Err != nil {
		if !r.warned[sc.Job.Key] {
			r.warned[sc.Job.Key] = true
			lvl := slog.LevelError
			if errors.Is(sc.Err, check.ErrUnsupported) {
				lvl = slog.LevelWarn
			}
			r.log.Log(r.ctx, lvl, "real server checker not run", "real_server", s.id, "err", sc.Err)
		}
		return c
	}
	if r.haSuspendedLocked(s.id) { // hasuspend.go: not while no address of its VS is here
		return c
	}
	ctx, cancel := context.WithCancel(r.ctx)
	c.cancel, c.done = cancel, make(chan struct{})
	sched := &check.Scheduler{Clock: r.clock, OnTransition: func(t check.Transition) { r.report(s, c, t) }}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(c.done)
		sched.Run(ctx, []check.Job{sc.Job})
	}()
	return c
}

// report folds checker c's transition into its server's result.
func (r *realServers) report(s *rsServer, c *rsCheck, t check.Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.servers[s.id] != s || !slices.Contains(s.checks, c) {
		return // stopped or replaced meanwhile
	}
	c.ran, c.last = true, t
	r.updateLocked(s)
}

// updateLocked recomputes s's result and publishes it when it changed.
// r.mu is held.
func (r *realServers) updateLocked(s *rsServer) {
	res := aggregate(s.id, s.checks)
	old := s.result
	if res.State == track.StateInit && old.State != track.StateInit && slices.ContainsFunc(s.checks, func(c *rsCheck) bool { return c.sc.Err == nil }) {
		// A reload restarted its checkers: the last result stands until
		// they give one, so a changed check does not flap the server.
		return
	}
	s.result = res
	if res.State == old.State && res.Value == old.Value {
		return
	}
	if res.State == track.StateInit {
		return
	}
	ev := track.Event{Generation: r.gen, At: r.now(), Result: res}
	for sub := range r.subs {
		select {
		case sub.c <- ev:
		default:
			sub.end(true)
			delete(r.subs, sub)
		}
	}
}

// aggregate is a real server's result from its checkers': down when a
// checker that ran is down, or when an alpha checker has not run yet
// (it starts failed, check_data.c validate_check_config); up when every
// other checker is up or has not run yet (keepalived starts checkers up);
// no result (StateInit) before any checker ran, or when none can run.
// Value is the sum of the weight deltas (FILE_CHECK) of the up checkers.
func aggregate(id string, checks []*rsCheck) track.Result {
	res := track.Result{Key: rsKey(id), State: track.StateInit}
	var downs, ups, notRun []string
	anyRan := false
	for _, c := range checks {
		if c.sc.Err != nil {
			notRun = append(notRun, c.sc.Err.Error())
			continue
		}
		switch {
		case !c.ran && c.sc.Job.Params.Alpha:
			downs = append(downs, c.sc.Type+" not checked yet (alpha)")
		case !c.ran:
		case c.last.Up:
			anyRan = true
			ups = append(ups, c.last.Result.Reason)
			if c.last.Result.HasWeight && !c.last.Result.WeightAbsolute {
				res.Value += c.last.Result.Weight
			}
		default:
			anyRan = true
			downs = append(downs, c.last.Result.Reason)
		}
	}
	switch {
	case !anyRan:
		res.Detail = "not checked yet"
		if len(ups)+len(downs) == 0 && len(notRun) > 0 {
			res.Detail = "no checker runs: " + strings.Join(notRun, "; ")
		}
	case len(downs) > 0:
		res.State, res.Value, res.Detail = track.StateDown, 0, strings.Join(downs, "; ")
	default:
		res.State, res.Detail = track.StateUp, strings.Join(ups, "; ")
	}
	return res
}

// snapshot returns every real server's result, by health_id.
func (r *realServers) snapshotLocked() []track.Result {
	out := make([]track.Result, 0, len(r.servers))
	for _, s := range r.servers {
		out = append(out, s.result)
	}
	slices.SortFunc(out, func(a, b track.Result) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (r *realServers) snapshot() []track.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

// rsSub is a stream of real-server changes after a snapshot.
type rsSub struct {
	C          <-chan track.Event
	c          chan track.Event
	r          *realServers
	ended      bool
	overflowed bool
}

// subscribe returns the current results and the changes after them.
func (r *realServers) subscribe() ([]track.Result, *rsSub) {
	c := make(chan track.Event, 256)
	sub := &rsSub{C: c, c: c, r: r}
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.snapshotLocked()
	if r.closed {
		sub.end(false)
		return snap, sub
	}
	r.subs[sub] = struct{}{}
	return snap, sub
}

// end closes the channel. r.mu is held.
func (sub *rsSub) end(overflow bool) {
	if sub.ended {
		return
	}
	sub.ended, sub.overflowed = true, overflow
	close(sub.c)
}

func (sub *rsSub) Overflowed() bool {
	sub.r.mu.Lock()
	defer sub.r.mu.Unlock()
	return sub.overflowed
}

func (sub *rsSub) Close() {
	sub.r.mu.Lock()
	defer sub.r.mu.Unlock()
	delete(sub.r.subs, sub)
	sub.end(false)
}

// close stops every check and ends every subscription.
func (r *realServers) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	for sub := range r.subs {
		sub.end(false)
	}
	r.subs = map[*rsSub]struct{}{}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
