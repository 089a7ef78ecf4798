package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lineLog is a Spec.Output that keeps the lines and lets a test wait for one.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every line
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSuffix(string(p), "\n"))
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// wait returns the first line starting with prefix, waiting up to timeout.
func (l *lineLog) wait(prefix string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, s := range l.lines {
			if strings.HasPrefix(s, prefix) {
				l.mu.Unlock()
				return s, nil
			}
		}
		ch := l.changed
		all := strings.Join(l.lines, "\n")
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return "", fmt.Errorf("no line %q within %v; output:\n%s", prefix, timeout, all)
		}
	}
}

// count returns how many lines start with prefix.
func (l *lineLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// harness runs a Child of the test binary in some mode and records its
// events and output.
type harness struct {
	t      *testing.T
	c      *Child
	out    *lineLog
	events chan Event
	runErr chan error
}

func start(t *testing.T, mode string, spec Spec, opts Options) *harness {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, out: newLineLog(), events: make(chan Event, 1000), runErr: make(chan error, 1)}
	spec.Name = mode
	if spec.Path == "" {
		spec.Path = self
	}
	spec.Env = append(spec.Env, envMode+"="+mode)
	spec.Output = h.out
	opts.OnEvent = func(e Event) { h.events <- e }
	if h.c, err = New(spec, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.runErr <- h.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := h.c.Stop(context.Background()); err != nil {
			t.Errorf("cleanup Stop: %v", err)
		}
	})
	return h
}

// next returns the next event, which must be of kind k.
func (h *harness) next(k EventKind) Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		if e.Kind != k {
			h.t.Fatalf("event %v, want %v", e, k)
		}
		return e
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no %v event within 10s", k)
	}
	panic("unreachable")
}

func (h *harness) noEvent(d time.Duration) {
	h.t.Helper()
	select {
	case e := <-h.events:
		h.t.Fatalf("unexpected event %v", e)
	case <-time.After(d):
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func parseStatus(t *testing.T, out *lineLog, key string) string {
	t.Helper()
	line, err := out.wait(key+":", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, key+":"))
}

func parseCaps(t *testing.T, out *lineLog, key string) CapSet {
	t.Helper()
	v, err := strconv.ParseUint(parseStatus(t, out, key), 16, 64)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return CapSet(v)
}

// threadsWithBounding counts the threads of this process whose bounding set
// is exactly bnd.
func threadsWithBounding(t *testing.T, bnd CapSet) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // thread gone meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapBnd:\t"); ok {
				if x, _ := strconv.ParseUint(v, 16, 64); CapSet(x) == bnd {
					n++
				}
			}
		}
	}
	return n
}

