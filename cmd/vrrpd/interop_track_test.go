package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// trackRig is vrrpkit at priority 150 against keepalived 2.2.7 at 120 on
// one segment, VRRPv3 with 0.2 s adverts, one VIP; vrrpkit's instance
// carries the tracking lines of the test. dir holds the test's scripts and
// files; checkerd (an unprivileged user) can read it.
type trackRig struct {
	lab      *netlab.Lab
	ha, hb   *netlab.Host
	vk       *vrrpkitRouter
	ka       router
	dir      string
	interval time.Duration
}

const (
	trackHigh = 150
	trackLow  = 120
)

// newTrackRig starts both routers and waits for vrrpkit to be master.
// globals go into vrrpkit's global_defs, top-level blocks before the
// instance (vrrp_script, vrrp_track_file, ...), instLines into its
// vrrp_instance; every "DIR" in them is the rig's directory.
func newTrackRig(t *testing.T, globals, top, instLines string, setup func(r *trackRig)) *trackRig {
	return newTrackRigAt(t, trackHigh, trackLow, globals, top, instLines, setup)
}

// newTrackRigAt is newTrackRig with vrrpkit's base priority prio and
// keepalived's kaPrio.
func newTrackRigAt(t *testing.T, prio, kaPrio int, globals, top, instLines string, setup func(r *trackRig)) *trackRig {
	t.Helper()
	lab := newLab(t)
	lan := lab.Segment("lan")
	r := &trackRig{lab: lab, ha: lab.Host("ra", lan), hb: lab.Host("rb", lan), interval: 200 * time.Millisecond}
	// Not under lab.Dir(): checkerd, as nobody, must be able to reach the
	// track files, and the lab's directory is root's.
	dir, err := os.MkdirTemp("", "vktrack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.dir = dir
	if setup != nil {
		setup(r)
	}
	vip := lan.VIP4(1)
	c := inst{vrid: 61, version: 3, interval: r.interval, vips: []netip.Addr{vip}}
	c.prio = kaPrio
	r.ka = start(t, lab, keepalived, r.hb, conf("rb", c))
	c.prio = prio
	text := conf("ra", c)
	text = strings.Replace(text, "global_defs {\n", "global_defs {\n"+globals, 1)
	text = strings.Replace(text, "vrrp_instance", top+"vrrp_instance", 1)
	text = strings.Replace(text, "  virtual_ipaddress {", instLines+"  virtual_ipaddress {", 1)
	text = strings.ReplaceAll(text, "DIR", dir)
	r.vk = startVrrpkit(t, lab, r.ha, text)
	r.waitMaster(t, r.vk, 15*time.Second)
	return r
}

// waitMaster waits until m is MASTER and the other router BACKUP (or
// FAULT, for vrrpkit).
func (r *trackRig) waitMaster(t *testing.T, m router, timeout time.Duration) {
	t.Helper()
	other := r.ka
	if m == r.ka {
		other = r.vk
	}
	err := eventually(timeout, func() (bool, string) {
		a, err := m.State("VI_1")
		if err != nil {
			return false, err.Error()
		}
		b, err := other.State("VI_1")
		if err != nil {
			return false, err.Error()
		}
		return a == "MASTER" && (b == "BACKUP" || b == "FAULT"), fmt.Sprintf("%s is %s, %s is %s", m.Impl(), a, other.Impl(), b)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitPriority waits until vrrpkit reports the effective priority want.
func (r *trackRig) waitPriority(t *testing.T, want uint32, timeout time.Duration) {
	t.Helper()
	err := eventually(timeout, func() (bool, string) {
		in, err := r.vk.Instance("VI_1")
		if err != nil {
			return false, err.Error()
		}
		return in.GetEffectivePriority() == want, fmt.Sprintf("effective priority %d, want %d (tracking %v, fault %v)",
			in.GetEffectivePriority(), want, in.GetTracking(), in.GetFaultReasons())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *trackRig) write(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p+".tmp", []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil { // atomic, as an operator's tool would
		t.Fatal(err)
	}
	return p
}

func (r *trackRig) ip(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := r.ha.Run(ctx, "ip", args...); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// trackedProcs holds each rig's tracked process.
var trackedProcs sync.Map

// tracker is one kind of tracking under test: how to configure it, break
// it and mend it.
type tracker struct {
	name      string
	top, inst string // config, with DIR and WEIGHT
	setup     func(t *testing.T, r *trackRig)
	fail      func(t *testing.T, r *trackRig)
	recover   func(t *testing.T, r *trackRig)
}

func trackers() []tracker {
	return []tracker{{
		name: "script",
		top:  "vrrp_script chk_down {\n  script \"/usr/bin/test ! -e DIR/down\"\n  interval 1\n  fall 1\n  rise 1\n  weight WEIGHT\n}\n",
		inst: "  track_script {\n    chk_down\n  }\n",
		fail: func(t *testing.T, r *trackRig) { r.write(t, "down", "", 0o644) },
		recover: func(t *testing.T, r *trackRig) {
			if err := os.Remove(filepath.Join(r.dir, "down")); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name:    "file",
		top:     "vrrp_track_file tf {\n  file DIR/track\n  weight WEIGHT\n}\n",
		inst:    "  track_file {\n    tf\n  }\n",
		setup:   func(t *testing.T, r *trackRig) { r.write(t, "track", "0\n", 0o644) },
		fail:    func(t *testing.T, r *trackRig) { r.write(t, "track", "1\n", 0o644) },
		recover: func(t *testing.T, r *trackRig) { r.write(t, "track", "0\n", 0o644) },
	}, {
		name:    "process",
		top:     "vrrp_track_process tp {\n  process vktrkd\n  weight WEIGHT\n}\n",
		inst:    "  track_process {\n    tp\n  }\n",
		setup:   func(t *testing.T, r *trackRig) { startTracked(t, r) },
		fail:    func(t *testing.T, r *trackRig) { stopTracked(t, r) },
		recover: func(t *testing.T, r *trackRig) { startTracked(t, r) },
	}, {
		name:    "interface",
		inst:    "  track_interface {\n    trk0 WEIGHTLINE\n  }\n",
		setup:   func(t *testing.T, r *trackRig) { addTrackLink(t, r) },
		fail:    func(t *testing.T, r *trackRig) { r.ip(t, "link", "set", "trk0", "down") },
		recover: func(t *testing.T, r *trackRig) { r.ip(t, "link", "set", "trk0", "up") },
	}}
}

// startTracked runs a process whose comm is vktrkd (a copy of sleep) for
// the process tracker; stopTracked kills it.
func startTracked(t *testing.T, r *trackRig) {
	t.Helper()
	bin := filepath.Join(r.dir, "vktrkd")
	if _, err := os.Stat(bin); err != nil {
		data, err := os.ReadFile("/bin/sleep")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	trackedProcs.Store(r, cmd)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

func stopTracked(t *testing.T, r *trackRig) {
	t.Helper()
	v, ok := trackedProcs.Load(r)
	if !ok {
		t.Fatal("no tracked process")
	}
	cmd := v.(*exec.Cmd)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// TestInteropTracking: each kind of tracker with weight -60 takes vrrpkit
// from 150 to 90 when it fails, so keepalived at 120 takes the VIP, and
// gives it back on recovery; with weight 0 the failure puts vrrpkit in
// FAULT instead (must show 2 of issue 7).
func TestInteropTracking(t *testing.T) {
	t.Parallel()
	for _, tr := range trackers() {
		for _, weight := range []int{-60, 0} {
			t.Run(fmt.Sprintf("%s/weight%d", tr.name, weight), func(t *testing.T) {
				t.Parallel()
				testTracking(t, tr, weight)
			})
		}
	}
}

func testTracking(t *testing.T, tr tracker, weight int) {
	w := fmt.Sprint(weight)
	wl := "weight " + w
	top := strings.ReplaceAll(tr.top, "WEIGHT", w)
	inst := strings.ReplaceAll(strings.ReplaceAll(tr.inst, "WEIGHTLINE", wl), "WEIGHT", w)
	if weight == 0 && tr.name == "interface" {
		inst = strings.ReplaceAll(tr.inst, " WEIGHTLINE", "") // no weight: FAULT when down
	}
	var setup func(*trackRig)
	if tr.setup != nil {
		setup = func(r *trackRig) { tr.setup(t, r) }
	}
	r := newTrackRig(t, "", top, inst, setup)
	r.waitPriority(t, trackHigh, 5*time.Second)

	tr.fail(t, r)
	r.waitMaster(t, r.ka, 10*time.Second)
	if weight == 0 {
		waitState(t, r.vk, "VI_1", "FAULT", 5*time.Second)
	} else {
		waitState(t, r.vk, "VI_1", "BACKUP", 5*time.Second)
		r.waitPriority(t, uint32(trackHigh+weight), 5*time.Second)
	}
	in, err := r.vk.Instance("VI_1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failed: vrrpkit %s at %d, fault %v, tracking %v", in.GetState(), in.GetEffectivePriority(), in.GetFaultReasons(), in.GetTracking())

	tr.recover(t, r)
	r.waitMaster(t, r.vk, 10*time.Second)
	r.waitPriority(t, trackHigh, 5*time.Second)
}

// TestInteropCheckerdUnprivileged: checkerd runs with no capabilities as a
// non-root user, and SIGKILLing it changes no priority: vrrpkit, at base
// 100 and master at 160 thanks to a succeeding script of weight +60, keeps
// advertising 160 while checkerd is dead and after it is back, and
// keepalived at 120 never takes over (must show 7 of issue 7).
func TestInteropCheckerdUnprivileged(t *testing.T) {
	t.Parallel()
	top := "vrrp_script chk_ok {\n  script \"/bin/true\"\n  interval 1\n  weight 60\n}\n"
	r := newTrackRigAt(t, 100, trackLow, "", top, "  track_script {\n    chk_ok\n  }\n", nil)
	r.waitPriority(t, 160, 5*time.Second)

	pid := checkerdPid(t, r)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := procStatus(string(st))
	uid := strings.Fields(fields["Uid"])
	if len(uid) == 0 || uid[0] == "0" {
		t.Errorf("checkerd runs as uid %q, want a non-root user", fields["Uid"])
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"} {
		if fields[k] != "0000000000000000" {
			t.Errorf("checkerd %s = %s, want none", k, fields[k])
		}
	}
	if fields["NoNewPrivs"] != "1" {
		t.Errorf("checkerd NoNewPrivs = %q, want 1", fields["NoNewPrivs"])
	}
	t.Logf("checkerd pid %d: Uid %s, CapEff %s", pid, fields["Uid"], fields["CapEff"])

	capture := r.ha.Segment().Capture("vrrp")
	if err := capture.WaitPackets(2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Until a new checkerd is up and has been followed again, and a few
	// script intervals beyond.
	var next int
	if err := eventually(10*time.Second, func() (bool, string) {
		next = checkerdPidOrZero(r)
		return next != 0 && next != pid, "no new checkerd"
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		in, err := r.vk.Instance("VI_1")
		if err != nil {
			t.Fatal(err)
		}
		if in.GetEffectivePriority() != 160 || in.GetState().String() != "VRRP_STATE_MASTER" {
			t.Fatalf("after checkerd's SIGKILL: vrrpkit %s at %d, want MASTER at 160", in.GetState(), in.GetEffectivePriority())
		}
		time.Sleep(50 * time.Millisecond)
	}
	list := adverts(t, capture)
	n := 0
	for _, a := range list {
		if a.src == r.ha.IPv4() {
			n++
			if a.prio != 160 {
				t.Errorf("vrrpkit advertised priority %d at %v, want 160", a.prio, a.at)
			}
		}
		if a.src == r.hb.IPv4() {
			t.Errorf("keepalived advertised (priority %d) at %v: it took over", a.prio, a.at)
		}
	}
	if n < 10 {
		t.Errorf("only %d vrrpkit adverts captured", n)
	}
	t.Logf("checkerd %d killed, %d took over; %d adverts from vrrpkit, all at 160", pid, next, n)
}

// procStatus parses /proc/PID/status into key: value.
func procStatus(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// checkerdPidOrZero finds the process called checkerd in the rig's
// vrrpkit namespace.
func checkerdPidOrZero(r *trackRig) int {
	pids, err := netnsPids(r.ha)
	if err != nil {
		return 0
	}
	for _, pid := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "checkerd" {
			return pid
		}
	}
	return 0
}

func checkerdPid(t *testing.T, r *trackRig) int {
	t.Helper()
	var pid int
	if err := eventually(5*time.Second, func() (bool, string) {
		pid = checkerdPidOrZero(r)
		return pid != 0, "no checkerd process in " + r.ha.Netns()
	}); err != nil {
		t.Fatal(err)
	}
	return pid
}

// addTrackLink gives vrrpkit's host an interface trk0 to track (one end of
// a veth pair: this kernel has no dummy driver), up.
func addTrackLink(t *testing.T, r *trackRig) {
	t.Helper()
	r.ip(t, "link", "add", "trk0", "type", "veth", "peer", "name", "trk0p")
	r.ip(t, "link", "set", "trk0p", "up")
	r.ip(t, "link", "set", "trk0", "up")
}
