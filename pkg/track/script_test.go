package track

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestScriptState is the rise/fall counter alone (vrrp_script_child_thread).
func TestScriptState(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rise, fall uint32
		initFail   bool
		runs       string // o: success, x: failure
		want       string // state after each run: i, u, d
		start      State
	}{
		{name: "init one success is enough", rise: 3, fall: 3, runs: "o", want: "u", start: StateInit},
		{name: "init one failure is enough", rise: 3, fall: 3, runs: "x", want: "d", start: StateInit},
		{name: "fall failures take it down", rise: 2, fall: 3, runs: "oxxx", want: "uuud", start: StateInit},
		{name: "a success resets the fall count", rise: 2, fall: 2, runs: "oxoxxo", want: "uuuudd", start: StateInit},
		{name: "rise successes bring it up", rise: 3, fall: 1, runs: "xooo", want: "dddu", start: StateInit},
		{name: "a failure resets the rise count", rise: 3, fall: 1, runs: "xooxooo", want: "ddddddu", start: StateInit},
		{name: "init_fail needs rise successes", rise: 2, fall: 2, initFail: true, runs: "oo", want: "du", start: StateDown},
		{name: "init_fail rise 1", rise: 1, fall: 1, initFail: true, runs: "oxo", want: "udu", start: StateDown},
		{name: "rise and fall 0 mean 1", rise: 0, fall: 0, runs: "xoxo", want: "dudu", start: StateInit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newScriptState(&pb.VrrpScript{Rise: tc.rise, Fall: tc.fall, InitFail: tc.initFail})
			if st.state != tc.start {
				t.Fatalf("start state %v, want %v", st.state, tc.start)
			}
			var got strings.Builder
			for _, r := range tc.runs {
				st.record(r == 'o')
				got.WriteByte(st.state.String()[0])
			}
			if got.String() != tc.want {
				t.Errorf("runs %s: states %s, want %s", tc.runs, got.String(), tc.want)
			}
		})
	}
}

const testInterval = 2 * time.Second

func scriptSnap(gen uint64, sc *pb.VrrpScript) *pb.ConfigSnapshot {
	return &pb.ConfigSnapshot{Generation: gen, Scripts: []*pb.VrrpScript{sc}}
}

func newScriptSet(t *testing.T, clk *fakeClock, r ScriptRunner, log *logRec) *Set {
	t.Helper()
	s := NewSet(Options{Clock: clk, Runner: r, Log: slog.New(log), Proc: fakeProc{}})
	t.Cleanup(s.Close)
	return s
}

// TestScriptSchedule drives a script through the Set with a fake clock: the
// first run at once, then one per interval; each step's answer and the
// state the tracker shows afterwards.
func TestScriptSchedule(t *testing.T) {
	ok := scriptrun.Result{ExitStatus: 0}
	fail := scriptrun.Result{ExitStatus: 1}
	timedOut := scriptrun.Result{ExitStatus: -1, Signal: syscall.SIGKILL, TimedOut: true}
	notStarted := scriptrun.Result{ExitStatus: -1, Err: errors.New("no such file")}
	for _, tc := range []struct {
		name       string
		rise, fall uint32
		initFail   bool
		steps      []scriptrun.Result
		want       []State
	}{
		{name: "up then down", rise: 1, fall: 2, steps: []scriptrun.Result{ok, fail, fail, ok},
			want: []State{StateUp, StateUp, StateDown, StateUp}},
		{name: "timed out counts as failure", rise: 1, fall: 1, steps: []scriptrun.Result{ok, timedOut, ok},
			want: []State{StateUp, StateDown, StateUp}},
		{name: "could not start counts as failure", rise: 1, fall: 1, steps: []scriptrun.Result{notStarted},
			want: []State{StateDown}},
		{name: "init_fail", rise: 2, fall: 1, initFail: true, steps: []scriptrun.Result{ok, ok, fail},
			want: []State{StateDown, StateUp, StateDown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			r := newChanRunner()
			s := newScriptSet(t, clk, r, &logRec{})
			k := scriptKey("chk")
			if _, err := s.Apply(scriptSnap(3, &pb.VrrpScript{Name: "chk", Interval: durationpb.New(testInterval),
				Rise: tc.rise, Fall: tc.fall, InitFail: tc.initFail})); err != nil {
				t.Fatal(err)
			}
			first := StateInit
			if tc.initFail {
				first = StateDown
			}
			if got, _ := resultOf(s, k); got.State != first {
				t.Fatalf("before the first run: %v, want %v", got.State, first)
			}
			for i, res := range tc.steps {
				c := r.next(t)
				if c.gen != 3 || c.name != "chk" {
					t.Fatalf("call %d: generation %d name %q, want 3 chk", i, c.gen, c.name)
				}
				res.Duration = time.Duration(i+1) * time.Millisecond
				c.reply <- reply{res: res}
				mark := fmt.Sprintf("(ran %v)", res.Duration)
				if res.Err != nil {
					mark = res.Err.Error()
				}
				waitFor(t, "step result", func() bool {
					got, _ := resultOf(s, k)
					return strings.Contains(got.Detail, mark)
				})
				if got, _ := resultOf(s, k); got.State != tc.want[i] {
					t.Fatalf("after step %d (%+v): %v (%s), want %v", i, res, got.State, got.Detail, tc.want[i])
				}
				r.noCall(t)
				clk.Advance(testInterval)
			}
		})
	}
}

