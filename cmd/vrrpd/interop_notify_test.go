package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifyScripts writes the test's notify scripts into r.dir: record.sh
// appends its arguments to notify.log and fails loudly if another copy of
// itself runs at the same time for the same instance (a mkdir lock);
// notify.sh is a how-to style script that logs how it was called.
func notifyScripts(t *testing.T, r *trackRig) {
	t.Helper()
	r.write(t, "record.sh", `#!/bin/sh
if ! mkdir "`+r.dir+`/lock-$2" 2>/dev/null; then echo "CONCURRENT $*" >>"`+r.dir+`/notify.log"; fi
sleep 0.02
echo "$*" >>"`+r.dir+`/notify.log"
rmdir "`+r.dir+`/lock-$2"
`, 0o755)
	r.write(t, "notify.sh", `#!/bin/sh
echo "notify.sh $*" >>"`+r.dir+`/howto.log"
`, 0o755)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// fifoReader opens the FIFO for reading (read-write, so that it never sees
// EOF between writers) and collects its lines.
type fifoReader struct {
	f     *os.File
	lines chan string
}

func readFIFO(t *testing.T, path string) *fifoReader {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fifoReader{f: f, lines: make(chan string, 1000)}
	go func() { // ends when f is closed
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fr.lines <- sc.Text()
		}
		close(fr.lines)
	}()
	t.Cleanup(func() { f.Close() })
	return fr
}

// wait returns the first line equal to want, failing after timeout; the
// lines before it are returned too.
func (fr *fifoReader) wait(t *testing.T, want string, timeout time.Duration) []string {
	t.Helper()
	var seen []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-fr.lines:
			if !ok {
				t.Fatalf("FIFO closed; lines so far %q", seen)
			}
			seen = append(seen, l)
			if l == want {
				return seen
			}
		case <-deadline:
			t.Fatalf("FIFO: no line %q within %v; lines %q", want, timeout, seen)
		}
	}
}

