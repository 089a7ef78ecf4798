package vrrpd

// quorum_up / quorum_down (issue 8). vrrpd decides a virtual server's
// quorum (pkg/lvs Table.QuorumUp), so vrrpd is the one that sees it change;
// the script itself runs in the supervisor, as script_user, like every
// script (design.md, "Processes"): vrrpd names it over the supervisor's
// ScriptRunner (<run-dir>/scripts.sock, kind QUORUM_UP / QUORUM_DOWN, name
// the snapshot's VirtualServer.name), and the supervisor runs what its copy
// of the generation says. A request rather than an event on vrrpd's event
// stream: ScriptRunner already carries these kinds and resolves them per
// generation, and the supervisor's event follower stays as it is.
//
// When keepalived 2.2.7 runs them (check/ipwrapper.c):
//   - at start, set_quorum_states decides before any real server is alive
//     (they become alive in init_service_rs), so the quorum starts down;
//     init_service_vs -> update_quorum_state(vs, init=true) then finds it
//     gained when the live weight reaches quorum + hysteresis, and runs
//     quorum_up ("Gained quorum"); otherwise quorum_down runs only when
//     there is a sorry server ("Starting with quorum down"). Checked with
//     keepalived 2.2.7 in TestLVSVMMiscDynamic. The same holds for a
//     virtual server a reload adds; one a reload keeps keeps its state
//     (clear_diff_services).
//   - afterwards, each change runs the new state's script ("Gained quorum",
//     "Lost quorum").
//   - a virtual server a reload removes while its quorum is up runs its
//     quorum_down (clear_diff_services -> clear_service_vs ->
//     clear_service_rs_list -> update_vs_notifies: its servers are gone),
//     the script of the generation it was in.
//   - at stop, a virtual server with omega runs quorum_down
//     (clear_services -> update_vs_notifies(vs, stopping) -> do_vs_notifies),
//     killed after a second (system_call_script with TIMER_HZ).
//
// A script never holds up the engine: changes are queued under the
// engine's mu and run by one goroutine per virtual server, in order, off
// the lock.

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// ScriptRunner runs a script of a configuration generation by kind and
// name: the supervisor's ScriptRunner (scriptrun.Client).
type ScriptRunner interface {
	Run(ctx context.Context, generation uint64, kind pb.ScriptKind, name string) (scriptrun.Result, error)
}

const (
	// quorumCallTimeout bounds one request. The supervisor bounds the
	// script itself (notify.DefaultScriptTimeout); this only covers a
	// supervisor that never answers, which would stall the queue.
	quorumCallTimeout = time.Minute
	// quorumStopTimeout is keepalived's kill timer for the scripts run
	// at stop (ipwrapper.c do_vs_notifies: TIMER_HZ).
	quorumStopTimeout = time.Second
)

type quorumJob struct {
	gen     uint64
	kind    pb.ScriptKind
	name    string
	timeout time.Duration
}

// quorumRun queues and runs the quorum scripts.
type quorumRun struct {
	log    *slog.Logger
	runner ScriptRunner // nil: no scripts run
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// gen is the generation of the last table compared; guarded by the
	// engine's mu.
	gen uint64

	mu     sync.Mutex
	closed bool
	// queues holds each virtual server's pending jobs; a name present
	// (even with none left) has its goroutine running.
	queues map[string][]quorumJob
}

func (e *Engine) initQuorum(o Options) {
	ctx, cancel := context.WithCancel(context.Background())
	e.quorum = &quorumRun{log: e.log, runner: o.Scripts, ctx: ctx, cancel: cancel, queues: map[string][]quorumJob{}}
}

// quorumChangesLocked compares the quorum states of the table t with the
// previous one (prev, known when havePrev) and queues the scripts they
// call for. e.mu is held.
func (e *Engine) quorumChangesLocked(prev lvs.Table, havePrev bool, t lvs.Table) {
	for _, vs := range e.lvs.vss {
		name := vs.GetName()
		up, ok := t.QuorumUp[name]
		if !ok {
			continue
		}
		was, known := prev.QuorumUp[name]
		if !havePrev {
			known = false
		}
		e.quorumTransitionLocked(vs, was, known, up, t.Live[name])
	}
	if havePrev {
		var removed []string
		for name, up := range prev.QuorumUp {
			if _, ok := t.QuorumUp[name]; !ok && up {
				removed = append(removed, name)
			}
		}
		slices.Sort(removed)
		for _, name := range removed {
			e.log.Info("Removing Virtual Server with quorum up: quorum_down", "virtual_server", name, "generation", e.quorum.gen)
			e.quorum.enqueue(quorumJob{gen: e.quorum.gen, kind: pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN, name: name, timeout: quorumCallTimeout})
		}
	}
	e.quorum.gen = e.generation
}

