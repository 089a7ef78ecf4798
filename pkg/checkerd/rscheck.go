package checkerd

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/fanout"
	"github.com/vrrpkit/vrrpkit/pkg/track"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// realServers runs the real-server health checks of the snapshot's virtual
// servers (pkg/check), one check.Task per checker on one check.Pool (no
// goroutine per checker) so that a reload adds and removes checkers
// without touching the others. Each real server
// is one tracker of kind TRACKER_KIND_REAL_SERVER named by its health_id:
// up while every checker is up (keepalived check_api.c: a real server is
// alive while num_failed_checkers is 0). Its methods are safe for
// concurrent use.
type realServers struct {
	log  *slog.Logger
	opts check.SnapshotOptions
	now  func() time.Time
	// refresh is how often Health streams send a full snapshot when some
	// check ran since the last one, so that vrrpd's status shows a live
	// last_check without a message per check: one message per refresh for
	// thousands of servers, not thousands (which would also overflow a
	// subscriber's buffer at once).
	refresh time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// conn makes every TCP_CHECK's connects in one epoll set
	// (check.Connector); nil when it could not start (net.Dialer then).
	conn *check.Connector
	pool *check.Pool

	mu      sync.Mutex
	closed  bool
	gen     uint64
	servers map[string]*rsServer // by health_id
	// refreshed is closed and replaced when a refresh is due.
	refreshed   chan struct{}
	refreshedAt time.Time            // the last checks the last refresh covered
	hub         *fanout.Hub[rsEvent] // changes, to Health streams
	warned      map[string]bool      // checker keys whose failure to build was logged
	ha          haSuspend            // hasuspend.go
}

type rsServer struct {
	id     string
	checks []*rsCheck // in configuration order
	result track.Result
	// since: when result.State last changed (or the server was added).
	since time.Time

	iweight uint32 // the configured weight, for check.MiscWeight
}

type rsCheck struct {
	sc   check.SnapshotCheck
	task *check.Task // nil for a checker that does not run
	ran  bool
	last check.Transition
	// lastCheck is when its last attempt ended (Unix ns; 0: none yet),
	// written by the Pool's Hooks.OnAttempt without r.mu: an attempt
	// costs one atomic store and no allocation.
	lastCheck atomic.Int64
}

// defaultRefresh: see realServers.refresh.
const defaultRefresh = 30 * time.Second

// newRealServers: refresh 0 is defaultRefresh.
func newRealServers(log *slog.Logger, opts check.SnapshotOptions, refresh time.Duration) *realServers {
	if refresh <= 0 {
		refresh = defaultRefresh
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &realServers{log: log, opts: opts, now: time.Now, refresh: refresh, ctx: ctx, cancel: cancel,
		servers: map[string]*rsServer{}, hub: fanout.New[rsEvent](256), warned: map[string]bool{}, refreshed: make(chan struct{}),
		pool: &check.Pool{}}
	if r.opts.Connector == nil {
		conn, err := check.NewConnector()
		if err != nil {
			log.Warn("TCP_CHECK connects go through net.Dialer", "err", err)
		}
		r.conn, r.opts.Connector = conn, conn
	}
	r.wg.Add(1)
	go r.refreshLoop()
	return r
}

// refreshLoop signals refreshed every r.refresh if a check ended since the
// last signal, until close.
func (r *realServers) refreshLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.refresh)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		var latest time.Time
		for _, s := range r.servers {
			if lc := lastCheckOf(s); s.result.State != track.StateInit && lc.After(latest) {
				latest = lc
			}
		}
		if latest.After(r.refreshedAt) {
			r.refreshedAt = latest
			close(r.refreshed)
			r.refreshed = make(chan struct{})
		}
		r.mu.Unlock()
	}
}

// refreshChan is closed when the next refresh is due: a Health stream
// then sends a snapshot.
func (r *realServers) refreshChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshed
}

// lastCheckOf is when the last attempt of any of s's checkers ended (zero
// if none ran).
func lastCheckOf(s *rsServer) time.Time {
	var n int64
	for _, c := range s.checks {
		n = max(n, c.lastCheck.Load())
	}
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
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
			s = &rsServer{id: sc.HealthID, result: track.Result{Key: rsKey(sc.HealthID), State: track.StateInit}, since: r.now()}
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
		s.checks, s.iweight = checks, sc.Weight
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
	stopChecks(stopped)
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
	r.runLocked(s, c)
	return c
}

// runLocked starts c's attempts on the pool. r.mu is held.
func (r *realServers) runLocked(s *rsServer, c *rsCheck) {
	c.task = r.pool.Start(c.sc.Job, check.Hooks{
		OnAttempt:    func(check.Result) { c.recordAttempt(r.now()) },
		OnTransition: func(t check.Transition) { r.report(s, c, t) },
	})
}

