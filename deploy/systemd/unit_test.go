package systemd_test

import (
	"bufio"
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
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
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
	// vrrpd writes net sysctls; /proc/sys must stay writable.
	if v := u["Service"]["ProtectKernelTunables"]; len(v) != 0 && v[0] != "no" {
		t.Errorf("ProtectKernelTunables = %q would stop vrrpd writing /proc/sys/net", v)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with the
// supervisor path pointed at an executable that exists (verify insists).
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "supervisor")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "vrrpkit.service")
	text := strings.ReplaceAll(systemd.Unit, "/usr/sbin/supervisor", stub)
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
