package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// localRunner runs MISC_CHECK scripts with a real scriptrun.Runner as this
// process's user: what the supervisor does, without the gRPC hop.
type localRunner struct {
	r       scriptrun.Runner
	scripts map[string]scriptrun.Command
	err     error
	names   []string
}

func (l *localRunner) RunMisc(ctx context.Context, name string) (scriptrun.Result, error) {
	l.names = append(l.names, name)
	if l.err != nil {
		return scriptrun.Result{}, l.err
	}
	cmd, ok := l.scripts[name]
	if !ok {
		return scriptrun.Result{}, fmt.Errorf("%w: %s", scriptrun.ErrUnknownScript, name)
	}
	return l.r.Run(ctx, cmd), nil
}

func TestMiscCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		dynamic bool
		timeout time.Duration
		up      bool
		weight  int64 // -1: none
		reason  string
	}{
		{"exit 0", "exit 0", false, 0, true, -1, "exited 0"},
		{"exit 1", "exit 1", false, 0, false, -1, "exited with status 1"},
		{"exit 7 not dynamic", "exit 7", false, 0, false, -1, "exited with status 7"},
		{"dynamic exit 0", "exit 0", true, 0, true, -1, "exited 0"},
		{"dynamic exit 1", "exit 1", true, 0, false, -1, "exited with status 1"},
		{"dynamic exit 2", "exit 2", true, 0, true, 0, "weight 0"},
		{"dynamic exit 7", "exit 7", true, 0, true, 5, "weight 5"},
		{"dynamic exit 255", "exit 255", true, 0, true, 253, "weight 253"},
		{"signal", "kill -TERM $$", true, 0, false, -1, "signal 15"},
		{"timeout", "exec sleep 30", true, 200 * time.Millisecond, false, -1, "timed out after 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			lr := &localRunner{scripts: map[string]scriptrun.Command{
				"k": {Name: "MISC_CHECK", Args: []string{"/bin/sh", "-c", tc.script}, Timeout: timeout},
			}}
			m := Misc{Runner: lr, Name: "k", Path: "/bin/sh -c " + tc.script, Timeout: timeout, Dynamic: tc.dynamic}
			ctx, cancel := context.WithTimeout(context.Background(), timeout+MiscGrace)
			defer cancel()
			start := time.Now()
			r := m.Check(ctx)
			took := time.Since(start)
			if r.Up != tc.up || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("got up=%v %q, want up=%v and a reason with %q", r.Up, r.Reason, tc.up, tc.reason)
			}
			switch {
			case tc.weight < 0 && r.HasWeight:
				t.Errorf("weight %d set, want none", r.Weight)
			case tc.weight >= 0 && (!r.HasWeight || !r.WeightAbsolute || r.Weight != tc.weight):
				t.Errorf("weight %d (has %v absolute %v), want absolute %d", r.Weight, r.HasWeight, r.WeightAbsolute, tc.weight)
			}
			if tc.timeout > 0 && took > tc.timeout+time.Second {
				t.Errorf("timed-out check took %v, want about %v (the script is killed at misc_timeout)", took, tc.timeout)
			}
		})
	}
}

func TestMiscCheckRunnerError(t *testing.T) {
	lr := &localRunner{err: errors.New("supervisor unreachable")}
	r := Misc{Runner: lr, Name: "k", Path: "/x", Timeout: time.Second}.Check(context.Background())
	if r.Up || !strings.Contains(r.Reason, "supervisor unreachable") {
		t.Errorf("got up=%v %q, want down naming the runner's error", r.Up, r.Reason)
	}
	r = Misc{Path: "/x"}.Check(context.Background())
	if r.Up {
		t.Errorf("no runner: got up, want down")
	}
}

// TestMiscCheckKeepsVerdict: with Last, a run the runner could not make
// repeats the last verdict (weight included) instead of failing the real
// server; the first run has none to repeat.
func TestMiscCheckKeepsVerdict(t *testing.T) {
	lr := &localRunner{scripts: map[string]scriptrun.Command{"k": {Args: []string{"/bin/sh", "-c", "exit 7"}, Timeout: 5 * time.Second}}}
	m := Misc{Runner: lr, Name: "k", Path: "p", Timeout: 5 * time.Second, Dynamic: true, Last: &MiscLast{}}
	lr.err = errors.New("supervisor unreachable")
	if r := m.Check(context.Background()); r.Up {
		t.Fatalf("first run not made: %+v, want down", r)
	}
	lr.err = nil
	if r := m.Check(context.Background()); !r.Up || r.Weight != 5 {
		t.Fatalf("exit 7: %+v", r)
	}
	lr.err = errors.New("supervisor unreachable")
	r := m.Check(context.Background())
	if !r.Up || !r.HasWeight || r.Weight != 5 || !strings.Contains(r.Reason, "not run (supervisor unreachable); as last time") {
		t.Fatalf("run not made after exit 7: %+v, want the last verdict kept", r)
	}
}

