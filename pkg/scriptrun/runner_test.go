package scriptrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: scripts run as other users, files are chowned")
	}
}

// syncBuffer is a log sink safe for concurrent runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRunner() (*Runner, *syncBuffer) {
	var buf syncBuffer
	return &Runner{Log: slog.New(slog.NewTextHandler(&buf, nil))}, &buf
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func TestExitStatus(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	r, _ := newRunner()
	for _, code := range []int{0, 1, 3} {
		p := writeScript(t, dir, fmt.Sprintf("exit%d", code), fmt.Sprintf("exit %d", code))
		res := r.Run(context.Background(), Command{Name: "test", Args: []string{p}, Timeout: 10 * time.Second, Security: true})
		if res.Err != nil || res.ExitStatus != code || res.Signal != 0 || res.TimedOut {
			t.Errorf("exit %d: got %+v", code, res)
		}
		if res.OK() != (code == 0) {
			t.Errorf("exit %d: OK() = %v", code, res.OK())
		}
	}
}

func TestArgsAreWords(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := writeScript(t, dir, "args", `printf '%s|' "$0" "$@" > `+out)
	r, _ := newRunner()
	res := r.Run(context.Background(), Command{Args: []string{p, "a b", "$HOME", "*"}, Security: true})
	if !res.OK() {
		t.Fatalf("got %+v", res)
	}
	got, _ := os.ReadFile(out)
	if want := p + "|a b|$HOME|*|"; string(got) != want {
		t.Errorf("script saw %q, want %q", got, want)
	}
}

func TestKilledBySignal(t *testing.T) {
	needRoot(t)
	p := writeScript(t, t.TempDir(), "sig", "kill -TERM $$")
	r, _ := newRunner()
	res := r.Run(context.Background(), Command{Args: []string{p}, Timeout: 10 * time.Second})
	if res.Err != nil || res.Signal != syscall.SIGTERM || res.ExitStatus != -1 || res.TimedOut {
		t.Errorf("got %+v, want killed by SIGTERM", res)
	}
}

// hangingScript forks a child that writes its pid and sleeps, then sleeps
// itself.
func hangingScript(t *testing.T, dir string) (script, pidFile string) {
	pidFile = filepath.Join(dir, "child.pid")
	script = writeScript(t, dir, "hang", "sleep 300 &\necho $! > "+pidFile+"\nsleep 300")
	return script, pidFile
}

// runAndWatchChild runs cmd in the background and returns the pid of the
// child the script forked once it is running, and the result channel.
func runAndWatchChild(t *testing.T, ctx context.Context, r *Runner, cmd Command, pidFile string) (int, <-chan Result) {
	t.Helper()
	done := make(chan Result, 1)
	go func() { done <- r.Run(ctx, cmd) }()
	var child int
	waitFor(t, "the script's child", 10*time.Second, func() bool {
		child = readPID(pidFile)
		return child > 0 && alive(child)
	})
	t.Cleanup(func() { _ = unix.Kill(child, unix.SIGKILL) })
	return child, done
}

func TestTimeoutKillsGroup(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	script, pidFile := hangingScript(t, dir)
	r, _ := newRunner()
	child, done := runAndWatchChild(t, context.Background(), r, Command{Args: []string{script}, Timeout: 500 * time.Millisecond}, pidFile)
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its timeout")
	}
	if !res.TimedOut || res.Signal != syscall.SIGKILL || res.ExitStatus != -1 || res.Err != nil {
		t.Errorf("got %+v, want timed out and killed", res)
	}
	if res.Duration < 500*time.Millisecond || res.Duration > 5*time.Second {
		t.Errorf("duration %v, want about the 500ms timeout", res.Duration)
	}
	waitFor(t, fmt.Sprintf("the script's child %d to die with its group", child), 5*time.Second, func() bool { return !alive(child) })
}