// worldExecutable copies the test binary where any uid can run it (go test
// builds it in a 0700 directory).
func worldExecutable(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "supervise-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "child")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCapabilities(t *testing.T) {
	requireRoot(t)
	exe := worldExecutable(t)
	netCaps := []uintptr{unix.CAP_NET_RAW, unix.CAP_NET_ADMIN}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	for _, tc := range []struct {
		name       string
		caps       []uintptr
		cred       *syscall.Credential
		noNewPrivs bool
		uid        string
	}{
		{"vrrpd as root", netCaps, nil, false, "0"},
		{"vrrpd as root, no_new_privs", netCaps, nil, true, "0"},
		{"caps as nobody", netCaps, nobody, false, "65534"},
		{"checkerd as nobody, no caps", nil, nobody, true, "65534"},
		{"root without caps", nil, nil, false, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := CapSetOf(tc.caps...)
			h := start(t, "report", Spec{Path: exe, AmbientCaps: tc.caps, Credential: tc.cred, NoNewPrivs: tc.noNewPrivs}, Options{})
			h.next(Started)
			if _, err := h.out.wait("ready", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			got := map[string]CapSet{}
			for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
				got[k] = parseCaps(t, h.out, k)
				if got[k] != want {
					t.Errorf("%s = %#x (%v), want %#x (%v)", k, uint64(got[k]), got[k], uint64(want), want)
				}
			}
			t.Logf("child: CapInh=%#x CapPrm=%#x CapEff=%#x CapBnd=%#x CapAmb=%#x (%v)",
				uint64(got["CapInh"]), uint64(got["CapPrm"]), uint64(got["CapEff"]), uint64(got["CapBnd"]), uint64(got["CapAmb"]), got["CapEff"])
			if uid := strings.Fields(parseStatus(t, h.out, "Uid")); uid[0] != tc.uid || uid[1] != tc.uid {
				t.Errorf("Uid: %v, want %s", uid, tc.uid)
			}
			if tc.cred != nil {
				if g := parseStatus(t, h.out, "Groups"); g != "" {
					t.Errorf("Groups: %q, want none", g)
				}
			}
			nnp := "0"
			if tc.noNewPrivs {
				nnp = "1"
			}
			if v := parseStatus(t, h.out, "NoNewPrivs"); v != nnp {
				t.Errorf("NoNewPrivs: %s, want %s", v, nnp)
			}
			if v := parseStatus(t, h.out, "Securebits"); v != "0x3" {
				t.Errorf("Securebits %s, want 0x3 (NOROOT|NOROOT_LOCKED)", v)
			}

			// The restricted credentials live on one thread of ours, the one
			// the child was forked from, and die with it.
			if n := threadsWithBounding(t, want); n != 1 {
				t.Errorf("%d threads of the supervisor have the child's bounding set, want 1", n)
			}
			if err := h.c.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for threadsWithBounding(t, want) != 0 {
				if time.Now().After(deadline) {
					t.Fatal("the restricted thread outlived its child")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := <-h.runErr; err != nil {
				t.Errorf("Run: %v", err)
			}
			// And the supervisor itself is untouched.
			c, err := capget()
			if err != nil || !c.effective.Has(unix.CAP_SETPCAP) || !c.effective.Has(unix.CAP_SYS_ADMIN) {
				t.Errorf("supervisor thread caps after the run: %+v, %v", c, err)
			}
		})
	}
}

// TestCapabilityNotHeld: asking for a capability the supervisor does not
// have fails the start cleanly (and is retried with backoff).
func TestCapabilityNotHeld(t *testing.T) {
	requireRoot(t)
	runtime.LockOSThread()
	bnd, err := boundingSet()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	missing := -1
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if !bnd.Has(uintptr(c)) {
			missing = c
			break
		}
	}
	if missing < 0 {
		t.Skip("the bounding set holds every capability")
	}
	h := start(t, "report", Spec{AmbientCaps: []uintptr{unix.CAP_NET_RAW, uintptr(missing)}}, Options{})
	e := h.next(Exited)
	if e.Err == nil || !strings.Contains(e.Err.Error(), capName(uintptr(missing))) {
		t.Fatalf("Exited.Err = %v, want a complaint about %s", e.Err, capName(uintptr(missing)))
	}
	t.Logf("%v", e)
	if e := h.next(Restarting); e.After != 0 {
		t.Errorf("first restart after %v, want 0", e.After)
	}
}

