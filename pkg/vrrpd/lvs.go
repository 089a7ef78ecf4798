package vrrpd

// IPVS (issue 8): vrrpd programs the kernel's IPVS table from the
// snapshot's virtual servers and the real servers' health that checkerd
// streams (TRACKER_KIND_REAL_SERVER, by health_id). pkg/lvs computes the
// table and reconciles the kernel; this file decides when. The table is
// computed under the engine's mu (it is pure), and handed to a worker
// goroutine that does the netlink calls outside mu, one Reconcile at a
// time: after every apply and health change, every lvsInterval (a service
// removed by hand comes back), and once with an empty table at shutdown,
// which removes what vrrpkit owns (keepalived's default at stop: clear_services).
//
// A vrrpd that starts (or reloads) knows nothing of the real servers'
// health until checkerd's health snapshot comes: a checked server would
// count as up (check_api.c: checkers begin up) and a server checkerd knows
// is down would be re-added for a moment, a flap that a restart of vrrpd
// must not cause (issue 8). So while the virtual servers have checked real
// servers, the table is not handed to the worker, and IPVS is neither
// added to nor removed from, until a health snapshot of the running
// generation arrived, or Options.LVSHealthWait passed (then keepalived's
// start rules decide, and the log says why).

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// LVSOpener opens the kernel's IPVS table (lvs.OpenKernel). A nil Kernel
// with a nil error means no IPVS.
type LVSOpener func() (lvs.Kernel, error)

// defaultLVSInterval is how often the kernel's table is re-checked against
// the desired one when nothing else happens.
const defaultLVSInterval = 10 * time.Second

// DefaultLVSHealthWait is how long vrrpd waits for checkerd's health
// snapshot before programming IPVS from the start rules: the follower's
// dial timeout (2 s) and a reconnect or two, with room for the supervisor
// to restart a checkerd that died at the same time.
const DefaultLVSHealthWait = 5 * time.Second

// lvsRun is the engine's IPVS state.
type lvsRun struct {
	open     LVSOpener
	interval time.Duration

	// Guarded by the engine's mu.
	vss      []*pb.VirtualServer
	health   map[string]lvs.ServerHealth // by health_id, as checkerd last said
	prev     lvs.Table
	havePrev bool
	started  bool               // the worker runs
	stop     context.CancelFunc // stops the worker

	// The wait for checkerd's health (see the top of the file).
	healthWait  time.Duration // 0: never wait (no checkerd to wait for)
	healthGen   uint64        // the newest generation of a health snapshot
	haveHealth  bool          // a health snapshot arrived
	holding     bool          // a table is held back, waiting
	waitGen     uint64        // the generation waitTimer runs for
	waitTimer   *time.Timer   // real time: it waits for another process
	expiredGen  uint64        // the generation whose wait ran out
	waitExpired bool

	kick chan struct{} // cap 1: a new table is pending

	// A health change decides its virtual server's quorum at once (and
	// runs its script), as keepalived does per checker result, but only
	// marks the table dirty: the worker computes it once per pass
	// (lvsTableLocked). 5,000 real servers reporting at start would
	// otherwise cost 5,000 computations of a 5,000-server table under mu
	// (1.4 ms and 1.6 MB each). needFull: the configuration changed, so
	// the next update computes the table and its start rules in full.
	dirty, needFull bool
	changed         map[string]bool                // health_ids changed since the last step
	vsByID          map[string][]*pb.VirtualServer // health_id -> its virtual servers

	// Used only by the worker. Reconciles go through mirror, over kernel:
	// a health change costs its own netlink calls, not a dump of the
	// whole table; the periodic pass (interval) dumps again (lvs.Mirror).
	kernel      lvs.Kernel
	mirror      *lvs.Mirror
	unavailable bool
	passes      atomic.Int64 // reconcile passes made, for tests
	owned       *lvs.Ownership
}

func (e *Engine) initLVS(o Options) {
	e.lvs = lvsRun{open: o.LVS, interval: defaultLVSInterval, health: map[string]lvs.ServerHealth{},
		kick: make(chan struct{}, 1), owned: lvs.NewOwnership(), healthWait: max(o.LVSHealthWait, 0)}
	if o.LVS == nil && o.Addresses == nil {
		e.lvs.open = lvs.OpenKernel
	}
}

