package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/kadump"
	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// TestInteropDump: keepalived and vrrpkit each run the same two instances
// (VRRPv2 with a password, VRRPv3 nopreempt at 0.5 s), each alone on its
// own segment so both are MASTER. SIGUSR1 and SIGUSR2, sent to the pid in
// each one's main pid file, make both write keepalived.data and
// keepalived.stats, and vrrpkit's files have keepalived's sections, and
// the same keys per instance in the same order (kadump.DiffData,
// DiffStats). vrrpctl dump and vrrpctl stats print the same text. The pid
// files hold the supervisor's and vrrpd's pids and are gone after exit.
func TestInteropDump(t *testing.T) {
	t.Parallel()
	testInteropDump(t, false, false)
}

// TestInteropDumpBackup: as TestInteropDump with each of the two BACKUP to
// a keepalived of priority 200 on its segment, so the BACKUP-only lines
// (Master router, Master priority, Master advert int) are compared too.
func TestInteropDumpBackup(t *testing.T) {
	t.Parallel()
	testInteropDump(t, true, false)
}

// TestInteropDumpFull: as TestInteropDump with VI_1 and VI_2 in a sync
// group and a third instance, unicast, tracking a vrrp_script: the
// sections keepalived adds for those (VRRP Sync groups, VRRP Scripts) and
// the unicast lines are compared too.
func TestInteropDumpFull(t *testing.T) {
	t.Parallel()
	testInteropDump(t, false, true)
}

// fullConf is TestInteropDumpFull's configuration for host h.
func fullConf(routerID string, h *netlab.Host) string {
	seg := h.Segment()
	base := conf(routerID,
		inst{name: "VI_1", vrid: 51, prio: 100, version: 2, interval: time.Second, authPass: "secret", vips: []netip.Addr{seg.VIP4(1)}},
		inst{name: "VI_2", vrid: 52, prio: 150, version: 3, interval: 500 * time.Millisecond, nopreempt: true,
			vips: []netip.Addr{seg.VIP4(2), seg.VIP4(3)}},
		inst{name: "VI_3", vrid: 53, prio: 120, version: 3, interval: time.Second, unicastSrc: h.IPv4(), unicastPeers: []netip.Addr{seg.VIP4(9)},
			vips: []netip.Addr{seg.VIP4(4)}})
	// track_script inside VI_3 (the last block), the script and the group
	// before the instances.
	base = strings.TrimSuffix(base, "}\n") + "  track_script {\n    chk\n  }\n}\n"
	head := "vrrp_script chk {\n  script \"/bin/true\"\n  interval 1\n  weight 10\n  rise 1\n  fall 1\n}\n" +
		"vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n}\n"
	i := strings.Index(base, "vrrp_instance")
	return strings.Replace(base[:i], "}\n", "  script_user root\n}\n", 1) + head + base[i:]
}

