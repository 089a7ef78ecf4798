package netstate

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNS is a network namespace of its own for one test, created with
// "ip netns add" so that no thread of the test process ever changes
// namespace except inside inNetns. Everything created in it (veths,
// addresses) goes away with it on every exit path.
type testNS struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle // rtnetlink handle inside the namespace
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (CAP_SYS_ADMIN to create network namespaces, CAP_NET_ADMIN inside them); " +
			"run as root: go test ./pkg/netstate")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: needs ip(8) from iproute2")
	}
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	requireRoot(t)
	sweepOnce.Do(func() { sweepStaleNamespaces(t) })
	n := &testNS{name: fmt.Sprintf("%s%d-%08x", nsPrefix, os.Getpid(), rand.Uint32())}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", n.name, err, out)
	}
	// Registered first, so it runs last, after every descriptor into the
	// namespace is closed.
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	ns, err := netns.GetFromName(n.name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", n.name, err)
	}
	n.ns = ns
	t.Cleanup(func() { ns.Close() })
	t.Cleanup(func() { checkThreadsInOwnNetns(t) })
	h, err := newHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.name, err)
	}
	n.h = h
	t.Cleanup(h.Close)
	return n
}

const nsPrefix = "netstate-test-"

var sweepOnce sync.Once

// sweepStaleNamespaces deletes the namespaces left by test processes that
// died before their cleanups ran (a panic, a -timeout, SIGKILL). Names
// carry the creator's pid; a namespace whose creator is alive is left alone.
func sweepStaleNamespaces(t *testing.T) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, _, ok := strings.Cut(rest, "-")
		if !ok || pid == "" {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
			t.Logf("delete stale namespace %s: %v: %s", e.Name(), err, out)
		} else {
			t.Logf("deleted stale namespace %s", e.Name())
		}
	}
}

// ip runs "ip -n NS args..." and returns its output.
func (n *testNS) ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// veth creates the veth pair a, b and sets both ends up.
func (n *testNS) veth(t *testing.T, a, b string) {
	t.Helper()
	n.ip(t, "link", "add", a, "type", "veth", "peer", "name", b)
	n.ip(t, "link", "set", a, "up")
	n.ip(t, "link", "set", b, "up")
}

// logBuffer is a slog destination that tests can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	var b logBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// checkThreadsInOwnNetns fails the test if any OS thread of the process is
// in another network namespace than the main thread: a thread moved by
// inNetns must come back or die.
func checkThreadsInOwnNetns(t *testing.T) {
	t.Helper()
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Errorf("read own network namespace: %v", err)
		return
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Errorf("list threads: %v", err)
		return
	}
	for _, task := range tasks {
		got, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // the thread exited
		}
		if got != want {
			t.Errorf("thread %s is in network namespace %s, the process in %s", task.Name(), got, want)
		}
	}
}
