package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

const kaDir = "testdata/keepalived-2.2.7"

// fakeRunner records every command; block (if set) decides whether a
// command waits for ctx or release.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []scriptrun.Command
	block   func(scriptrun.Command) bool
	delay   time.Duration
	release chan struct{}
}

func (f *fakeRunner) Run(ctx context.Context, c scriptrun.Command) scriptrun.Result {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.block != nil && f.block(c) {
		select {
		case <-ctx.Done():
		case <-f.release:
		}
		return scriptrun.Result{ExitStatus: -1, Signal: syscall.SIGKILL}
	}
	if f.delay > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(f.delay):
		}
	}
	return scriptrun.Result{}
}

func (f *fakeRunner) snapshot() []scriptrun.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// recLine formats a call as testdata/keepalived-2.2.7/rec.sh does.
func recLine(c scriptrun.Command) string {
	var b strings.Builder
	b.WriteString(filepath.Base(c.Args[0]))
	for _, a := range c.Args[1:] {
		fmt.Fprintf(&b, " [%s]", a)
	}
	return b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func parseConf(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, diags := config.ParseBytes("test.conf", []byte(text), config.Options{})
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	return cfg
}

func tr(name string, from, to pb.VrrpState, prio uint32) *pb.VrrpEvent {
	return &pb.VrrpEvent{Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{
		Instance: name, From: from, To: to, Priority: prio}}}
}

const (
	sInit   = pb.VrrpState_VRRP_STATE_INIT
	sBackup = pb.VrrpState_VRRP_STATE_BACKUP
	sMaster = pb.VrrpState_VRRP_STATE_MASTER
	sFault  = pb.VrrpState_VRRP_STATE_FAULT
	sStop   = pb.VrrpState_VRRP_STATE_STOP
)

// readFIFO drains what is in the FIFO now.
func readFIFO(t *testing.T, path string) []string {
	t.Helper()
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("open fifo: %v", err)
	}
	defer syscall.Close(fd)
	var all []byte
	buf := make([]byte, 65536)
	for {
		n, err := syscall.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
		all = append(all, buf[:n]...)
	}
	s := strings.TrimSuffix(string(all), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestKeepalivedGolden replays the run recorded in testdata (README.md
// there) and expects the same script calls and FIFO lines, phase by
// phase. keepalived forks its scripts concurrently, so within a phase
// the order of calls.log is the scheduler's; calls compare as sets.
func TestKeepalivedGolden(t *testing.T) {
	dir := t.TempDir()
	fifoPath := filepath.Join(dir, "fifo")
	load := func(name string) *config.Config {
		b, err := os.ReadFile(filepath.Join(kaDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return parseConf(t, strings.ReplaceAll(string(b), "/tmp/notify-ka/fifo\n", fifoPath+"\n"))
	}
	calls := readPhases(t)
	fifoLines := strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(kaDir, "fifo.log"))), "\n")
	fifoPhases := [][]string{fifoLines[0:10], fifoLines[10:12], fifoLines[12:15], fifoLines[15:21], nil}

	fr := &fakeRunner{block: func(c scriptrun.Command) bool { return strings.Contains(c.Name, "fifo") }}
	d := New(Options{Runner: fr, Hostname: "testhost", Dial: refuseDial})
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	if err := d.Apply(load("ka.conf"), 1); err != nil {
		t.Fatal(err)
	}
	d.Event(&pb.VrrpEvent{Event: &pb.VrrpEvent_Snapshot{Snapshot: &pb.EventSnapshot{}}})

	prios := map[string]uint32{"VI_1": 150, "VI_2": 120, "VI_3": 100, "VI_4": 100}
	phases := []func(){
		func() {
			for _, n := range []string{"VI_1", "VI_2", "VI_3", "VI_4"} {
				d.Event(tr(n, sInit, sBackup, prios[n]))
			}
			for _, n := range []string{"VI_1", "VI_2", "VI_3", "VI_4"} {
				d.Event(tr(n, sBackup, sMaster, prios[n]))
			}
		},
		func() {
			if err := d.Apply(load("ka2.conf"), 2); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			d.Event(tr("VI_1", sMaster, sFault, 150))
			d.Event(tr("VI_2", sMaster, sFault, 120))
		},
		func() {
			d.Event(tr("VI_1", sFault, sBackup, 150))
			d.Event(tr("VI_2", sFault, sBackup, 120))
			d.Event(tr("VI_1", sBackup, sMaster, 150))
			d.Event(tr("VI_2", sBackup, sMaster, 120))
		},
		func() {
			d.Event(tr("VI_1", sMaster, sStop, 150))
			d.Event(tr("VI_2", sMaster, sStop, 120))
		},
	}
	// The reader script gets the FIFO path as its last argument.
	waitFor(t, "fifo reader", func() bool { return len(fr.snapshot()) == 1 })
	if got, want := recLine(fr.snapshot()[0]), "fiforead.sh ["+fifoPath+"]"; got != want {
		t.Errorf("fifo reader: got %q, want %q", got, want)
	}
	seen := 1
	for i, run := range phases {
		run()
		want := calls[i]
		waitFor(t, fmt.Sprintf("phase %d calls", i), func() bool { return len(fr.snapshot()) >= seen+len(want) })
		time.Sleep(20 * time.Millisecond) // a call beyond the expected ones would show now
		all := fr.snapshot()
		var got []string
		for _, c := range all[seen:] {
			got = append(got, recLine(c))
			if i == 4 {
				// STOP scripts get keepalived's 1 s kill timer, except a
				// group's own notify_stop (send_group_notifies: notify_exec).
				want := StopScriptTimeout
				if c.Name == "notify_stop G1" {
					want = DefaultScriptTimeout
				}
				if c.Timeout != want {
					t.Errorf("%s: timeout %v, want %v", c.Name, c.Timeout, want)
				}
			}
		}
		seen = len(all)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("phase %d calls:\n got %q\nwant %q", i, got, want)
		}
		gotFIFO := readFIFO(t, fifoPath)
		wantFIFO := slices.Clone(fifoPhases[i])
		if i == 4 {
			wantFIFO = []string{`INSTANCE "VI_1" STOP 150`, `INSTANCE "VI_2" STOP 120`, `GROUP "G1" STOP 0`}
		}
		slices.Sort(gotFIFO)
		slices.Sort(wantFIFO)
		if !slices.Equal(gotFIFO, wantFIFO) {
			t.Errorf("phase %d fifo:\n got %q\nwant %q", i, gotFIFO, wantFIFO)
		}
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readPhases splits calls.log at its "== " markers.
func readPhases(t *testing.T) [][]string {
	var out [][]string
	cur := []string{}
	for _, l := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(kaDir, "calls.log"))), "\n") {
		if strings.HasPrefix(l, "== ") {
			out = append(out, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, l)
	}
	return append(out, cur)
}