func testInteropDump(t *testing.T, backup, full bool) {
	lab := newLab(t)
	ha := lab.Host("ra", lab.Segment("lana"))
	hb := lab.Host("rb", lab.Segment("lanb"))
	text := func(routerID string, h *netlab.Host, prio1, prio2 int) string {
		if full {
			return fullConf(routerID, h)
		}
		seg := h.Segment()
		return conf(routerID,
			inst{name: "VI_1", vrid: 51, prio: prio1, version: 2, interval: time.Second, authPass: "secret", vips: []netip.Addr{seg.VIP4(1)}},
			inst{name: "VI_2", vrid: 52, prio: prio2, version: 3, interval: 500 * time.Millisecond, nopreempt: true,
				vips: []netip.Addr{seg.VIP4(2), seg.VIP4(3)}})
	}
	names := []string{"VI_1", "VI_2"}
	if full {
		names = append(names, "VI_3")
	}
	want := "MASTER"
	if backup {
		// The masters first: with nopreempt they would not take over.
		want = "BACKUP"
		for _, h := range []*netlab.Host{lab.Host("rc", ha.Segment()), lab.Host("rd", hb.Segment())} {
			peer := start(t, lab, keepalived, h, text(h.Name(), h, 200, 200))
			for _, name := range []string{"VI_1", "VI_2"} {
				waitState(t, peer, name, "MASTER", masterDownInterval(200, time.Second)+15*time.Second)
			}
		}
	}

	// keepalived, with its dump files in a directory of this test's
	// ($TMPDIR, keepalived's set_tmp_dir), not in the /tmp other tests and
	// keepalived instances share.
	kaDir := filepath.Join(lab.Dir(), "ka-tmp")
	vkDir := filepath.Join(lab.Dir(), "vk-tmp")
	for _, d := range []string{kaDir, vkDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kaConf := filepath.Join(lab.Dir(), "rb-dump-keepalived.conf")
	if err := os.WriteFile(kaConf, []byte(text("rb", hb, 100, 150)), 0o644); err != nil {
		t.Fatal(err)
	}
	kaPid := filepath.Join(kaDir, "keepalived.pid")
	ka := &keepalivedRouter{h: hb, p: hb.Start("env", "TMPDIR="+kaDir, "keepalived", "-n", "-l", "-D", "-G", "--vrrp",
		"-f", kaConf, "-p", kaPid, "-r", filepath.Join(kaDir, "vrrp.pid"), "-c", filepath.Join(kaDir, "checkers.pid"))}

	// vrrpkit, with the pid files where keepalived keeps its own (-p, -r)
	// and the dump files in the test's directory.
	vkConf := filepath.Join(lab.Dir(), "ra-dump-vrrpkit.conf")
	if err := os.WriteFile(vkConf, []byte(text("ra", ha, 100, 150)), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir, err := os.MkdirTemp("", "vkrun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	vkPid, vrrpdPid := filepath.Join(vkDir, "keepalived.pid"), filepath.Join(vkDir, "vrrp.pid")
	vkData, vkStats := filepath.Join(vkDir, "keepalived.data"), filepath.Join(vkDir, "keepalived.stats")
	vk := &vrrpkitRouter{h: ha, runDir: runDir}
	vk.p = ha.Start(bins.supervisor, "-f", vkConf, "--run-dir", runDir, "-p", vkPid, "-r", vrrpdPid,
		"--data-file", vkData, "--stats-file", vkStats)
	t.Cleanup(func() {
		vk.mu.Lock()
		if vk.conn != nil {
			vk.conn.Close()
		}
		vk.mu.Unlock()
	})

	for _, r := range []router{ka, vk} {
		for _, name := range names {
			waitState(t, r, name, want, masterDownInterval(100, time.Second)+15*time.Second)
		}
	}
	// Let each send (or, as backup, hear) a few adverts, so that the
	// counters are not all 0 and a backup knows its master.
	for _, name := range []string{"VI_1", "VI_2"} {
		if err := eventually(10*time.Second, func() (bool, string) {
			in, err := vk.Instance(name)
			n := in.GetCounters().GetAdvertsSent()
			if backup {
				n = in.GetCounters().GetAdvertsReceived()
			}
			return err == nil && n >= 2 && in.GetMasterAddr() != "", fmt.Sprintf("%s: master %q, counters %v (%v)", name, in.GetMasterAddr(), in.GetCounters(), err)
		}); err != nil {
			t.Fatal(err)
		}
	}

	// The pid files: the supervisor's (written once SIGUSR1 is caught) and
	// vrrpd's, which is the process named vrrpd.
	readPid := func(file string) int {
		var pid int
		if err := eventually(10*time.Second, func() (bool, string) {
			b, err := os.ReadFile(file)
			if err != nil {
				return false, err.Error()
			}
			pid, err = strconv.Atoi(strings.TrimSuffix(string(b), "\n"))
			return err == nil && strings.HasSuffix(string(b), "\n"), fmt.Sprintf("%s holds %q", file, b)
		}); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	if pid := readPid(vkPid); pid != vk.p.Pid() {
		t.Errorf("%s: pid %d, the supervisor is %d", vkPid, pid, vk.p.Pid())
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", readPid(vrrpdPid))); err != nil || string(comm) != "vrrpd\n" {
		t.Errorf("%s: the process is %q (%v), want vrrpd", vrrpdPid, comm, err)
	}

	// Both files, from both, on the signals sent to the main pid.
	dump := func(pidFile string, sig syscall.Signal, file string) string {
		t.Helper()
		if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := syscall.Kill(readPid(pidFile), sig); err != nil {
			t.Fatal(err)
		}
		var b []byte
		if err := eventually(10*time.Second, func() (bool, string) {
			var err error
			b, err = os.ReadFile(file)
			// Written whole and renamed into place (both do), so a file
			// that exists is complete.
			return err == nil && len(b) > 0, fmt.Sprintf("%s after %v: %v", file, sig, err)
		}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600 as keepalived's", file, fi.Mode(), err)
		}
		return string(b)
	}
	kaDataText := dump(kaPid, syscall.SIGUSR1, filepath.Join(kaDir, "keepalived.data"))
	kaStatsText := dump(kaPid, syscall.SIGUSR2, filepath.Join(kaDir, "keepalived.stats"))
	vkDataText := dump(vkPid, syscall.SIGUSR1, vkData)
	vkStatsText := dump(vkPid, syscall.SIGUSR2, vkStats)
	for _, d := range kadump.DiffData(vkDataText, kaDataText) {
		t.Error("keepalived.data: " + d)
	}
	for _, d := range kadump.DiffStats(vkStatsText, kaStatsText) {
		t.Error("keepalived.stats: " + d)
	}
	group := ""
	if full {
		group = "   Sync group = G1\n"
	}
	lines := []string{" VRRP Instance = VI_1\n   VRRP Version = 2\n" + group + "   State = " + want + "\n", " VRRP Instance = VI_2\n   VRRP Version = 3\n" + group + "   State = " + want + "\n",
		"   Password = secret\n", "   Preempt = disabled\n", " Name = eth0\n", "   Using src_ip = " + ha.IPv4().String() + "\n"}
	if full {
		lines = append(lines, " VRRP Sync Group = G1, MASTER\n", "   Type = Unicast\n   Address = "+ha.IPv4().String()+"\n",
			"   Using src_ip = "+ha.IPv4().String()+" (from configuration)\n", "   Tracked scripts :\n     chk weight 10\n",
			" VRRP Script = chk\n", "   Status = GOOD\n")
		// The sections keepalived prints only for what is configured:
		// the same entries, with the same keys.
		g, w := kadump.ParseSkeleton(vkDataText), kadump.ParseSkeleton(kaDataText)
		for _, header := range []string{"VRRP Sync groups", "VRRP Scripts"} {
			gs, ws := g.Section(header), w.Section(header)
			if gs == nil || ws == nil || len(gs.Entries) != len(ws.Entries) {
				t.Errorf("%s: vrrpkit %v, keepalived %v", header, gs, ws)
				continue
			}
			for i := range gs.Entries {
				if d := kadump.SameKeys(gs.Entries[i].Keys, ws.Entries[i].Keys); d != "" || gs.Entries[i].Raw != ws.Entries[i].Raw {
					t.Errorf("%s %q (keepalived %q): %s", header, gs.Entries[i].Raw, ws.Entries[i].Raw, d)
				}
			}
		}
	}
	if backup {
		// The master's address, priority and interval, from its adverts.
		lines = append(lines, "   Master priority = 200\n   Master advert int = 0.50 sec\n", "   Master advert interval = 500 milli-sec\n")
	}
	for _, line := range lines {
		if !strings.Contains(vkDataText, line) {
			t.Errorf("vrrpkit's keepalived.data has no %q", line)
		}
	}
	if t.Failed() {
		t.Logf("keepalived's keepalived.data:\n%s\nvrrpkit's:\n%s", kaDataText, vkDataText)
		t.Logf("keepalived's keepalived.stats:\n%s\nvrrpkit's:\n%s", kaStatsText, vkStatsText)
	}
	if !backup && (!strings.Contains(vkStatsText, "VRRP Instance: VI_1\n  Advertisements:\n    Received: 0\n    Sent: ") ||
		strings.Contains(vkStatsText, "VRRP Instance: VI_1\n  Advertisements:\n    Received: 0\n    Sent: 0\n") ||
		!strings.Contains(vkStatsText, "  Became master: 1\n")) {
		t.Errorf("vrrpkit's keepalived.stats: want VI_1 alone, having sent adverts, master once:\n%s", vkStatsText)
	}
	if backup && (strings.Contains(vkStatsText, "VRRP Instance: VI_1\n  Advertisements:\n    Received: 0\n") ||
		!strings.Contains(vkStatsText, "VRRP Instance: VI_1\n  Advertisements:\n    Received: ") ||
		!strings.Contains(vkStatsText, "    Sent: 0\n  Became master: 0\n")) {
		t.Errorf("vrrpkit's keepalived.stats: want VI_1 having received adverts, sent none, never master:\n%s", vkStatsText)
	}

	// vrrpctl dump / vrrpctl stats (Supervisor.Dump): the same text but for
	// what changes by the second (times, counters), so the same structure.
	vrrpctl := buildVrrpctl(t)
	for _, c := range []struct {
		cmd, file string
		diff      func(got, want string) []string
	}{{"dump", vkDataText, kadump.DiffData}, {"stats", vkStatsText, kadump.DiffStats}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, vrrpctl, c.cmd, "--run-dir", runDir).Output()
		cancel()
		if err != nil {
			t.Fatalf("vrrpctl %s: %v", c.cmd, err)
		}
		if d := c.diff(string(out), c.file); len(d) > 0 {
			t.Errorf("vrrpctl %s differs from the file the signal wrote: %q", c.cmd, d)
		}
		if !strings.HasPrefix(string(out), strings.SplitN(c.file, "\n", 2)[0]+"\n") {
			t.Errorf("vrrpctl %s starts %q", c.cmd, strings.SplitN(string(out), "\n", 2)[0])
		}
	}

	// At exit the supervisor removes its pid files, as keepalived does.
	if err := vk.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := vk.p.Wait(30 * time.Second); err != nil {
		t.Fatalf("supervisor after SIGTERM: %v", err)
	}
	for _, f := range []string{vkPid, vrrpdPid} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s after the supervisor exited: %v, want it removed", f, err)
		}
	}
}
