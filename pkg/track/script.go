package track

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// defaultInterval is keepalived's vrrp_script interval when none is given
// (vrrp_data.c alloc_vrrp_script: 1 second).
const defaultInterval = time.Second

// scriptState is the rise/fall counter of one vrrp_script, as keepalived's
// vscript->result in vrrp_script_child_thread (vrrp/vrrp_scheduler.c): it
// runs from 0 to rise+fall-1; at rise or above the script is up.
type scriptState struct {
	rise, fall int
	result     int
	state      State
}

func newScriptState(c *pb.VrrpScript) *scriptState {
	st := &scriptState{rise: max(int(c.GetRise()), 1), fall: max(int(c.GetFall()), 1)}
	if c.GetInitFail() {
		// SCRIPT_INIT_STATE_FAILED: down until rise successes.
		st.state, st.result = StateDown, 0
	} else {
		// SCRIPT_INIT_STATE_INIT: one result decides (vrrp_init_script).
		st.state, st.result = StateInit, st.rise-1
	}
	return st
}

// record counts one run and reports whether the state changed.
func (st *scriptState) record(ok bool) bool {
	old := st.state
	if ok {
		switch {
		case st.result < st.rise-1:
			st.result++
		case st.result != st.rise+st.fall-1:
			if st.result < st.rise {
				st.state = StateUp
			}
			st.result = st.rise + st.fall - 1
		}
	} else {
		if st.result > st.rise {
			st.result--
		} else {
			if st.result == st.rise || st.state == StateInit {
				st.state = StateDown
			}
			st.result = 0
		}
	}
	return st.state != old
}

func (st *scriptState) snapshot(k Key, detail string) Result {
	return Result{Key: k, State: st.state, Detail: detail}
}

// scriptTracker runs one vrrp_script on its schedule.
type scriptTracker struct {
	key    Key
	cfg    *pb.VrrpScript
	st     *scriptState
	set    *Set
	report func(Result)

	lastStatus string // for "now returning" logs
	lastErr    string // the runner's last error, logged once
}

type runOutcome struct {
	res scriptrun.Result
	err error
}

// run follows vrrp_script_thread: the first run is due at once, then every
// interval after the start of the previous one; a run still going when the
// next is due makes that one skipped (keepalived 2.2.7 logs "skipping run"
// but then runs it anyway, overlapping; later versions return, as here).
func (t *scriptTracker) run(ctx context.Context) {
	clk := t.set.opts.Clock
	log := t.set.log.With("vrrp_script", t.key.Name)
	interval := t.cfg.GetInterval().AsDuration()
	if interval <= 0 {
		interval = defaultInterval
	}
	// system_call_script's timeout: the script's, else the interval.
	timeout := t.cfg.GetTimeout().AsDuration()
	if timeout <= 0 {
		timeout = interval
	}
	tick := clk.NewTimer(0)
	defer func() { tick.Stop() }()

	var (
		running   bool
		timedOut  bool
		runCancel context.CancelFunc = func() {}
		deadline  Timer
		deadlineC <-chan time.Time
	)
	done := make(chan runOutcome, 1)
	defer func() {
		runCancel()
		if running {
			<-done
		}
		if deadline != nil {
			deadline.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			tick = clk.NewTimer(interval)
			if running {
				log.Info("Track script is already running, expect idle - skipping run")
				continue
			}
			running, timedOut = true, false
			rctx, cancel := context.WithCancel(ctx)
			runCancel = cancel
			gen := t.set.Generation()
			runner := t.set.opts.Runner
			// The deadline exists before the run starts, so it is never
			// behind the run it bounds.
			deadline = clk.NewTimer(timeout + t.set.opts.ScriptGrace)
			deadlineC = deadline.C()
			go func() {
				if runner == nil {
					done <- runOutcome{err: fmt.Errorf("no script runner")}
					return
				}
				r, err := runner.RunScript(rctx, gen, t.key.Name)
				done <- runOutcome{r, err}
			}()
		case <-deadlineC:
			// The runner should have killed the script at timeout; it has
			// not answered since. Count the timeout now and stop waiting;
			// the run still counts as going until its call returns.
			deadlineC = nil
			timedOut = true
			runCancel()
			t.record(log, false, fmt.Sprintf("timed out after %v (no answer from the script runner)", timeout))
		case o := <-done:
			running = false
			runCancel()
			deadline.Stop()
			deadlineC = nil
			if timedOut {
				log.Debug("vrrp_script run ended after it was counted as timed out", "err", o.err)
				continue
			}
			if o.err != nil {
				if ctx.Err() != nil {
					return
				}
				if msg := o.err.Error(); msg != t.lastErr {
					log.Warn("vrrp_script not run; its result stays as it was", "err", o.err)
					t.lastErr = msg
				}
				continue
			}
			if t.lastErr != "" {
				log.Info("vrrp_script runs again")
				t.lastErr = ""
			}
			t.record(log, o.res.OK(), describe(o.res, timeout))
		}
	}
}

// record counts a run's outcome and reports the tracker's result.
func (t *scriptTracker) record(log *slog.Logger, ok bool, detail string) {
	if status, _, _ := strings.Cut(detail, " (ran "); status != t.lastStatus {
		// keepalived: "Script `%s` now returning %d".
		log.Info("Script now returning", "result", status)
		t.lastStatus = status
	}
	if t.st.record(ok) {
		if ok {
			log.Info("VRRP_Script succeeded", "result", detail)
		} else {
			log.Info("VRRP_Script failed", "result", detail)
		}
	}
	t.report(t.st.snapshot(t.key, detail))
}

// describe says how a run ended, in status words.
func describe(r scriptrun.Result, timeout time.Duration) string {
	var s string
	switch {
	case r.Err != nil:
		return "could not run: " + r.Err.Error()
	case r.TimedOut:
		s = fmt.Sprintf("timed out after %v", timeout)
	case r.Signal != 0:
		s = fmt.Sprintf("killed by signal %d (%v)", int(r.Signal), r.Signal)
	default:
		s = fmt.Sprintf("exit status %d", r.ExitStatus)
	}
	return fmt.Sprintf("%s (ran %v)", s, r.Duration)
}