// recordAttempt notes that an attempt ended at now.
func (c *rsCheck) recordAttempt(now time.Time) { c.lastCheck.Store(now.UnixNano()) }

// stopChecks cancels every check of cs, then waits for them: an attempt
// in flight is canceled, not waited for (a hung connect would otherwise
// hold a reload or the exit for its connect_timeout, one after another).
func stopChecks(cs []*rsCheck) {
	for _, c := range cs {
		if c.task != nil {
			c.task.Cancel()
		}
	}
	for _, c := range cs {
		if c.task != nil {
			c.task.Wait()
		}
	}
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

// updateLocked recomputes s's result and publishes it when it changed
// (state, value or detail: a detail alone moves no weight in vrrpd but is
// what status shows). r.mu is held.
func (r *realServers) updateLocked(s *rsServer) {
	res := aggregate(s.id, s.iweight, s.checks)
	old := s.result
	if res.State == track.StateInit && old.State != track.StateInit && slices.ContainsFunc(s.checks, func(c *rsCheck) bool { return c.sc.Err == nil }) {
		// A reload restarted its checkers: the last result stands until
		// they give one, so a changed check does not flap the server.
		return
	}
	s.result = res
	if res.State != old.State {
		s.since = r.now()
	}
	if res.State == old.State && res.Value == old.Value && res.Detail == old.Detail && res.HasWeight == old.HasWeight && res.Weight == old.Weight {
		return
	}
	if res.State == track.StateInit {
		return
	}
	r.hub.Publish(rsEvent{Generation: r.gen, At: r.now(), Result: rsProto(s)})
}

// rsEvent is a real server's result as published: the wire's
// TrackerResult, with since and last_check.
type rsEvent struct {
	Generation uint64
	At         time.Time
	Result     *pb.TrackerResult
}

// rsProto is s's result on the wire.
func rsProto(s *rsServer) *pb.TrackerResult {
	p := s.result.Proto()
	p.Since = timestamppb.New(s.since)
	if lc := lastCheckOf(s); !lc.IsZero() {
		p.LastCheck = timestamppb.New(lc)
	}
	return p
}

// aggregate is a real server's result from its checkers': down when a
// checker that ran is down, or when an alpha checker has not run yet
// (it starts failed, check_data.c validate_check_config); up when every
// other checker is up or has not run yet (keepalived starts checkers up);
// no result (StateInit) before any checker ran, or when none can run.
// Value is the sum of the weight deltas (FILE_CHECK) of the up checkers;
// Weight what their misc_dynamic MISC_CHECKs set (check.MiscWeight).
func aggregate(id string, iweight uint32, checks []*rsCheck) track.Result {
	res := track.Result{Key: rsKey(id), State: track.StateInit}
	var downs, ups, notRun []string
	var abs []int64
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
			if c.last.Result.HasWeight && c.last.Result.WeightAbsolute {
				abs = append(abs, c.last.Result.Weight)
			}
		default:
			anyRan = true
			// The checker's keyword first: with several checkers, which
			// one failed.
			downs = append(downs, c.sc.Type+": "+c.last.Result.Reason)
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
		res.Weight, res.HasWeight = check.MiscWeight(iweight, abs)
	}
	return res
}

// snapshotLocked returns every real server's result that has one (not
// StateInit: the wire has no "no result yet", track.Snapshot.Proto), by
// health_id.
func (r *realServers) snapshotLocked() []*pb.TrackerResult {
	out := make([]*pb.TrackerResult, 0, len(r.servers))
	for _, s := range r.servers {
		if s.result.State == track.StateInit {
			continue
		}
		out = append(out, rsProto(s))
	}
	slices.SortFunc(out, func(a, b *pb.TrackerResult) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

func (r *realServers) snapshot() []*pb.TrackerResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

// subscribe returns the current results and the changes after them: the
// subscription is taken under r.mu, as every change is published, so that
// none falls between the two.
func (r *realServers) subscribe() ([]*pb.TrackerResult, *fanout.Sub[rsEvent]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked(), r.hub.Subscribe()
}

// close stops every check and ends every subscription.
func (r *realServers) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.hub.Close()
	var all []*rsCheck
	for _, s := range r.servers {
		all = append(all, s.checks...)
	}
	r.mu.Unlock()
	r.cancel()
	stopChecks(all)
	r.wg.Wait()
	r.pool.Close()
	if r.conn != nil {
		r.conn.Close()
	}
}