// quorumTransitionLocked queues the script of one virtual server's quorum
// decision: a change from was (known: there was a state) to up, or the
// start state. e.mu is held.
func (e *Engine) quorumTransitionLocked(vs *pb.VirtualServer, was, known, up bool, live uint64) {
	name := vs.GetName()
	q, h := vs.GetQuorum(), vs.GetHysteresis()
	switch {
	case known && was == up:
		return
	case up:
		// keepalived's wording (update_quorum_state), at start too.
		e.log.Info("Gained quorum", "virtual_server", name, "quorum", q, "hysteresis", h, "weight", live)
		e.quorum.enqueue(quorumJob{gen: e.generation, kind: pb.ScriptKind_SCRIPT_KIND_QUORUM_UP, name: name, timeout: quorumCallTimeout})
	case known:
		e.log.Info("Lost quorum", "virtual_server", name, "quorum", q, "hysteresis", h, "weight", live)
		e.quorum.enqueue(quorumJob{gen: e.generation, kind: pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN, name: name, timeout: quorumCallTimeout})
	case vs.GetSorryServer() != nil:
		e.log.Info("Starting with quorum down", "virtual_server", name, "quorum", q, "hysteresis", h, "weight", live)
		e.quorum.enqueue(quorumJob{gen: e.generation, kind: pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN, name: name, timeout: quorumCallTimeout})
	}
}

// stopQuorum runs the omega virtual servers' quorum_down (keepalived at
// stop), waits for the queued scripts for as long as that takes (each
// stop script is cut at quorumStopTimeout), then cancels what still runs
// and returns when every goroutine has ended. Call it without e.mu.
func (e *Engine) stopQuorum() {
	q := e.quorum
	e.mu.Lock()
	gen := e.generation
	var omega []string
	for _, vs := range e.lvs.vss {
		if vs.GetOmega() {
			omega = append(omega, vs.GetName())
		}
	}
	e.mu.Unlock()
	for _, name := range omega {
		q.enqueue(quorumJob{gen: gen, kind: pb.ScriptKind_SCRIPT_KIND_QUORUM_DOWN, name: name, timeout: quorumStopTimeout})
	}
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(quorumStopTimeout + time.Second):
		// A queue of earlier scripts still runs: stop it.
	}
	q.cancel()
	<-done
}

// enqueue adds j to its virtual server's queue, starting the queue's
// goroutine if it is idle.
func (q *quorumRun) enqueue(j quorumJob) {
	if q.runner == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	pending, running := q.queues[j.name]
	q.queues[j.name] = append(pending, j)
	if running {
		return
	}
	q.wg.Add(1)
	go q.drain(j.name)
}

// drain runs name's jobs in order until none is left.
func (q *quorumRun) drain(name string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		jobs := q.queues[name]
		if len(jobs) == 0 || q.ctx.Err() != nil {
			delete(q.queues, name)
			q.mu.Unlock()
			return
		}
		j := jobs[0]
		q.queues[name] = jobs[1:]
		q.mu.Unlock()
		q.run(j)
	}
}

func (q *quorumRun) run(j quorumJob) {
	ctx, cancel := context.WithTimeout(q.ctx, j.timeout)
	defer cancel()
	log := q.log.With("virtual_server", j.name, "script", scriptKeyword(j.kind), "generation", j.gen)
	res, err := q.runner.Run(ctx, j.gen, j.kind, j.name)
	switch {
	case status.Code(err) == codes.NotFound:
		log.Debug("no script configured")
	case err != nil:
		log.Warn("script not run", "err", err)
	case res.Err != nil:
		log.Warn("script could not run", "err", res.Err)
	case res.TimedOut:
		log.Warn("script timed out and was killed", "ran", res.Duration)
	case res.Signal != 0:
		log.Info("script killed by signal", "signal", int(res.Signal), "ran", res.Duration)
	default:
		log.Info("script ran", "exit_status", res.ExitStatus, "ran", res.Duration)
	}
}

func scriptKeyword(k pb.ScriptKind) string {
	if k == pb.ScriptKind_SCRIPT_KIND_QUORUM_UP {
		return "quorum_up"
	}
	return "quorum_down"
}