// TestScriptRunnerError: a call that fails (runner unreachable) is no
// result: the state stays.
func TestScriptRunnerError(t *testing.T) {
	clk := newFakeClock()
	r := newChanRunner()
	log := &logRec{}
	s := newScriptSet(t, clk, r, log)
	k := scriptKey("chk")
	if _, err := s.Apply(scriptSnap(1, &pb.VrrpScript{Name: "chk", Interval: durationpb.New(testInterval), Rise: 1, Fall: 1})); err != nil {
		t.Fatal(err)
	}
	r.next(t).reply <- reply{res: scriptrun.Result{Duration: time.Millisecond}}
	waitFor(t, "up", func() bool { got, _ := resultOf(s, k); return got.State == StateUp })
	clk.Advance(testInterval)
	r.next(t).reply <- reply{err: errors.New("connection refused")}
	waitFor(t, "the error logged", func() bool { return log.count("not run") == 1 })
	if got, _ := resultOf(s, k); got.State != StateUp {
		t.Errorf("after a runner error: %v, want still up", got.State)
	}
}

// TestScriptNoOverlap: a run still going when the next is due makes that
// one skipped; a runner that never answers is a timeout after timeout +
// grace; the next run happens only after the hung call returned.
func TestScriptNoOverlap(t *testing.T) {
	clk := newFakeClock()
	r := newChanRunner()
	log := &logRec{}
	s := newScriptSet(t, clk, r, log)
	k := scriptKey("chk")
	// timeout 5s > interval 2s: the runs due at 2s and 4s find it running.
	if _, err := s.Apply(scriptSnap(1, &pb.VrrpScript{Name: "chk", Interval: durationpb.New(testInterval),
		Timeout: durationpb.New(5 * time.Second), Rise: 1, Fall: 1})); err != nil {
		t.Fatal(err)
	}
	r.next(t) // the first run, which hangs
	clk.Advance(testInterval)
	waitFor(t, "first skip", func() bool { return log.count("skipping run") == 1 })
	clk.Advance(testInterval)
	waitFor(t, "second skip", func() bool { return log.count("skipping run") == 2 })
	r.noCall(t)
	if got, _ := resultOf(s, k); got.State != StateInit {
		t.Fatalf("while the first run goes: %v, want init", got.State)
	}
	clk.Advance(testInterval)
	waitFor(t, "third skip", func() bool { return log.count("skipping run") == 3 })
	// At 7s (timeout 5s + grace 2s) checkerd gives up on the answer.
	clk.Advance(time.Second)
	waitFor(t, "timed out", func() bool { got, _ := resultOf(s, k); return got.State == StateDown })
	if got, _ := resultOf(s, k); !strings.Contains(got.Detail, "timed out after 5s") {
		t.Errorf("detail %q, want the timeout", got.Detail)
	}
	// Giving up cancelled the call; its return ends the run.
	waitFor(t, "the hung call returned", func() bool { return log.count("after it was counted as timed out") == 1 })
	r.noCall(t)
	// The run due at 8s goes.
	clk.Advance(time.Second)
	c := r.next(t)
	c.reply <- reply{res: scriptrun.Result{Duration: time.Millisecond}}
	waitFor(t, "up again", func() bool { got, _ := resultOf(s, k); return got.State == StateUp })
}

// TestScriptDefaultTimeout: with no timeout, the interval is the timeout
// (system_call_script gets vscript->interval).
func TestScriptDefaultTimeout(t *testing.T) {
	clk := newFakeClock()
	r := newChanRunner()
	s := newScriptSet(t, clk, r, &logRec{})
	k := scriptKey("chk")
	if _, err := s.Apply(scriptSnap(1, &pb.VrrpScript{Name: "chk", Interval: durationpb.New(testInterval), Rise: 1, Fall: 1})); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	clk.Advance(testInterval + 2*time.Second) // interval + grace
	waitFor(t, "timed out", func() bool {
		got, _ := resultOf(s, k)
		return got.State == StateDown && strings.Contains(got.Detail, "timed out after 2s")
	})
}