// applyLVSLocked takes a snapshot's virtual servers. Health results are
// kept for every real server the snapshot still names (a reload keeps a
// server's health_id unless its checks changed).
func (e *Engine) applyLVSLocked(snap *pb.ConfigSnapshot) {
	l := &e.lvs
	l.vss = snap.GetVirtualServers()
	l.needFull = true
	l.vsByID = map[string][]*pb.VirtualServer{}
	keep := map[string]bool{}
	for _, vs := range l.vss {
		for _, rs := range vs.GetRealServers() {
			keep[rs.GetHealthId()] = true
			l.vsByID[rs.GetHealthId()] = append(l.vsByID[rs.GetHealthId()], vs)
		}
		if s := vs.GetSorryServer(); s != nil {
			keep[s.GetHealthId()] = true
		}
	}
	for id := range l.health {
		if !keep[id] {
			delete(l.health, id)
		}
	}
	e.updateLVSLocked()
}

// lvsHealthLocked records a real server's result (up, the weight a
// misc_dynamic MISC_CHECK set, the FILE_CHECK deltas); it reports a change.
func (e *Engine) lvsHealthLocked(r *pb.TrackerResult) bool {
	h := lvs.ServerHealth{Up: r.GetUp(), Weight: r.GetWeight(), HasWeight: r.Weight != nil, Delta: r.GetValue()}
	old, ok := e.lvs.health[r.GetName()]
	if ok && old == h {
		return false
	}
	e.lvs.health[r.GetName()] = h
	if e.lvs.changed == nil {
		e.lvs.changed = map[string]bool{}
	}
	e.lvs.changed[r.GetName()] = true
	return true
}

// lvsSnapshotLocked records that checkerd's health snapshot of gen
// arrived (ApplyHealth has refused older ones); it reports whether a table
// was held back for it, which must now be computed.
func (e *Engine) lvsSnapshotLocked(gen uint64) bool {
	l := &e.lvs
	if !l.haveHealth || gen > l.healthGen {
		l.healthGen, l.haveHealth = gen, true
	}
	return l.holding
}

// hasCheckedRealServers reports whether a real server's state depends on
// checkerd: one not marked unchecked (a real server without checkers is
// always up, check_api.c).
func hasCheckedRealServers(vss []*pb.VirtualServer) bool {
	for _, vs := range vss {
		for _, rs := range vs.GetRealServers() {
			if !rs.GetUnchecked() {
				return true
			}
		}
	}
	return false
}

// mustWaitForHealth is the decision of the wait, pure: hold the table of
// generation gen back while there is checkerd health to wait for (wait >
// 0 and a checked real server), no health snapshot of gen or newer came,
// and the wait of gen has not run out.
func mustWaitForHealth(vss []*pb.VirtualServer, wait time.Duration, gen uint64, haveHealth bool, healthGen uint64, expired bool) bool {
	switch {
	case wait <= 0 || expired:
		return false
	case haveHealth && healthGen >= gen:
		return false
	}
	return hasCheckedRealServers(vss)
}

// holdLVSLocked reports whether the table must wait for checkerd's health,
// and arms the bounded wait of the running generation the first time.
func (e *Engine) holdLVSLocked() bool {
	l := &e.lvs
	gen := e.generation
	expired := l.waitExpired && l.expiredGen == gen
	if !mustWaitForHealth(l.vss, l.healthWait, gen, l.haveHealth, l.healthGen, expired) {
		if l.holding {
			l.holding = false
			if l.waitTimer != nil {
				l.waitTimer.Stop()
				l.waitTimer = nil
			}
			if !expired {
				e.log.Info("IPVS: checkerd's health snapshot arrived; programming the table", "generation", gen)
			}
		}
		return false
	}
	l.holding = true
	if l.waitTimer == nil || l.waitGen != gen {
		if l.waitTimer != nil {
			l.waitTimer.Stop()
		}
		e.log.Info("IPVS: waiting for checkerd's health snapshot before changing the table, so that a real server checkerd knows is down is not re-added",
			"generation", gen, "wait", l.healthWait)
		l.waitGen = gen
		l.waitTimer = time.AfterFunc(l.healthWait, func() { e.lvsWaitExpired(gen) })
	}
	return true
}

// lvsWaitExpired ends the wait of gen, if it still waits.
func (e *Engine) lvsWaitExpired(gen uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := &e.lvs
	if e.stopped || !l.holding || l.waitGen != gen || e.generation != gen {
		return
	}
	l.waitExpired, l.expiredGen, l.waitTimer = true, gen, nil
	e.log.Warn("IPVS: no health snapshot from checkerd in time; programming the table from the start rules (a checked real server without a result is up unless a checker is alpha)",
		"generation", gen, "waited", l.healthWait)
	e.updateLVSLocked()
}

