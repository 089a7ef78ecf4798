package track

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func TestParseStat(t *testing.T) {
	comm, st, err := parseStat([]byte("123 (a b) c)) S 1 2 3\n"))
	if err != nil || comm != "a b) c)" || st != 'S' {
		t.Errorf("parseStat = %q %c %v", comm, st, err)
	}
	if _, _, err := parseStat([]byte("123 (x")); err == nil {
		t.Error("parseStat of a truncated line: no error")
	}
}

// TestProcMatch is check_process / check_params.
func TestProcMatch(t *testing.T) {
	procs := fakeProc{
		1: {comm: "nginx", argv: []string{"/usr/sbin/nginx", "-g", "daemon off;"}},
		2: {comm: "nginx", argv: []string{"nginx: worker process"}},
		3: {comm: "nginx", argv: []string{"/usr/sbin/nginx"}},
		4: {comm: "nginx", state: 'Z'},
		5: {comm: "python3", argv: []string{"/usr/bin/python3", "app.py", "--port", "8080"}},
		6: {comm: "python3", argv: []string{"/usr/bin/python3", "app.py"}},
		7: {comm: "python3", argv: []string{"/usr/bin/python3", "application.py", "-v"}},
		8: {comm: "kworker/0:1"}, // a kernel thread: no cmdline
	}
	for _, tc := range []struct {
		name string
		cfg  *pb.VrrpTrackProcess
		want int
	}{
		{"comm", &pb.VrrpTrackProcess{Process: []string{"nginx"}}, 3},
		{"comm of a kernel thread", &pb.VrrpTrackProcess{Process: []string{"kworker/0:1"}}, 1},
		{"full_command argv0", &pb.VrrpTrackProcess{Process: []string{"/usr/sbin/nginx"}, FullCommand: true}, 2},
		{"full_command rewritten title", &pb.VrrpTrackProcess{Process: []string{"nginx: worker process"}, FullCommand: true}, 1},
		{"args mean exact", &pb.VrrpTrackProcess{Process: []string{"/usr/bin/python3", "app.py"}}, 1},
		{"exact needs all args", &pb.VrrpTrackProcess{Process: []string{"/usr/bin/python3", "app.py", "--port", "8080"}}, 1},
		{"partial: leading args", &pb.VrrpTrackProcess{Process: []string{"/usr/bin/python3", "app.py"}, ParamMatch: "partial"}, 2},
		{"partial is whole words", &pb.VrrpTrackProcess{Process: []string{"/usr/bin/python3", "app"}, ParamMatch: "partial"}, 0},
		{"initial: last arg a prefix", &pb.VrrpTrackProcess{Process: []string{"/usr/bin/python3", "app"}, ParamMatch: "initial"}, 3},
		{"exact with no args: none given", &pb.VrrpTrackProcess{Process: []string{"nginx"}, ParamMatch: "exact"}, 2},
		{"comm is not argv0", &pb.VrrpTrackProcess{Process: []string{"/usr/sbin/nginx"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newProcMatcher(tc.cfg)
			n := 0
			for pid := range procs {
				comm, state, _ := procs.Stat(pid)
				if state == 'Z' && !m.full {
					continue
				}
				var cmd []byte
				if m.needsCmdline() {
					cmd, _ = procs.Cmdline(pid, m.cmdlineBytes())
					if len(cmd) == 0 {
						continue
					}
				}
				if m.matches(comm, cmd) {
					n++
				}
			}
			if n != tc.want {
				t.Errorf("%d matches, want %d", n, tc.want)
			}
		})
	}
}

func TestQuorumVerdict(t *testing.T) {
	for _, tc := range []struct {
		quorum, max uint32
		counts      []int
		want        string
	}{
		{1, 0, []int{0, 1, 5}, "duu"},
		{2, 3, []int{1, 2, 3, 4}, "duud"},
		{0, 0, []int{0, 1}, "ud"}, // keepalived's quorum_max 0: none may run
	} {
		pt := newProcTracker(Key{}, &pb.VrrpTrackProcess{Process: []string{"x"}, Quorum: tc.quorum, QuorumMax: tc.max}, nil)
		got := ""
		for _, c := range tc.counts {
			got += pt.verdict(c).String()[:1]
		}
		if got != tc.want {
			t.Errorf("quorum %d..%d counts %v: %s, want %s", tc.quorum, tc.max, tc.counts, got, tc.want)
		}
	}
}

// TestQuorumFilter: delay_up / delay_down hold a change back; a change
// undone before its delay is never reported.
func TestQuorumFilter(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type obs struct {
		at      int
		state   State
		changed bool
	}
	for _, tc := range []struct {
		name     string
		up, down time.Duration
		steps    []obs
	}{
		{"first scan at once", 5 * time.Second, 5 * time.Second, []obs{{0, StateDown, true}}},
		{"no delays", 0, 0, []obs{{0, StateUp, true}, {1, StateDown, true}, {2, StateUp, true}}},
		{"delay_down holds a loss", 0, 3 * time.Second, []obs{{0, StateUp, true}, {1, StateDown, false}, {3, StateDown, false}, {4, StateDown, true}}},
		{"a loss undone in time", 0, 3 * time.Second, []obs{{0, StateUp, true}, {1, StateDown, false}, {2, StateUp, false}, {5, StateUp, false}}},
		{"delay_up holds a gain", 2 * time.Second, 0, []obs{{0, StateDown, true}, {1, StateUp, false}, {3, StateUp, true}, {4, StateDown, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f quorumFilter
			for i, o := range tc.steps {
				changed, _ := f.observe(at(o.at), o.state, tc.up, tc.down)
				if changed != o.changed {
					t.Fatalf("step %d (%ds %v): changed %v, want %v (reported %v)", i, o.at, o.state, changed, o.changed, f.reported)
				}
			}
		})
	}
}

// TestTrackProcessSet: a process tracker in a Set over a fake /proc, with
// a fake clock for scans and delays.
func TestTrackProcessSet(t *testing.T) {
	clk := newFakeClock()
	mp := &mutableProc{procs: fakeProc{10: {comm: "nginx", argv: []string{"nginx"}}, 11: {comm: "bash", argv: []string{"bash"}}}}
	s := NewSet(Options{Clock: clk, Proc: mp, Log: slog.New(&logRec{})})
	defer s.Close()
	k := procKey("p")
	_, err := s.Apply(&pb.ConfigSnapshot{Generation: 1, TrackProcesses: []*pb.VrrpTrackProcess{
		{Name: "p", Process: []string{"nginx"}, Quorum: 1, DelayDown: durationpb.New(3 * time.Second)}}})
	if err != nil {
		t.Fatal(err)
	}
	// Apply returned after the first scan.
	if r, _ := resultOf(s, k); r.State != StateUp {
		t.Fatalf("after apply: %+v", r)
	}
	// A comm tracker reads no cmdline.
	mp.mu.Lock()
	cmdlines := mp.cmdlines
	mp.mu.Unlock()
	if cmdlines != 0 {
		t.Errorf("%d cmdline reads for a comm tracker", cmdlines)
	}
	mp.set(fakeProc{11: {comm: "bash"}})
	// Each Advance only after the scanner armed its timer again.
	armed := func() { waitFor(t, "the scan timer armed", func() bool { return clk.pending() == 1 }) }
	armed()
	clk.Advance(time.Second) // scan: gone, delay_down 3s starts
	waitFor(t, "the scan that saw it gone", func() bool {
		r, _ := resultOf(s, k)
		return r.Detail == "0 matching processes (quorum 1..any)"
	})
	if r, _ := resultOf(s, k); r.State != StateUp {
		t.Fatalf("within delay_down: %v", r.State)
	}
	for range 3 {
		armed()
		clk.Advance(time.Second)
	}
	waitFor(t, "down after delay_down", func() bool { r, _ := resultOf(s, k); return r.State == StateDown })
}

// TestTrackProcessRealProc counts a real process in the real /proc.
func TestTrackProcessRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// A unique argument to look for: sleep's argv is "sleep 1000 <tag>"?
	// sleep takes several numbers and sums them, so add 0.<pid> of ours.
	tag := fmt.Sprintf("0.%d%d", os.Getpid(), time.Now().UnixNano()%1000)
	s := NewSet(Options{ProcInterval: 50 * time.Millisecond, Log: slog.New(&logRec{})})
	defer s.Close()
	_, err := s.Apply(&pb.ConfigSnapshot{Generation: 1, TrackProcesses: []*pb.VrrpTrackProcess{
		{Name: "p", Process: []string{"sleep", "1000", tag}, Quorum: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	k := procKey("p")
	if r, _ := resultOf(s, k); r.State != StateDown {
		t.Fatalf("before start: %+v", r)
	}
	cmd := exec.Command("sleep", "1000", tag)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "counted", func() bool { r, _ := resultOf(s, k); return r.State == StateUp })
	if r, _ := resultOf(s, k); r.Detail != "1 matching processes (quorum 1..any)" {
		t.Errorf("detail %q", r.Detail)
	}
	cmd.Process.Kill()
	cmd.Wait() // not a zombie any more
	waitFor(t, "gone", func() bool { r, _ := resultOf(s, k); return r.State == StateDown })
}
