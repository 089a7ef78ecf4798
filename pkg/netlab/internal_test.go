package netlab

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recTB is a testing.TB whose Cleanup, Failed and Logf are recorded, so a
// test can run a lab's cleanup as it runs after a failed test and look at
// what it did. Everything else goes to the real test.
type recTB struct {
	testing.TB
	cleanups []func()
	logs     []string
	failed   bool
}

func (r *recTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recTB) Failed() bool     { return r.failed || r.TB.Failed() }
func (r *recTB) Log(args ...any)  { r.logs = append(r.logs, fmt.Sprint(args...)) }
func (r *recTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// runCleanups runs the recorded cleanups, last registered first.
func (r *recTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestCleanupAfterFailure(t *testing.T) {
	t.Parallel()
	rec := &recTB{TB: t}
	l := New(rec)
	lan := l.Segment("lan")
	h1 := l.Host("h1", lan)
	h2 := l.Host("h2", lan)

	chatty := h1.Start("sh", "-c", `i=1; while [ $i -le 80 ]; do echo line$i; i=$((i+1)); done; exec sleep 300`)
	// A grandchild that leaves the process group: only the sweep of the
	// namespace's processes can find it.
	pidFile := filepath.Join(l.Dir(), "escapee.pid")
	esc := h2.Start("sh", "-c", "setsid sh -c 'echo $$ >"+pidFile+"; exec sleep 300' & "+
		"while [ ! -s "+pidFile+" ]; do sleep 0.01; done; echo spawned; exec sleep 300")
	for p, s := range map[*Proc]string{chatty: "line80", esc: "spawned"} {
		if err := p.WaitLog(s, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	escapee, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if pgid, _ := syscall.Getpgid(escapee); pgid == esc.Pid() {
		t.Fatalf("escapee %d is still in the process group of %d", escapee, esc.Pid())
	}
	c := h1.Capture("eth0", "")

	rec.failed = true
	rec.runCleanups()

	logs := strings.Join(rec.logs, "\n")
	if !strings.Contains(logs, "\nline31\n") || !strings.Contains(logs, "line80") || strings.Contains(logs, "line30\n") {
		t.Errorf("want the last 50 lines (line31..line80) of the log printed on failure; printed:\n%s", logs)
	}
	if !strings.Contains(logs, "tcpdump") || !strings.Contains(logs, "listening on") {
		t.Errorf("want tcpdump's log printed on failure; printed:\n%s", logs)
	}
	for _, pid := range []int{chatty.Pid(), esc.Pid(), escapee, c.Proc().Pid()} {
		if alive(pid) {
			t.Errorf("process %d survived the lab's cleanup", pid)
		}
	}
	if left, err := leftovers(l.Prefix()); err != nil || len(left) > 0 {
		t.Errorf("after cleanup: %v %v", left, err)
	}
	if netnsExists(h1.Netns()) || netnsExists(l.SwitchNetns()) {
		t.Errorf("namespaces %s, %s survived the cleanup", h1.Netns(), l.SwitchNetns())
	}
}

func TestSweep(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Parallel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := gone.Process.Pid
	if alive(deadPid) {
		t.Skipf("pid %d was reused at once", deadPid)
	}
	staleSwitch := fmt.Sprintf("%s%dswp", Prefix, deadPid)
	staleHost := staleSwitch + "-h1"
	liveLab := fmt.Sprintf("%s%d%s", Prefix, os.Getpid(), randLetters(3))
	live := liveLab + "-sweep"
	for _, ns := range []string{staleSwitch, staleHost, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}

	// A process left behind in the stale host namespace.
	sleeper := exec.Command("ip", "netns", "exec", staleHost, "sleep", "300")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(exited) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill(); <-exited })
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids, err := netnsPids(staleHost)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pids, sleeper.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleeper %d never showed in %s", sleeper.Process.Pid, staleHost)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Stale and live interface names, in a namespace of this test (never
	// the caller's), swept from inside it.
	staleLinks := []string{staleSwitch, staleSwitch + "-x"}
	keptLinks := []string{liveLab, "other0"}
	var cmds []string
	for _, n := range append(slices.Clone(staleLinks), keptLinks...) {
		cmds = append(cmds, "link add "+n+" type bridge") // dummy may not be loadable
	}
	if err := ipBatch(live, cmds...); err != nil {
		t.Fatal(err)
	}

	var removed []string
	if err := inNetns(live, func() error {
		var err error
		removed, err = Sweep(Prefix)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed: %v", removed)

	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("the process in the stale namespace was not killed")
	}
	for _, ns := range []string{staleSwitch, staleHost} {
		if netnsExists(ns) {
			t.Errorf("stale namespace %s survived the sweep", ns)
		}
	}
	if !netnsExists(live) {
		t.Errorf("the sweep removed %s, a namespace of a live process", live)
	}
	for _, n := range staleLinks {
		if !slices.Contains(removed, "interface "+n) {
			t.Errorf("removed = %v, want interface %s in it", removed, n)
		}
	}
	out, err := exec.Command("ip", "-n", live, "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, n := range keptLinks {
		if !strings.Contains(string(out), " "+n+":") {
			t.Errorf("the sweep removed interface %s:\n%s", n, out)
		}
	}
}

func TestLabNames(t *testing.T) {
	for _, c := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"vk4321abc", 4321, true},
		{"vk4321abc-r1", 4321, true},
		{"vk4321abc-s-lan", 4321, true},
		{"vk4321ab", 0, false},
		{"vk4321abcd", 0, false},
		{"vkabc-r1", 0, false},
		{"vk4321abc-", 0, false},
		{"xvk4321abc", 0, false},
		{"eth0", 0, false},
	} {
		pid, ok := labPid(c.name)
		if pid != c.pid || ok != c.ok {
			t.Errorf("labPid(%q) = %d, %v; want %d, %v", c.name, pid, ok, c.pid, c.ok)
		}
	}
	if _, ok := labPid(fmt.Sprintf("%s%d%s-%s", Prefix, 4194304, "abc", "abcdefghijkl")); !ok {
		t.Error("labPid does not recognise the longest host namespace name")
	}
	if stale("vk", fmt.Sprintf("vk%dabc", os.Getpid())) {
		t.Error("a lab of this process counts as stale")
	}
	// The longest names a lab makes must fit IFNAMSIZ (15 + NUL).
	if n := len("br-") + 12; n > 15 {
		t.Errorf("bridge names can be %d long", n)
	}
	if n := len("p-") + 12; n > 15 {
		t.Errorf("port names can be %d long", n)
	}
	if !validName.MatchString("abcdefghijkl") || validName.MatchString("abcdefghijklm") ||
		validName.MatchString("R1") || validName.MatchString("1r") || validName.MatchString("") {
		t.Error("validName accepts or rejects the wrong names")
	}
}

func TestSegmentAddresses(t *testing.T) {
	s := &Segment{lab: &Lab{t: t}, name: "lan", n: 2}
	for _, c := range []struct{ got, want string }{
		{s.Prefix4().String(), "192.0.2.0/24"},
		{s.Prefix6().String(), "2001:db8:2::/64"},
		{s.addr4(7).String(), "192.0.2.7"},
		{s.addr6(7).String(), "2001:db8:2::7"},
		{s.VIP4(1).String(), "192.0.2.201"},
		{s.VIP4(maxVIPs).String(), "192.0.2.254"},
		{s.VIP6(1).String(), "2001:db8:2::101"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
	if !s.Prefix4().Contains(s.VIP4(3)) || !s.Prefix6().Contains(s.VIP6(3)) {
		t.Error("VIPs outside the segment's prefixes")
	}
}

func TestParseEpoch(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1700000000.123456789", time.Unix(1700000000, 123456789), true},
		{"1700000000.5", time.Unix(1700000000, 500000000), true},
		{"1700000000", time.Unix(1700000000, 0), true},
		{"1700000000.1234567891", time.Unix(1700000000, 123456789), true},
		{"", time.Time{}, false},
		{"abc.1", time.Time{}, false},
		{"1.-5", time.Time{}, false},
	} {
		got, err := ParseEpoch(c.in)
		if (err == nil) != c.ok || !got.Equal(c.want) {
			t.Errorf("ParseEpoch(%q) = %v, %v; want %v (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestEchoRequest(t *testing.T) {
	m := echoRequest(8, 0x1234, 1)
	if inetChecksum(m) != 0 {
		t.Errorf("ICMP echo request %x: checksum does not verify", m)
	}
	if got := htons(0x88b5); got == 0x88b5 && !isBigEndian() {
		t.Errorf("htons(0x88b5) = %#x on a little-endian machine", got)
	}
}

func isBigEndian() bool { return htons(1) == 1 }

func TestShellJoin(t *testing.T) {
	if got, want := shellJoin("sh", []string{"-c", "echo it's", ""}), `sh -c 'echo it'\''s' ''`; got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}

func TestCountPcap(t *testing.T) {
	hdr := func(order binary.ByteOrder, magic uint32) []byte {
		b := make([]byte, 24)
		order.PutUint32(b, magic)
		return b
	}
	rec := func(order binary.ByteOrder, payload int) []byte {
		b := make([]byte, 16+payload)
		order.PutUint32(b[8:], uint32(payload))
		order.PutUint32(b[12:], uint32(payload))
		return b
	}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, magic := range []uint32{0xa1b2c3d4, 0xa1b23c4d} {
			f := hdr(order, magic)
			f = append(f, rec(order, 60)...)
			f = append(f, rec(order, 0)...)
			f = append(f, rec(order, 1514)...)
			if n, err := countPcap(f); n != 3 || err != nil {
				t.Errorf("%v %#x: countPcap = %d, %v; want 3", order, magic, n, err)
			}
			// A record cut short by a capture killed mid-write.
			if n, err := countPcap(append(f, rec(order, 100)[:50]...)); n != 3 || err != nil {
				t.Errorf("%v %#x: truncated: countPcap = %d, %v; want 3", order, magic, n, err)
			}
		}
	}
	if _, err := countPcap([]byte("0123456789abcdef0123456789")); err == nil {
		t.Error("countPcap accepted a file that is not pcap")
	}
}