// updateLVSLocked computes the desired table and hands it to the worker,
// which it starts the first time there are virtual servers: without any,
// IPVS's netlink is never opened. While the table waits for checkerd's
// health, nothing is handed over: the worker, if it runs, keeps
// reconciling the last table it had.
func (e *Engine) updateLVSLocked() {
	l := &e.lvs
	if !l.started && len(l.vss) == 0 {
		return
	}
	if e.holdLVSLocked() {
		return
	}
	if l.needFull || !l.havePrev {
		e.computeLVSLocked()
	} else {
		e.stepQuorumLocked()
		l.dirty = true
	}
	if !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.stop = cancel
		e.wg.Add(1)
		go e.lvsWorker(ctx, l.interval)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) lvsHealthFunc() lvs.Health {
	l := &e.lvs
	return func(id string) (lvs.ServerHealth, bool) {
		h, ok := l.health[id]
		return h, ok
	}
}

// computeLVSLocked computes the table in full, with keepalived's start
// rules for the virtual servers the last table did not know, and queues
// the quorum scripts that calls for.
func (e *Engine) computeLVSLocked() {
	l := &e.lvs
	var t lvs.Table
	if l.havePrev {
		t = l.prev.Next(l.vss, e.lvsHealthFunc())
	} else {
		t = lvs.Desired(l.vss, e.lvsHealthFunc())
	}
	e.quorumChangesLocked(l.prev, l.havePrev, t) // quorum.go: quorum_up / quorum_down
	l.prev, l.havePrev = t, true
	l.dirty, l.needFull = false, false
	clear(l.changed)
}

// stepQuorumLocked decides the quorum of each virtual server a changed
// real server belongs to, in configuration order, and queues its script.
func (e *Engine) stepQuorumLocked() {
	l := &e.lvs
	if len(l.changed) == 0 {
		return
	}
	touched := map[*pb.VirtualServer]bool{}
	for id := range l.changed {
		for _, vs := range l.vsByID[id] {
			touched[vs] = true
		}
	}
	clear(l.changed)
	health := e.lvsHealthFunc()
	for _, vs := range l.vss {
		if touched[vs] {
			was, known, up, live := l.prev.StepQuorum(vs, health)
			e.quorumTransitionLocked(vs, was, known, up, live) // quorum.go
		}
	}
}

// lvsTableLocked is the desired table for the current health: the last
// one, recomputed if health changed since (the quorum states it reads were
// decided by stepQuorumLocked, so it agrees with them).
func (e *Engine) lvsTableLocked() lvs.Table {
	l := &e.lvs
	// needFull: a new configuration waits (holdLVSLocked) for its full
	// computation; until then the last table stands.
	if l.dirty && !l.needFull {
		l.prev, l.dirty = l.prev.Next(l.vss, e.lvsHealthFunc()), false
	}
	return l.prev
}

// stopLVSLocked returns what stops the worker (which then removes what
// vrrpkit owns), or nil.
func (e *Engine) stopLVSLocked() context.CancelFunc {
	if t := e.lvs.waitTimer; t != nil {
		t.Stop()
		e.lvs.waitTimer = nil
	}
	return e.lvs.stop
}

func (e *Engine) lvsWorker(ctx context.Context, interval time.Duration) {
	defer e.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			e.refreshLVSMirror()
			if !e.lvsFlushAllAtStop() { // lvs_sync.go: lvs_flush_on_stop flushes instead
				e.reconcileLVS(context.WithoutCancel(ctx), lvs.Table{})
			}
			if c, ok := e.lvs.kernel.(io.Closer); ok {
				c.Close() // its netlink socket
			}
			return
		case <-e.lvs.kick:
		case <-tick.C:
			// What someone else did (ipvsadm -D) shows only in a dump.
			e.refreshLVSMirror()
		}
		e.mu.Lock()
		t := e.lvsTableLocked()
		e.mu.Unlock()
		e.reconcileLVS(ctx, t)
	}
}

// refreshLVSMirror makes the worker's next Reconcile dump the kernel.
func (e *Engine) refreshLVSMirror() {
	if e.lvs.mirror != nil {
		e.lvs.mirror.Refresh()
	}
}

// reconcileLVS runs on the worker only. Failures are logged, one line per
// failed step (each names its service), and never fail an apply.
func (e *Engine) reconcileLVS(ctx context.Context, t lvs.Table) {
	l := &e.lvs
	defer l.passes.Add(1)
	if l.unavailable {
		return
	}
	if l.kernel == nil {
		var k lvs.Kernel
		err := errors.New("no IPVS kernel interface")
		if l.open != nil {
			k, err = l.open()
			if err == nil && k == nil {
				err = errors.New("no IPVS kernel interface")
			}
		}
		if err != nil {
			l.unavailable = true
			e.log.Warn("IPVS not available: virtual servers are not programmed", "err", err)
			return
		}
		l.kernel, l.mirror = k, lvs.NewMirror(k)
	}
	ch, err := lvs.Reconcile(ctx, l.mirror, l.owned, t)
	for _, c := range ch {
		e.log.Info("IPVS changed", "change", c.String())
	}
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		e.log.Error("IPVS reconcile", "err", err)
	}
}
