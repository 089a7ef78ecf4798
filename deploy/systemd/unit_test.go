package systemd_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpkit/vrrpkit/deploy/systemd"
)

// parseUnit reads a unit file into section -> key -> values (a key may repeat).
func parseUnit(t *testing.T, text string) map[string]map[string][]string {
	t.Helper()
	units := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			units[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("vrrpkit.service:%d: not a key=value line in a section: %q", n, line)
			}
			units[section][k] = append(units[section][k], v)
		}
	}
	return units
}

func TestUnitSettings(t *testing.T) {
	u := parseUnit(t, systemd.Unit)
	want := []struct{ section, key, value string }{
		{"Unit", "After", "network-online.target"},
		{"Unit", "Conflicts", "keepalived.service"},
		{"Service", "Type", "notify"},
		{"Service", "ExecStartPre", "/usr/sbin/supervisor -t -f /etc/keepalived/keepalived.conf"},
		{"Service", "ExecStart", "/usr/sbin/supervisor -f /etc/keepalived/keepalived.conf --run-dir /run/vrrpkit"},
		{"Service", "ExecReload", "/usr/bin/vrrpctl --run-dir /run/vrrpkit reload"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ReadWritePaths", "/run /tmp /var/tmp /var/log"},
		{"Service", "PrivateTmp", "no"},
		{"Service", "ProtectHome", "read-only"},
		// Scripts run under the unit: no_new_privs would take sudo and
		// file-capability helpers from those run as a non-root script_user.
		{"Service", "NoNewPrivileges", "no"},
		{"Service", "LockPersonality", "yes"},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET"},
		{"Service", "Restart", "on-failure"},
		{"Service", "RuntimeDirectory", "vrrpkit"},
		{"Service", "RuntimeDirectoryMode", "0750"},
		{"Service", "LimitRTPRIO", "10"}, // vrrpd's SCHED_FIFO timer thread (vrrpd.SystemClock)
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, w := range want {
		got := u[w.section][w.key]
		if len(got) != 1 || got[0] != w.value {
			t.Errorf("[%s] %s = %q, want %q", w.section, w.key, got, w.value)
		}
	}
	if len(u["Service"]["WatchdogSec"]) != 1 {
		t.Error("[Service] WatchdogSec is not set once")
	}
	// Every capability a child needs must be in the supervisor's bounding set,
	// and none of the broad ones that nothing needs.
	caps := map[string]bool{}
	for _, v := range u["Service"]["CapabilityBoundingSet"] {
		for _, c := range strings.Fields(v) {
			caps[c] = true
		}
	}
	for _, c := range []string{"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL"} {
		if !caps[c] {
			t.Errorf("CapabilityBoundingSet lacks %s", c)
		}
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE"} {
		if caps[c] {
			t.Errorf("CapabilityBoundingSet has %s", c)
		}
	}
	// vrrpd's timer thread is SCHED_FIFO.
	if v := u["Service"]["RestrictRealtime"]; len(v) != 0 && v[0] != "no" {
		t.Errorf("RestrictRealtime = %q would stop vrrpd's SCHED_FIFO timer thread", v)
	}
	// vrrpd writes net sysctls; /proc/sys must stay writable.
	if v := u["Service"]["ProtectKernelTunables"]; len(v) != 0 && v[0] != "no" {
		t.Errorf("ProtectKernelTunables = %q would stop vrrpd writing /proc/sys/net", v)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with the
// programs it runs pointed at executables that exist (verify insists).
func TestUnitVerifies(t *testing.T) {
	dir := t.TempDir()
	text := systemd.Unit
	for _, prog := range []string{"/usr/sbin/supervisor", "/usr/bin/vrrpctl"} {
		stub := filepath.Join(dir, filepath.Base(prog))
		if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, prog, stub)
	}
	verify(t, dir, text)
}

// verify writes text as vrrpkit.service in dir and runs systemd-analyze
// verify on it: it must exit 0 and say nothing about the unit.
func verify(t *testing.T, dir, text string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd; .ci/run installs it)")
	}
	unit := filepath.Join(dir, "vrrpkit.service")
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	// verify exits 0 on warnings such as an unknown key; any line about our
	// unit is a finding.
	var findings []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "vrrpkit.service") {
			findings = append(findings, line)
		}
	}
	if err != nil || len(findings) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstall runs `make install DESTDIR=...` (which builds) and checks
// the tree: the commands in /usr/sbin and /usr/bin, the children in
// /usr/lib/vrrpkit as the supervisor's own binary under their names (it is
// vrrpd and checkerd by argv[0]), the unit in /lib/systemd/system; then
// verifies the installed unit against the installed binaries.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: make install builds every binary")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not in PATH for make")
	}
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "root")
	// BIN_DIR outside the tree: the test leaves the checkout as it was.
	// BINARIES: only the two that install ships (vrrpd and checkerd are
	// the supervisor's binary), so the build takes half as long.
	cmd := exec.Command(mk, "-C", "../..", "install", "DESTDIR="+dest, "BIN_DIR="+filepath.Join(tmp, "bin"), "BINARIES=supervisor vrrpctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	var files []string
	if err := filepath.Walk(dest, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			files = append(files, fmt.Sprintf("%s %v", strings.TrimPrefix(path, dest), fi.Mode()))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/lib/systemd/system/vrrpkit.service -rw-r--r--",
		"/usr/bin/vrrpctl -rwxr-xr-x",
		"/usr/lib/vrrpkit/checkerd Lrwxrwxrwx",
		"/usr/lib/vrrpkit/vrrpd Lrwxrwxrwx",
		"/usr/sbin/supervisor -rwxr-xr-x",
	}
	if strings.Join(files, "\n") != strings.Join(want, "\n") {
		t.Errorf("installed:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	for _, child := range []string{"vrrpd", "checkerd"} {
		link := filepath.Join(dest, "usr/lib/vrrpkit", child)
		if target, err := os.Readlink(link); err != nil || target != "../../sbin/supervisor" {
			t.Errorf("%s -> %q (%v), want ../../sbin/supervisor", link, target, err)
		}
		// Run through the link, the supervisor's binary is the child.
		out, err := exec.Command(link, "-h").CombinedOutput()
		if !strings.Contains(string(out), child) || strings.Contains(string(out), "usage: supervisor") {
			t.Errorf("%s -h: %v\n%s\nwant %s's usage", link, err, out, child)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "lib/systemd/system/vrrpkit.service")); err != nil || string(b) != systemd.Unit {
		t.Errorf("installed unit differs from deploy/systemd/vrrpkit.service (%v)", err)
	}
	text := strings.ReplaceAll(systemd.Unit, "/usr/sbin/supervisor", filepath.Join(dest, "usr/sbin/supervisor"))
	text = strings.ReplaceAll(text, "/usr/bin/vrrpctl", filepath.Join(dest, "usr/bin/vrrpctl"))
	verify(t, tmp, text)
}