func TestKill9Restarts(t *testing.T) {
	h := start(t, "sleep", Spec{}, Options{})
	pid1 := h.next(Started).PID
	if _, err := h.out.wait("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(pid1, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e := h.next(Exited)
	ws := e.State.Sys().(syscall.WaitStatus)
	if e.PID != pid1 || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("Exited %v, want pid %d killed by SIGKILL", e, pid1)
	}
	if e := h.next(Restarting); e.After != 0 {
		t.Errorf("first restart after %v, want at once", e.After)
	}
	pid2 := h.next(Started).PID
	if pid2 == pid1 || pid2 != h.c.PID() {
		t.Errorf("restarted as pid %d (PID() %d), first was %d", pid2, h.c.PID(), pid1)
	}
	// A second quick death waits Backoff.Initial.
	if err := unix.Kill(pid2, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.next(Exited)
	if e := h.next(Restarting); e.After < 80*time.Millisecond || e.After > 100*time.Millisecond {
		t.Errorf("second restart after %v, want 80..100ms (100ms - 20%% jitter)", e.After)
	}
	h.next(Started)
}

func TestCrashLoopBackoff(t *testing.T) {
	ms := time.Millisecond
	b := Backoff{Initial: 20 * ms, Max: 160 * ms, Multiplier: 2, Jitter: 0.5, Stable: 10 * time.Second}
	h := start(t, "crash", Spec{}, Options{Backoff: b, Rand: func() float64 { return 0 }})
	want := []time.Duration{0, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 160 * ms}
	var lastStart time.Time
	for i, w := range want {
		s := h.next(Started)
		if i > 0 {
			if gap := s.Time.Sub(lastStart); gap < want[i-1] {
				t.Errorf("start %d came %v after the previous, want >= %v", i, gap, want[i-1])
			}
		}
		lastStart = s.Time
		e := h.next(Exited)
		if code := e.State.ExitCode(); code != 3 {
			t.Errorf("exit code %d, want 3", code)
		}
		if r := h.next(Restarting); r.After != w {
			t.Errorf("restart %d after %v, want %v", i+1, r.After, w)
		}
	}
	if n := h.out.count("crashing"); n < len(want) {
		t.Errorf("saw %d crashing lines, want >= %d", n, len(want))
	}
}

func TestStableUptimeResetsBackoff(t *testing.T) {
	ms := time.Millisecond
	b := Backoff{Initial: time.Second, Max: time.Second, Multiplier: 2, Stable: 100 * ms}
	h := start(t, "live", Spec{Env: []string{envLive + "=150"}}, Options{Backoff: b})
	for i := 0; i < 3; i++ {
		h.next(Started)
		if e := h.next(Exited); e.Uptime < 150*ms || e.State.ExitCode() != 1 {
			t.Errorf("%v, want exit status 1 after >= 150ms", e)
		}
		if r := h.next(Restarting); r.After != 0 {
			t.Errorf("restart %d after %v; a child up longer than Stable restarts at once", i, r.After)
		}
	}
}

func TestStopGraceful(t *testing.T) {
	h := start(t, "sleep", Spec{}, Options{})
	pid := h.next(Started).PID
	if _, err := h.out.wait("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
	if _, err := h.out.wait("got SIGTERM", time.Second); err != nil {
		t.Error(err)
	}
	e := h.next(Exited)
	if e.PID != pid || e.State.ExitCode() != 0 {
		t.Errorf("Exited %v, want pid %d exit 0", e, pid)
	}
	if err := <-h.runErr; err != nil {
		t.Errorf("Run returned %v, want nil after Stop", err)
	}
	h.noEvent(100 * time.Millisecond) // no restart
	if h.c.PID() != 0 {
		t.Errorf("PID() = %d after Stop", h.c.PID())
	}
	if err := h.c.Stop(ctx); err != nil { // again: harmless
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopKillsProcessGroup(t *testing.T) {
	h := start(t, "ignore-term", Spec{}, Options{})
	pid := h.next(Started).PID
	line, err := h.out.wait("grandchild ", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gc, _ := strconv.Atoi(strings.TrimPrefix(line, "grandchild "))
	if _, err := h.out.wait("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = h.c.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want an error wrapping DeadlineExceeded; output:\n%s", err, strings.Join(h.out.lines, "\n"))
	}
	if d := time.Since(t0); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("Stop took %v, want a little over 300ms", d)
	}
	e := h.next(Exited)
	if ws := e.State.Sys().(syscall.WaitStatus); e.PID != pid || ws.Signal() != syscall.SIGKILL {
		t.Errorf("Exited %v, want pid %d killed", e, pid)
	}
	waitGone(t, gc)
}

// waitGone waits until pid is gone or a zombie (its new parent may not reap).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running: %s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunCancelStopsChild(t *testing.T) {
	self, _ := os.Executable()
	out := newLineLog()
	c, err := New(Spec{Name: "sleep", Path: self, Env: []string{envMode + "=sleep"}, Output: out}, Options{StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	if _, err := out.wait("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if _, err := out.wait("got SIGTERM", time.Second); err != nil {
		t.Error(err)
	}
	waitGone(t, pid)
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestStopBeforeRun(t *testing.T) {
	self, _ := os.Executable()
	c, err := New(Spec{Name: "x", Path: self}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		t.Fatalf("Run after Stop = %v, want nil", err)
	}
}

func TestStartFailure(t *testing.T) {
	h := start(t, "x", Spec{Path: "/nonexistent/vrrpd"}, Options{})
	e := h.next(Exited)
	if !errors.Is(e.Err, os.ErrNotExist) || !strings.Contains(e.Err.Error(), "/nonexistent/vrrpd") {
		t.Errorf("Exited.Err = %v", e.Err)
	}
	h.next(Restarting)
	h.next(Exited)
	if r := h.next(Restarting); r.After == 0 {
		t.Error("a binary that cannot start is retried without backoff")
	}
}

func TestNewValidates(t *testing.T) {
	for name, spec := range map[string]Spec{
		"no name":       {Path: "/bin/true"},
		"relative path": {Name: "x", Path: "true"},
		"bad cap":       {Name: "x", Path: "/bin/true", AmbientCaps: []uintptr{64}},
	} {
		if _, err := New(spec, Options{}); err == nil {
			t.Errorf("%s: New accepted %+v", name, spec)
		}
	}
	if _, err := New(Spec{Name: "x", Path: "/bin/true"}, Options{Backoff: Backoff{Initial: 1}}); err == nil {
		t.Error("New accepted an incomplete Backoff")
	}
}

// TestThreadChurn: goroutines that lock their thread and exit destroy it.
// A child forked from such a thread would get its Pdeathsig although the
// supervisor lives; ours are forked from threads owned by their child.
func TestThreadChurn(t *testing.T) {
	h := start(t, "sleep", Spec{}, Options{})
	pid := h.next(Started).PID
	if _, err := h.out.wait("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // and exit locked: the thread is terminated
			time.Sleep(time.Millisecond)
		}()
	}
	wg.Wait()
	runtime.GC()
	h.noEvent(200 * time.Millisecond)
	if h.out.count("got SIGTERM") != 0 || h.c.PID() != pid {
		t.Fatalf("child %d got SIGTERM or was replaced (now %d)", pid, h.c.PID())
	}
}

// TestParentDeath runs a supervisor in a subprocess, SIGKILLs it, and
// expects its child to receive SIGTERM (Pdeathsig).
func TestParentDeath(t *testing.T) {
	self, _ := os.Executable()
	file := filepath.Join(t.TempDir(), "pdeath")
	sup := exec.Command(self)
	sup.Env = []string{envMode + "=mini-supervisor", envFile + "=" + file}
	sup.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := sup.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sup.Stderr = os.Stderr
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer sup.Process.Kill() //nolint:errcheck
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("mini-supervisor said nothing: %v", sc.Err())
	}
	child, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "child "))
	if err != nil {
		t.Fatalf("mini-supervisor said %q", sc.Text())
	}
	if err := sup.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = sup.Wait()

	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(file)
		if err == nil {
			if !strings.HasPrefix(string(b), "SIGTERM ") {
				t.Fatalf("child wrote %q", b)
			}
			t.Logf("child %d: %s", child, strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d got no SIGTERM after its supervisor died", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitGone(t, child)
}

// TestNoLeaks: once Run has returned, the goroutines it started are gone.
func TestNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	self, _ := os.Executable()
	out := newLineLog()
	c, err := New(Spec{Name: "sleep", Path: self, Env: []string{envMode + "=sleep"}, Output: out}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()
	if _, err := out.wait("ready", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(c.PID(), unix.SIGKILL); err != nil { // one restart too
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.count("ready") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