// transitions are the "to" states of the supervisor's "vrrp transition"
// log lines for instance.
func transitions(t *testing.T, r *trackRig, instance string) []string {
	t.Helper()
	re := regexp.MustCompile(`msg="vrrp transition" instance=` + instance + ` from=\S+ to=(\S+)`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(mustRead(t, r.vk.Proc().Log())), -1) {
		out = append(out, m[1])
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInteropNotify: the notify script gets keepalived's appended words,
// the FIFO keepalived's line, a how-to style notify.sh its own arguments,
// and under fast flapping every transition's script runs, in order, never
// two at once for the instance (must show 1 of issue 7).
func TestInteropNotify(t *testing.T) {
	t.Parallel()
	var fifo *fifoReader
	inst := `  notify DIR/record.sh
  notify_master "DIR/notify.sh -n master -a 172.16.100.1"
  notify_backup "DIR/notify.sh backup"
  notify_fault "DIR/notify.sh fault"
  track_interface {
    trk0
  }
`
	r := newTrackRig(t, "  notify_fifo DIR/fifo\n  startup_script \"DIR/notify.sh startup\"\n", "", inst, func(r *trackRig) {
		notifyScripts(t, r)
		fifo = readFIFO(t, filepath.Join(r.dir, "fifo"))
		addTrackLink(t, r)
	})
	fifo.wait(t, `INSTANCE "VI_1" MASTER 150`, 5*time.Second)
	if err := eventually(5*time.Second, func() (bool, string) {
		got := readLines(t, filepath.Join(r.dir, "notify.log"))
		return slices.Contains(got, "INSTANCE VI_1 MASTER 150"), fmt.Sprintf("notify.log %q", got)
	}); err != nil {
		t.Fatal(err)
	}
	if err := eventually(5*time.Second, func() (bool, string) {
		got := readLines(t, filepath.Join(r.dir, "howto.log"))
		return slices.Contains(got, "notify.sh -n master -a 172.16.100.1") && got[0] == "notify.sh startup",
			fmt.Sprintf("howto.log %q, want startup_script's line first and notify_master's", got)
	}); err != nil {
		t.Fatal(err)
	}

	// Flap: trk0 down and up ten times, 30 ms apart: FAULT, BACKUP, FAULT,
	// ... faster than the script (20 ms and a fork) completes.
	for i := 0; i < 10; i++ {
		r.ip(t, "link", "set", "trk0", "down")
		time.Sleep(30 * time.Millisecond) // the flapping itself, not a wait for a result
		r.ip(t, "link", "set", "trk0", "up")
		time.Sleep(30 * time.Millisecond)
	}
	r.waitMaster(t, r.vk, 10*time.Second)
	var want, got []string
	if err := eventually(10*time.Second, func() (bool, string) {
		want = nil
		for _, s := range transitions(t, r, "VI_1") {
			if s != "INIT" && s != "STOP" {
				want = append(want, s)
			}
		}
		got = nil
		for _, l := range readLines(t, filepath.Join(r.dir, "notify.log")) {
			f := strings.Fields(l)
			if len(f) >= 3 {
				got = append(got, f[2])
			}
		}
		return slices.Equal(got, want), fmt.Sprintf("notify ran for %q, transitions were %q", got, want)
	}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(want, " "), "FAULT"); n < 5 {
		t.Errorf("only %d FAULT transitions while flapping: %q", n, want)
	}
	for _, l := range readLines(t, filepath.Join(r.dir, "notify.log")) {
		if strings.HasPrefix(l, "CONCURRENT") {
			t.Errorf("two notify scripts ran at once for one instance: %q", l)
		}
	}
	t.Logf("%d transitions, each notified in order: %q", len(want), want)
}

// TestInteropSyncGroup: two vrrpkit instances in one vrrp_sync_group, both
// masters against keepalived; the first one's tracked interface goes down
// and both go to FAULT, keepalived takes both VIPs; it comes back and
// vrrpkit takes both again (must show 4 of issue 7).
func TestInteropSyncGroup(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha, hb := lab.Host("ra", lan), lab.Host("rb", lan)
	const interval = 200 * time.Millisecond
	v1 := inst{name: "VI_1", vrid: 71, version: 3, interval: interval, vips: []netip.Addr{lan.VIP4(1)}}
	v2 := inst{name: "VI_2", vrid: 72, version: 3, interval: interval, vips: []netip.Addr{lan.VIP4(2)}}
	v1.prio, v2.prio = trackLow, trackLow
	ka := start(t, lab, keepalived, hb, conf("rb", v1, v2))
	r := &trackRig{lab: lab, ha: ha, hb: hb, ka: ka, interval: interval}
	addTrackLink(t, r)
	v1.prio, v2.prio = trackHigh, trackHigh
	text := conf("ra", v1, v2)
	text = strings.Replace(text, "vrrp_instance VI_1 {\n", "vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n}\nvrrp_instance VI_1 {\n  track_interface {\n    trk0\n  }\n", 1)
	r.vk = startVrrpkit(t, lab, ha, text)
	both := func(want string, m router) {
		t.Helper()
		for _, name := range []string{"VI_1", "VI_2"} {
			waitState(t, m, name, "MASTER", 15*time.Second)
			waitState(t, r.vk, name, want, 5*time.Second)
		}
	}
	both("MASTER", r.vk)
	r.ip(t, "link", "set", "trk0", "down")
	both("FAULT", ka)
	in, err := r.vk.Instance("VI_2")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("VI_2 (nothing of its own failed): %s, fault reasons %q", in.GetState(), in.GetFaultReasons())
	r.ip(t, "link", "set", "trk0", "up")
	both("MASTER", r.vk)
}

// TestInteropBadScripts: a script that hangs, one that crashes, one that is
// missing and one that enable_script_security refuses each get a log line
// and count as failed (4 × weight -10: vrrpkit goes from 150 to 110, still
// above keepalived's 100), and vrrpkit's adverts never stop meanwhile (must
// show 5 of issue 7).
func TestInteropBadScripts(t *testing.T) {
	t.Parallel()
	top := `vrrp_script hang {
  script "/bin/sleep 1000"
  interval 1
  timeout 1
  weight -10
}
vrrp_script crash {
  script "/bin/sh -c 'kill -SEGV $$'"
  interval 1
  weight -10
}
vrrp_script missing {
  script DIR/no-such-script
  interval 1
  weight -10
}
vrrp_script insecure {
  script DIR/ww/check.sh
  interval 1
  weight -10
}
`
	inst := "  track_script {\n    hang\n    crash\n    missing\n    insecure\n  }\n"
	r := newTrackRigAt(t, trackHigh, 100, "  enable_script_security\n  script_user root\n", top, inst, func(r *trackRig) {
		if err := os.Mkdir(filepath.Join(r.dir, "ww"), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(r.dir, "ww"), 0o777); err != nil {
			t.Fatal(err)
		}
		r.write(t, "ww/check.sh", "#!/bin/sh\nexit 0\n", 0o755)
	})
	capture := r.ha.Segment().Capture("vrrp")
	r.waitPriority(t, trackHigh-40, 15*time.Second)
	// Three more timeouts of the hanging script.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := r.vk.State("VI_1"); st != "MASTER" {
			t.Fatalf("vrrpkit is %s, want MASTER throughout", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var last time.Time
	var worst time.Duration
	n := 0
	for _, a := range adverts(t, capture) {
		if a.src != r.ha.IPv4() {
			continue
		}
		if !last.IsZero() && a.at.Sub(last) > worst {
			worst = a.at.Sub(last)
		}
		last = a.at
		n++
	}
	if worst > 2*r.interval || n < 10 {
		t.Errorf("vrrpkit's adverts: %d, longest gap %v (interval %v)", n, worst, r.interval)
	}
	log := string(mustRead(t, r.vk.Proc().Log()))
	for name, pattern := range map[string]string{
		"hang":     `(?i)vrrp_script=hang.*tim(ed|e) ?out`,
		"crash":    `vrrp_script=crash.*signal 11`,
		"missing":  `no-such-script cannot be accessed.*vrrp_script missing`,
		"insecure": `Unsafe permissions.*ww/check.sh.*vrrp_script insecure`,
	} {
		if m := regexp.MustCompile(`(?m)^.*` + pattern + `.*$`).FindString(log); m == "" {
			t.Errorf("no log line about vrrp_script %s matching %q", name, pattern)
		} else {
			t.Logf("%s: %s", name, m)
		}
	}
	t.Logf("%d adverts from vrrpkit, longest gap %v", n, worst)
}