func TestKillGraceSendsTermFirst(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	script := writeScript(t, dir, "trap", "trap 'echo TERM > "+got+"; exit 7' TERM\nwhile :; do sleep 0.05; done")
	r, _ := newRunner()
	r.KillGrace = 5 * time.Second
	res := r.Run(context.Background(), Command{Args: []string{script}, Timeout: 300 * time.Millisecond})
	if !res.TimedOut || res.ExitStatus != 7 {
		t.Errorf("got %+v, want timed out, exit 7 from its TERM trap", res)
	}
	if b, _ := os.ReadFile(got); string(b) != "TERM\n" {
		t.Errorf("script's trap wrote %q", b)
	}
	if res.Duration > 4*time.Second {
		t.Errorf("took %v: waited the whole grace although the script obeyed SIGTERM", res.Duration)
	}
}

func TestContextCancelKillsGroup(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	script, pidFile := hangingScript(t, dir)
	r, _ := newRunner()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	child, done := runAndWatchChild(t, ctx, r, Command{Args: []string{script}}, pidFile)
	cancel()
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if res.TimedOut || res.Signal != syscall.SIGKILL || !errors.Is(res.Err, ErrExec) {
		t.Errorf("got %+v, want killed with a ctx error", res)
	}
	waitFor(t, "the script's child to die", 5*time.Second, func() bool { return !alive(child) })
}

func TestBackgroundChildDoesNotBlock(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "daemon.pid")
	// The daemon keeps the script's stdout and stderr open and writes to
	// them.
	script := writeScript(t, dir, "daemon", "(while :; do echo tick; echo tock >&2; sleep 0.1; done) &\necho $! > "+pidFile+"\nexit 0")
	r, _ := newRunner()
	res := r.Run(context.Background(), Command{Args: []string{script}, Timeout: 30 * time.Second})
	if !res.OK() {
		t.Fatalf("got %+v", res)
	}
	if res.Duration > 3*time.Second {
		t.Errorf("Run took %v: it waited for the background child", res.Duration)
	}
	daemon := readPID(pidFile)
	t.Cleanup(func() { _ = unix.Kill(-daemon, unix.SIGKILL); _ = unix.Kill(daemon, unix.SIGKILL) })
	// keepalived leaves what a notify script started running; and with
	// /dev/null as its output it gets no SIGPIPE.
	time.Sleep(300 * time.Millisecond) // let it write a few times
	if daemon == 0 || !alive(daemon) {
		t.Errorf("the background child %d is gone; a script's daemons must survive it", daemon)
	}
}