func miscRS(id string, checkers ...*pb.LvsChecker) *pb.LvsRealServer {
	return &pb.LvsRealServer{HealthId: id, Weight: 10, Checkers: checkers}
}

func miscChecker(at string, path ...string) *pb.LvsChecker {
	return &pb.LvsChecker{DefinedAt: at, Type: pb.LvsCheckerType_LVS_CHECKER_MISC, MiscPath: path,
		DelayLoop: durationpb.New(time.Second), MiscTimeout: durationpb.New(3 * time.Second)}
}

func TestMiscScriptNames(t *testing.T) {
	tcp := &pb.LvsChecker{DefinedAt: "f:1", Type: pb.LvsCheckerType_LVS_CHECKER_TCP, ConnectIp: "10.0.0.1", ConnectPort: 80,
		DelayLoop: durationpb.New(time.Second)}
	rs := miscRS("vs 10.0.0.1:80", tcp, miscChecker("f:2", "/a"), miscChecker("f:3", "/a"), miscChecker("f:4", "/b"))
	names := MiscScriptNames(rs)
	if len(names) != 4 || names[0] != "" {
		t.Fatalf("names %q: want 4, the first (TCP_CHECK) empty", names)
	}
	seen := map[string]bool{}
	for _, n := range names[1:] {
		if !strings.HasPrefix(n, "vs 10.0.0.1:80 MISC_CHECK ") || seen[n] {
			t.Errorf("name %q: want distinct names under the health_id", n)
		}
		seen[n] = true
	}
	// A reload that moves the blocks (defined_at) keeps the names: the
	// running checker's next run must find its script in the new generation.
	moved := miscRS("vs 10.0.0.1:80", tcp, miscChecker("g:12", "/a"), miscChecker("g:13", "/a"), miscChecker("g:14", "/b"))
	if got := MiscScriptNames(moved); fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("after moving the blocks: %q, want %q", got, names)
	}
	// Another real server, the same checker: another name.
	if other := MiscScriptNames(miscRS("vs 10.0.0.2:80", miscChecker("f:2", "/a"))); other[0] == names[1] {
		t.Errorf("two real servers share the name %q", other[0])
	}
	// A changed script is another checker.
	if changed := MiscScriptNames(miscRS("vs 10.0.0.1:80", miscChecker("f:2", "/c"))); changed[0] == names[1] {
		t.Errorf("changed misc_path kept the name %q", changed[0])
	}
}

func TestFromSnapshotMisc(t *testing.T) {
	rs := miscRS("vs 10.0.0.1:80", miscChecker("f:2", "/bin/check", "arg"))
	rs.Checkers[0].MiscDynamic = true
	snap := &pb.ConfigSnapshot{VirtualServers: []*pb.VirtualServer{{Name: "vs", RealServers: []*pb.LvsRealServer{rs}}}}
	lr := &localRunner{}
	out := FromSnapshot(snap, SnapshotOptions{Runner: lr})
	if len(out) != 1 || len(out[0].Checks) != 1 || out[0].Weight != 10 {
		t.Fatalf("FromSnapshot: %+v", out)
	}
	c := out[0].Checks[0]
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	m, ok := c.Job.Checker.(Misc)
	want := Misc{Runner: lr, Name: MiscScriptNames(rs)[0], Path: "/bin/check arg", Timeout: 3 * time.Second, Dynamic: true, Last: m.Last}
	if !ok || m != want || m.Last == nil {
		t.Errorf("checker %#v, want %#v", c.Job.Checker, want)
	}
	if c.Job.Params.Timeout != 3*time.Second+MiscGrace {
		t.Errorf("attempt deadline %v, want misc_timeout + MiscGrace", c.Job.Params.Timeout)
	}
	// Without a runner MISC_CHECK does not run.
	if out := FromSnapshot(snap, SnapshotOptions{}); !errors.Is(out[0].Checks[0].Err, ErrUnsupported) {
		t.Errorf("without a runner: err %v, want ErrUnsupported", out[0].Checks[0].Err)
	}
}