const flapConf = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.1/32 }
  notify_master /bin/m
  notify_backup /bin/b
  notify "/bin/any x"
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  virtual_ipaddress { 192.0.2.2/32 }
  notify_master /bin/m2
}
`

// TestFlappingKeepsOrder: 40 transitions in a burst, a script that takes
// a while: every one runs, in order, never two at once for the instance.
func TestFlappingKeepsOrder(t *testing.T) {
	var running, maxRunning int
	var mu sync.Mutex
	fr := &fakeRunner{}
	r := runnerFunc(func(ctx context.Context, c scriptrun.Command) scriptrun.Result {
		mu.Lock()
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		res := fr.Run(ctx, c)
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return res
	})
	d := New(Options{Runner: r})
	if err := d.Apply(parseConf(t, flapConf), 1); err != nil {
		t.Fatal(err)
	}
	d.Event(tr("VI_1", sInit, sBackup, 100))
	var want []string
	want = append(want, "b", "any [x] [INSTANCE] [VI_1] [BACKUP] [100]")
	for i := 0; i < 20; i++ {
		d.Event(tr("VI_1", sBackup, sMaster, 100))
		d.Event(tr("VI_1", sMaster, sBackup, 100))
		want = append(want, "m", "any [x] [INSTANCE] [VI_1] [MASTER] [100]", "b", "any [x] [INSTANCE] [VI_1] [BACKUP] [100]")
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range fr.snapshot() {
		got = append(got, recLine(c))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("calls out of order or missing:\n got %q\nwant %q", got, want)
	}
	if maxRunning != 1 {
		t.Fatalf("%d scripts of one instance ran at once", maxRunning)
	}
}

type runnerFunc func(context.Context, scriptrun.Command) scriptrun.Result

func (f runnerFunc) Run(ctx context.Context, c scriptrun.Command) scriptrun.Result { return f(ctx, c) }

// TestHangingScriptIsolated: VI_1's notify_master hangs; VI_2's scripts
// still run, VI_1's queue stays bounded, and Close gives up at its
// deadline, killing the hung script through ctx.
func TestHangingScriptIsolated(t *testing.T) {
	fr := &fakeRunner{block: func(c scriptrun.Command) bool { return c.Args[0] == "/bin/m" }, release: make(chan struct{})}
	d := New(Options{Runner: fr, QueueLimit: 4})
	if err := d.Apply(parseConf(t, flapConf), 1); err != nil {
		t.Fatal(err)
	}
	d.Event(tr("VI_1", sBackup, sMaster, 100))
	waitFor(t, "hung script", func() bool { return len(fr.snapshot()) == 1 })
	for i := 0; i < 50; i++ {
		d.Event(tr("VI_1", sMaster, sBackup, 100))
		d.Event(tr("VI_1", sBackup, sMaster, 100))
	}
	d.Event(tr("VI_2", sBackup, sMaster, 100))
	waitFor(t, "VI_2's script", func() bool {
		return slices.ContainsFunc(fr.snapshot(), func(c scriptrun.Command) bool { return c.Args[0] == "/bin/m2" })
	})
	d.q.mu.Lock()
	queued := len(d.q.m["INSTANCE VI_1"].jobs)
	d.q.mu.Unlock()
	if queued != 4 {
		t.Fatalf("VI_1 queue holds %d jobs, want the limit 4", queued)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := d.Close(ctx); err == nil {
		t.Fatal("Close returned nil with a hung script")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Close took %v", el)
	}
}

// TestSnapshotRunsNothing: a (re)connect snapshot teaches states, runs no
// script, and the next real transition notifies from there.
func TestSnapshotRunsNothing(t *testing.T) {
	fr := &fakeRunner{}
	d := New(Options{Runner: fr})
	if err := d.Apply(parseConf(t, flapConf), 1); err != nil {
		t.Fatal(err)
	}
	snap := &pb.VrrpEvent{Event: &pb.VrrpEvent_Snapshot{Snapshot: &pb.EventSnapshot{Instances: []*pb.InstanceState{
		{Name: "VI_1", State: sMaster, EffectivePriority: 100}, {Name: "VI_2", State: sBackup, EffectivePriority: 100}}}}}
	d.Event(snap)
	d.Event(snap)
	// A repeat of the state the snapshot showed is no transition.
	d.Event(tr("VI_1", sMaster, sMaster, 100))
	d.Event(tr("VI_2", sBackup, sMaster, 100))
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range fr.snapshot() {
		got = append(got, recLine(c))
	}
	if want := []string{"m2"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
