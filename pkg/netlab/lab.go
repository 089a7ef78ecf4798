package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Prefix starts the name of every namespace a lab creates. The full lab
// prefix is Prefix, the test binary's pid and three random letters
// ("vk48213qzt"); see [Sweep].
const Prefix = "vk"

// cmdTimeout bounds every setup or query command the lab runs itself, so a
// hung tool fails the test instead of hanging it.
const cmdTimeout = 30 * time.Second

// logTailLines is how many lines of each process log are printed when a test
// fails.
const logTailLines = 50

// labName matches the names a lab gives its namespaces (and would give an
// interface): Prefix, a pid, three letters, then nothing or "-<name>".
var labName = regexp.MustCompile(`^` + Prefix + `([0-9]+)[a-z]{3}(-[a-z0-9-]+)?$`)

// validName is what segment and host names must look like: they become part
// of interface names ("br-<segment>", "p-<host>") that must fit IFNAMSIZ.
var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,11}$`)

// Lab is one test's network: a switch namespace with a bridge per segment,
// and a namespace per host. Create it with [New]; it removes itself when the
// test ends.
type Lab struct {
	t      testing.TB
	prefix string // e.g. "vk48213qzt"; also the switch namespace
	dir    string // t.TempDir(): logs, pid files, configs, captures

	mu      sync.Mutex
	closed  bool
	netns   []string // every namespace created, in creation order
	names   map[string]bool
	segs    []*Segment
	hosts   []*Host
	procs   []*Proc
	fileSeq int
}

// New makes an empty lab for t, with its switch namespace, and registers the
// cleanup that removes everything the lab makes. It skips t when not root or
// when ip is not installed, and when namespaces cannot be created.
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root (network namespaces, veth, raw sockets)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netlab: iproute2's ip is not in PATH")
	}
	l := &Lab{t: t, dir: t.TempDir(), names: map[string]bool{}}
	// Registered after TempDir, so it runs before the directory (and the
	// logs it prints on failure) is removed.
	t.Cleanup(l.cleanup)

	// The switch namespace reserves the prefix: `ip netns add` fails if the
	// name exists, so two labs never share one.
	var lastErr error
	for range 5 {
		prefix := fmt.Sprintf("%s%d%s", Prefix, os.Getpid(), randLetters(3))
		_, err := runCmd(context.Background(), nil, "ip", "netns", "add", prefix)
		if err == nil {
			l.prefix = prefix
			l.netns = append(l.netns, prefix)
			break
		}
		if strings.Contains(err.Error(), "Operation not permitted") {
			t.Skipf("netlab: cannot create network namespaces here: %v", err)
		}
		lastErr = err
	}
	if l.prefix == "" {
		t.Fatalf("netlab: creating the switch namespace: %v", lastErr)
	}
	if err := inNetns(l.prefix, func() error {
		// The switch is pure layer 2: no IPv6 on bridges and ports, so it
		// sends no RS/MLD of its own into the segments.
		return writeSysctls(map[string]string{
			"net/ipv6/conf/all/disable_ipv6":     "1",
			"net/ipv6/conf/default/disable_ipv6": "1",
		})
	}); err != nil {
		t.Fatalf("netlab: switch namespace %s: %v", l.prefix, err)
	}
	if _, err := runCmd(context.Background(), nil, "ip", "-n", l.prefix, "link", "set", "lo", "up"); err != nil {
		t.Fatalf("netlab: switch namespace %s: %v", l.prefix, err)
	}
	return l
}

// Prefix returns the lab's name prefix: every namespace the lab creates is
// named Prefix() or Prefix()+"-"+name.
func (l *Lab) Prefix() string { return l.prefix }

// SwitchNetns returns the name of the namespace holding the segments'
// bridges.
func (l *Lab) SwitchNetns() string { return l.prefix }

// Dir returns the lab's directory (t.TempDir()): logs, configs, pid files and
// captures are kept there until the test's cleanup.
func (l *Lab) Dir() string { return l.dir }

// claim reserves a segment or host name, failing the test if it is invalid
// or taken.
func (l *Lab) claim(kind, name string) {
	l.t.Helper()
	if !validName.MatchString(name) {
		l.t.Fatalf("netlab: %s name %q: want 1-12 of [a-z0-9-], starting with a letter", kind, name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.t.Fatalf("netlab: %s %q: lab already cleaned up", kind, name)
	}
	if l.names[name] {
		l.t.Fatalf("netlab: %s name %q is already used in this lab", kind, name)
	}
	l.names[name] = true
}

// file returns a fresh path in the lab's directory built from the parts.
func (l *Lab) file(parts ...string) string {
	l.mu.Lock()
	l.fileSeq++
	n := l.fileSeq
	l.mu.Unlock()
	name := fmt.Sprintf("%02d-%s", n, strings.Join(parts, "."))
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, name)
	return l.dir + "/" + name
}

// addNetns creates namespace name and records it for cleanup.
func (l *Lab) addNetns(name string) error {
	if _, err := runCmd(context.Background(), nil, "ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.netns = append(l.netns, name)
	l.mu.Unlock()
	return nil
}

// ipBatch runs ip commands (one a line) in namespace netns with `ip -batch`.
func ipBatch(netns string, lines ...string) error {
	in := strings.Join(lines, "\n") + "\n"
	if _, err := runCmd(context.Background(), strings.NewReader(in), "ip", "-n", netns, "-batch", "-"); err != nil {
		return fmt.Errorf("%w\ncommands:\n%s", err, in)
	}
	return nil
}

// cleanup kills every process, prints their logs if the test failed, deletes
// the namespaces and checks that nothing with the lab's prefix remains.
func (l *Lab) cleanup() {
	t := l.t
	l.mu.Lock()
	l.closed = true
	procs := slices.Clone(l.procs)
	netns := slices.Clone(l.netns)
	l.mu.Unlock()

	for _, p := range procs {
		p.killGroup()
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			t.Errorf("netlab: %s still running 5s after SIGKILL to its process group", p)
		}
	}
	if t.Failed() || panicking() {
		for _, p := range procs {
			t.Logf("netlab: %s, last %d lines of %s:\n%s", p, logTailLines, p.log, tail(p.log, logTailLines))
		}
	}

	// Hosts first, the switch last (it was created first).
	for i := len(netns) - 1; i >= 0; i-- {
		if err := deleteNetns(netns[i]); err != nil {
			t.Errorf("netlab: cleanup: %v", err)
		}
	}
	if l.prefix == "" {
		return
	}
	if left, err := leftovers(l.prefix); err != nil {
		t.Errorf("netlab: cleanup check: %v", err)
	} else if len(left) > 0 {
		t.Errorf("netlab: cleanup left these behind: %s", strings.Join(left, ", "))
	}
}

// panicking reports whether the calling goroutine is running the deferred
// calls of a panic. The testing package runs a panicking test's cleanups
// before it marks the test failed, so t.Failed() alone would not print the
// logs of a test that panicked.
func panicking() bool {
	buf := make([]byte, 256<<10)
	buf = buf[:runtime.Stack(buf, false)]
	return bytes.Contains(buf, []byte("\npanic("))
}

// deleteNetns kills every process inside namespace name, waits for them to
// go, and deletes the namespace. A namespace that is already gone (another
// sweep got there first) is not an error.
func deleteNetns(name string) error {
	var errs []error
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids, err := netnsPids(name)
		if err != nil {
			if !netnsExists(name) {
				return nil
			}
			errs = append(errs, err)
			break
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("namespace %s: processes %v survive SIGKILL", name, pids))
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := runCmd(context.Background(), nil, "ip", "netns", "del", name); err != nil && netnsExists(name) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// netnsExists reports whether `ip netns` knows namespace name.
func netnsExists(name string) bool {
	_, err := os.Stat("/var/run/netns/" + name) // iproute2's NETNS_RUN_DIR
	return err == nil
}

// netnsPids lists the processes in namespace name, never this process.
func netnsPids(name string) ([]int, error) {
	out, err := runCmd(context.Background(), nil, "ip", "netns", "pids", name)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// leftovers lists namespaces, and interfaces of the caller's namespace, whose
// name is prefix or starts with prefix+"-".
func leftovers(prefix string) ([]string, error) {
	ns, err := listNetns()
	if err != nil {
		return nil, err
	}
	links, err := listLinks()
	if err != nil {
		return nil, err
	}
	var left []string
	for _, n := range ns {
		if n == prefix || strings.HasPrefix(n, prefix+"-") {
			left = append(left, "namespace "+n)
		}
	}
	for _, n := range links {
		if n == prefix || strings.HasPrefix(n, prefix+"-") {
			left = append(left, "interface "+n)
		}
	}
	return left, nil
}

// listNetns returns the names `ip netns list` shows.
func listNetns() ([]string, error) {
	out, err := runCmd(context.Background(), nil, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// "name" or "name (id: 3)"
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// listLinks returns the interface names of the caller's namespace.
func listLinks() ([]string, error) {
	out, err := runCmd(context.Background(), nil, "ip", "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// "4: eth0: <...>" or "5: p-r1@if2: <...>"
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		names = append(names, name)
	}
	return names, nil
}

// Sweep removes what labs of earlier, crashed test runs left behind: every
// namespace and every interface of the caller's namespace whose name starts
// with prefix and has the form of a lab name (see [Prefix]) carrying the pid
// of a process that no longer exists. Processes still inside such a
// namespace are killed first. Labs of live processes, this one included, are
// left alone. Sweep(Prefix) sweeps every stale lab; call it from TestMain.
// It returns the names it removed.
func Sweep(prefix string) ([]string, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, nil
	}
	ns, err := listNetns()
	if err != nil {
		return nil, fmt.Errorf("netlab: sweep: %w", err)
	}
	links, err := listLinks()
	if err != nil {
		return nil, fmt.Errorf("netlab: sweep: %w", err)
	}
	var removed []string
	var errs []error
	for _, name := range ns {
		if !stale(prefix, name) {
			continue
		}
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, "namespace "+name)
	}
	for _, name := range links {
		if !stale(prefix, name) {
			continue
		}
		if _, err := runCmd(context.Background(), nil, "ip", "link", "del", name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, "interface "+name)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("netlab: sweep: %w", err)
	}
	return removed, nil
}

// stale reports whether name starts with prefix, is a lab name, and carries
// the pid of a process that is gone.
func stale(prefix, name string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	pid, ok := labPid(name)
	return ok && !alive(pid)
}

// labPid extracts the pid from a lab name.
func labPid(name string) (int, bool) {
	m := labName.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// alive reports whether process pid exists (a zombie counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // cannot tell: keep it
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// randLetters returns n random lowercase letters.
func randLetters(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

// tail returns the last n lines of file path, or a note saying why not.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	s := strings.TrimRight(string(data), "\n")
	if s == "" {
		return "(empty)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runCmd runs a short command in the caller's namespace with a timeout and
// returns its stdout. Its stderr is kept out of the result (iproute2 prints
// notes there about namespaces that vanish while it lists them); the error
// of a failed command names it and carries both outputs. The command runs in
// its own process group, which is killed if the timeout expires.
func runCmd(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := command(ctx, name, args...)
	cmd.Stdin = stdin
	return runSplit(cmd, name, args)
}

// runSplit runs cmd with stdout and stderr captured apart and returns
// stdout; a failure's error names the command and carries both outputs.
func runSplit(cmd *exec.Cmd, name string, args []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w\n%s%s", shellJoin(name, args), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// command returns an exec.Cmd in its own process group that dies with this
// process and whose whole group is killed when ctx is done.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output pipes held open by a stray grandchild must not hang Wait.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}