func TestStartErrors(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noShebang := filepath.Join(dir, "noshebang")
	if err := os.WriteFile(noShebang, []byte("exit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := writeScript(t, dir, "ok", "exit 0")
	tests := []struct {
		name string
		cmd  Command
		kind error
		msg  string
	}{
		{"missing", Command{Args: []string{filepath.Join(dir, "nope")}}, ErrNotFound, "Script " + filepath.Join(dir, "nope") + " cannot be accessed - no such file or directory"},
		{"missing dir", Command{Args: []string{"/vrrpkit-no-such-dir/x"}}, ErrNotFound, "Script /vrrpkit-no-such-dir/x cannot be accessed"},
		{"not in PATH", Command{Args: []string{"vrrpkit-no-such-command"}}, ErrNotFound, "Cannot find script vrrpkit-no-such-command in path - disabling"},
		{"not executable", Command{Args: []string{notExec}}, ErrNotExecutable, "WARNING - script '" + notExec + "' is not executable for uid:gid 0:0 - disabling."},
		{"no shebang", Command{Args: []string{noShebang}}, ErrExec, "Error exec-ing command '" + noShebang + "', error 8: exec format error"},
		{"empty", Command{}, ErrNotFound, "script has no command"},
		{"unknown user", Command{Args: []string{ok}, User: "vrrpkit-no-such-user"}, ErrUnknownUser, "Script user 'vrrpkit-no-such-user' does not exist"},
		{"unknown group", Command{Args: []string{ok}, User: "nobody", Group: "vrrpkit-no-such-group"}, ErrUnknownUser, "Script group 'vrrpkit-no-such-group' does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, log := newRunner()
			res := r.Run(context.Background(), tc.cmd)
			if res.Err == nil || res.ExitStatus != -1 {
				t.Fatalf("got %+v, want an error", res)
			}
			if !errors.Is(res.Err, tc.kind) {
				t.Errorf("error %q is not %v", res.Err, tc.kind)
			}
			if !strings.Contains(res.Err.Error(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", res.Err, tc.msg)
			}
			if !strings.Contains(log.String(), tc.msg) {
				t.Errorf("log %q lacks %q", log.String(), tc.msg)
			}
		})
	}
}

func TestPathSearch(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, bin, "vrrpkit-three", "exit 3")
	// A same-named file that is not executable earlier in the PATH is
	// skipped, as execvp does.
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "vrrpkit-three"), []byte("#!/bin/sh\nexit 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, log := newRunner()
	r.Env = []string{"PATH=" + other + ":" + bin}
	res := r.Run(context.Background(), Command{Args: []string{"vrrpkit-three"}, Security: true})
	if res.Err != nil || res.ExitStatus != 3 {
		t.Fatalf("got %+v", res)
	}
	want := "WARNING - script `vrrpkit-three` resolved by path search to `" + filepath.Join(bin, "vrrpkit-three") + "`. Please specify full path."
	if !strings.Contains(log.String(), want) {
		t.Errorf("log %q lacks %q", log.String(), want)
	}
	// Only the non-executable one: a permissions failure.
	r.Env = []string{"PATH=" + other}
	res = r.Run(context.Background(), Command{Args: []string{"vrrpkit-three"}})
	if !errors.Is(res.Err, ErrNotExecutable) || !strings.Contains(res.Err.Error(), "Permissions failure for script vrrpkit-three in path - disabling") {
		t.Errorf("got %+v", res)
	}
	// Warnings are logged once per Runner, not at every run.
	before := strings.Count(log.String(), "resolved by path search")
	r.Env = []string{"PATH=" + bin}
	r.Run(context.Background(), Command{Args: []string{"vrrpkit-three"}})
	if n := strings.Count(log.String(), "resolved by path search"); n != before {
		t.Errorf("path-search warning logged %d times, want once", n)
	}
}

func TestSymlinkKeepsName(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	target := writeScript(t, dir, "target", `echo "$0" > `+out)
	link := filepath.Join(dir, "link")
	if err := os.Symlink("target", link); err != nil {
		t.Fatal(err)
	}
	r, _ := newRunner()
	if res := r.Run(context.Background(), Command{Args: []string{link}, Security: true}); !res.OK() {
		t.Fatalf("got %+v", res)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != link {
		t.Errorf("script ran as %q, want its own name %q (target %s)", b, link, target)
	}
}

func TestShellRedirect(t *testing.T) {
	needRoot(t)
	r, _ := newRunner()
	if res := r.Run(context.Background(), Command{Args: []string{"</etc/passwd"}, Security: true}); !res.OK() {
		t.Errorf("</etc/passwd: got %+v, want exit 0", res)
	}
	if res := r.Run(context.Background(), Command{Args: []string{"< /vrrpkit-no-such-file"}, Security: true}); res.Err != nil || res.ExitStatus == 0 {
		t.Errorf("< /vrrpkit-no-such-file: got %+v, want a failure status", res)
	}
}

// nobodyDir makes a directory nobody can traverse and write, in a path
// only root can write.
func nobodyDir(t *testing.T) (dir string, nobody *user.User) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir = t.TempDir()
	for d := dir; d != "/tmp" && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, u
}

func TestRunsAsUser(t *testing.T) {
	needRoot(t)
	dir, nobody := nobodyDir(t)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	script := writeScript(t, dir, "id", "id -u > "+out+"/uid; id -G > "+out+"/groups; grep ^CapEff: /proc/self/status > "+out+"/caps")
	r, _ := newRunner()
	res := r.Run(context.Background(), Command{Args: []string{script}, User: "nobody", Security: true})
	if !res.OK() {
		t.Fatalf("got %+v", res)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if got := read("uid"); got != nobody.Uid {
		t.Errorf("script's uid %s, want nobody's %s", got, nobody.Uid)
	}
	if got := read("groups"); got != nobody.Gid {
		t.Errorf("script's groups %q, want only nobody's group %s", got, nobody.Gid)
	}
	if got := read("caps"); !strings.HasSuffix(got, "0000000000000000") {
		t.Errorf("script as nobody has capabilities: %s", got)
	}

	// The default user applies when the command names none.
	r.DefaultUser = "nobody"
	if res := r.Run(context.Background(), Command{Args: []string{script}}); !res.OK() {
		t.Fatalf("default user: got %+v", res)
	}
	if got := read("uid"); got != nobody.Uid {
		t.Errorf("default user: script's uid %s, want %s", got, nobody.Uid)
	}

	// Root keeps root's capabilities (notify scripts run ip, systemctl).
	r.DefaultUser = ""
	if res := r.Run(context.Background(), Command{Args: []string{script}}); !res.OK() {
		t.Fatalf("root: got %+v", res)
	}
	if got := read("uid"); got != "0" {
		t.Errorf("root: script's uid %s", got)
	}
	if got := read("caps"); strings.HasSuffix(got, "0000000000000000") {
		t.Errorf("script as root has no capabilities: %s", got)
	}
}

func TestNobodyCannotReachScript(t *testing.T) {
	needRoot(t)
	dir := t.TempDir() // 0700 root: nobody cannot traverse it
	script := writeScript(t, dir, "s", "exit 0")
	r, _ := newRunner()
	res := r.Run(context.Background(), Command{Args: []string{script}, User: "nobody"})
	if res.Err == nil || !errors.Is(res.Err, ErrNotExecutable) || res.ExitStatus != -1 {
		t.Errorf("got %+v, want a permission error", res)
	}
}

func TestCleanEnvironment(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	// /proc/$$/environ is what the script was exec'd with, before the shell
	// adds anything.
	script := writeScript(t, dir, "env", "tr '\\0' '\\n' < /proc/$$/environ > "+out+"; pwd >> "+out)
	t.Setenv("VRRPKIT_SECRET", "leak")
	r, _ := newRunner()
	if res := r.Run(context.Background(), Command{Args: []string{script}}); !res.OK() {
		t.Fatalf("got %+v", res)
	}
	b, _ := os.ReadFile(out)
	if want := "PATH=" + DefaultPath + "\n/\n"; string(b) != want {
		t.Errorf("script's environment and cwd:\n%s\nwant:\n%s", b, want)
	}
}

func TestStdioIsDevNull(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "fds")
	// In $(...) the shell's own fds are read from a subshell.
	script := writeScript(t, dir, "fds", `x=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); echo "$x" > `+out)
	r, _ := newRunner()
	if res := r.Run(context.Background(), Command{Args: []string{script}}); !res.OK() {
		t.Fatalf("got %+v", res)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 3 || lines[0] != "/dev/null" || lines[1] != "/dev/null" || lines[2] != "/dev/null" {
		t.Errorf("script's stdio: %q, want /dev/null three times", lines)
	}
}

// TestRTPrioReset needs CAP_SYS_RESOURCE to raise RLIMIT_RTPRIO above a
// hard limit of 0; without it, it skips and TestLimitResetMechanism shows
// the same mechanism on a limit a test can change.
func TestRTPrioReset(t *testing.T) {
	needRoot(t)
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_RTPRIO, &orig); err != nil {
		t.Fatal(err)
	}
	raised := unix.Rlimit{Cur: 50, Max: 50}
	if err := unix.Setrlimit(unix.RLIMIT_RTPRIO, &raised); err != nil {
		t.Skipf("cannot raise our RLIMIT_RTPRIO (%v): no CAP_SYS_RESOURCE here", err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_RTPRIO, &orig) })
	checkLimitReset(t, &Runner{}, "Max realtime priority", []string{"root", "nobody"})
}