func TestMiscWeight(t *testing.T) {
	for _, tc := range []struct {
		iweight uint32
		abs     []int64
		want    uint32
		ok      bool
	}{
		{10, nil, 0, false},
		{10, []int64{5}, 5, true},
		{10, []int64{0}, 0, true},
		{1, []int64{253}, 253, true},
		// Two misc_dynamic checkers: iweight + (5-10) + (7-10).
		{10, []int64{5, 7}, 2, true},
		{10, []int64{0, 0}, 0, true}, // clamped as real_weight clamps
	} {
		got, ok := MiscWeight(tc.iweight, tc.abs)
		if got != tc.want || ok != tc.ok {
			t.Errorf("MiscWeight(%d, %v) = %d, %v; want %d, %v", tc.iweight, tc.abs, got, ok, tc.want, tc.ok)
		}
	}
}

// A misc_dynamic weight change while the check stays up is news: the
// scheduler emits it (keepalived update_svr_wgt on a changed exit status).
func TestMiscDynamicWeightTransitions(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "status")
	write := func(s string) {
		if err := os.WriteFile(status, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("7")
	lr := &localRunner{scripts: map[string]scriptrun.Command{
		"k": {Args: []string{"/bin/sh", "-c", "exit $(cat " + status + ")"}, Timeout: 5 * time.Second},
	}}
	got := make(chan Transition, 16)
	s := &Scheduler{Rand: func(time.Duration) time.Duration { return 0 }, OnTransition: func(tr Transition) { got <- tr }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, []Job{{ID: "rs MISC", Checker: Misc{Runner: lr, Name: "k", Path: "p", Timeout: 5 * time.Second, Dynamic: true},
			Params: Params{DelayLoop: 100 * time.Millisecond, DelayBeforeRetry: 100 * time.Millisecond, Timeout: 7 * time.Second}}})
	}()
	defer func() { cancel(); <-done }()
	next := func(want string) Transition {
		t.Helper()
		select {
		case tr := <-got:
			if !strings.Contains(tr.Result.Reason, want) {
				t.Fatalf("transition %+v, want one saying %q", tr, want)
			}
			return tr
		case <-time.After(10 * time.Second):
			t.Fatalf("no transition saying %q within 10s", want)
		}
		return Transition{}
	}
	if tr := next("weight 5"); !tr.Up || tr.Result.Weight != 5 {
		t.Fatalf("first: %+v, want up at weight 5", tr)
	}
	write("12")
	if tr := next("weight 10"); !tr.Up || tr.Result.Weight != 10 {
		t.Fatalf("after exit 12: %+v, want up at weight 10", tr)
	}
	write("0")
	if tr := next("exited 0"); !tr.Up || tr.Result.HasWeight {
		t.Fatalf("after exit 0: %+v, want up at the configured weight", tr)
	}
	write("1")
	if tr := next("status 1"); tr.Up {
		t.Fatalf("after exit 1: %+v, want down", tr)
	}
}

// timedRunner records when each run starts.
type timedRunner struct {
	localRunner
	mu     sync.Mutex
	starts []time.Time
}

func (r *timedRunner) RunMisc(ctx context.Context, name string) (scriptrun.Result, error) {
	r.mu.Lock()
	r.starts = append(r.starts, time.Now())
	r.mu.Unlock()
	return r.localRunner.RunMisc(ctx, name)
}

// TestMiscPeriodFromStart: a MISC_CHECK's next run is due delay_loop after
// the previous one started (check_misc.c: last_ran + delay_loop), so a
// script that takes 300 ms with delay_loop 500 ms runs every 500 ms, not
// every 800 ms.
func TestMiscPeriodFromStart(t *testing.T) {
	tr := &timedRunner{localRunner: localRunner{scripts: map[string]scriptrun.Command{
		"k": {Args: []string{"/bin/sleep", "0.3"}, Timeout: 5 * time.Second}}}}
	s := &Scheduler{Rand: func(time.Duration) time.Duration { return 0 }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, []Job{{ID: "rs MISC", Checker: Misc{Runner: tr, Name: "k", Path: "p", Timeout: 5 * time.Second},
			Params: Params{DelayLoop: 500 * time.Millisecond, DelayBeforeRetry: 500 * time.Millisecond, Timeout: 7 * time.Second}}})
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		tr.mu.Lock()
		n := len(tr.starts)
		tr.mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs within 15s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := 1; i < 4; i++ {
		if d := tr.starts[i].Sub(tr.starts[i-1]); d < 450*time.Millisecond || d > 700*time.Millisecond {
			t.Errorf("run %d started %v after the one before, want about delay_loop 500ms (not 500ms + the script's 300ms)", i, d)
		}
	}
}