// TestLimitResetMechanism lowers RLIMIT_MSGQUEUE (any root may) and checks
// that the script starts with it at 0 all the same: the stop at exec, the
// prlimit and the detach work. As root only: resetting another uid's limit
// needs CAP_SYS_RESOURCE too.
func TestLimitResetMechanism(t *testing.T) {
	needRoot(t)
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max == 0 {
		t.Skip("RLIMIT_MSGQUEUE is already 0")
	}
	lowered := unix.Rlimit{Cur: orig.Max / 2, Max: orig.Max}
	if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &lowered); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &orig) })
	checkLimitReset(t, &Runner{resetResource: unix.RLIMIT_MSGQUEUE}, "Max msgqueue size", []string{"root"})
}

func checkLimitReset(t *testing.T, r *Runner, line string, users []string) {
	dir, _ := nobodyDir(t)
	out := filepath.Join(dir, "out")
	must(t, os.Mkdir(out, 0o777))
	must(t, os.Chmod(out, 0o777))
	script := writeScript(t, dir, "limits", "grep '"+line+"' /proc/$$/limits > "+out+"/$(id -u); exit 4")
	for _, u := range users {
		res := r.Run(context.Background(), Command{Args: []string{script}, User: u, Timeout: 10 * time.Second})
		if res.Err != nil || res.ExitStatus != 4 {
			t.Fatalf("%s: got %+v", u, res)
		}
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != len(users) {
		t.Fatalf("want the limits of %d runs, got %d files", len(users), len(ents))
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		f := strings.Fields(strings.TrimPrefix(string(b), line))
		if len(f) < 2 || f[0] != "0" || f[1] != "0" {
			t.Errorf("uid %s: script's limit line %q, want 0 0", e.Name(), b)
		}
	}
	// A timeout still kills the traced-then-detached script.
	hang := writeScript(t, dir, "hang", "exec sleep 300")
	if res := r.Run(context.Background(), Command{Args: []string{hang}, Timeout: 200 * time.Millisecond}); !res.TimedOut || res.Signal != syscall.SIGKILL {
		t.Errorf("hang while resetting a limit: got %+v", res)
	}
	// And a missing interpreter is still an exec error.
	bad := filepath.Join(dir, "bad")
	must(t, os.WriteFile(bad, []byte("#!/vrrpkit-no-such-interpreter\n"), 0o755))
	if res := r.Run(context.Background(), Command{Args: []string{bad}}); !errors.Is(res.Err, ErrNotFound) {
		t.Errorf("bad interpreter while resetting a limit: got %+v", res)
	}
}

func TestConcurrentRuns(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang", "exec sleep 300")
	ok := writeScript(t, dir, "ok", "exit 5")
	r, _ := newRunner()
	hung := make(chan Result, 1)
	go func() { hung <- r.Run(context.Background(), Command{Args: []string{hang}, Timeout: 20 * time.Second}) }()
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := Command{Args: []string{ok}}
			if i%4 == 0 {
				cmd = Command{Args: []string{filepath.Join(dir, "missing")}}
			}
			res := r.Run(context.Background(), cmd)
			if (i%4 == 0) != (res.Err != nil) || (res.Err == nil && res.ExitStatus != 5) {
				errs <- fmt.Sprintf("run %d: %+v", i, res)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(15 * time.Second):
		t.Fatal("runs blocked behind a hanging script")
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	select {
	case res := <-hung:
		t.Errorf("the hanging script returned early: %+v", res)
	default:
	}
}

func TestResolveDefaultUser(t *testing.T) {
	exists := func(name string) (*user.User, error) {
		return &user.User{Username: name, Uid: "990", Gid: "990"}, nil
	}
	missing := func(name string) (*user.User, error) { return nil, user.UnknownUserError(name) }
	tests := []struct {
		name     string
		lookup   func(string) (*user.User, error)
		security bool
		want     string
		wantErr  bool
		wantWarn bool
	}{
		{"exists", exists, false, "keepalived_script", false, false},
		{"exists, secure", exists, true, "keepalived_script", false, false},
		{"missing", missing, false, "root", false, true},
		{"missing, secure", missing, true, "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			got, err := ResolveDefaultUser(tc.lookup, tc.security, slog.New(slog.NewTextHandler(&buf, nil)))
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "Unable to set default user keepalived_script for script") {
				t.Errorf("error %q", err)
			}
			if warned := strings.Contains(buf.String(), "keepalived_script does not exist"); warned != tc.wantWarn {
				t.Errorf("warning logged %v, want %v: %q", warned, tc.wantWarn, buf.String())
			}
		})
	}
}
