package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/rundir"
)

// TestSignum: --signum prints keepalived's numbers; when keepalived is
// installed, it is asked too and must agree.
func TestSignum(t *testing.T) {
	want := map[string]string{"STOP": "15", "RELOAD": "1", "DATA": "10", "STATS": "12"}
	_, kaErr := exec.LookPath("keepalived")
	for name, num := range want {
		var out, errb bytes.Buffer
		if rc := run([]string{"--signum=" + name}, &out, &errb); rc != 0 || out.String() != num+"\n" {
			t.Errorf("--signum=%s: rc %d, %q (stderr %q), want 0, %q", name, rc, out.String(), errb.String(), num+"\n")
		}
		if kaErr == nil {
			ka, err := exec.Command("keepalived", "--signum="+name).Output()
			if err != nil || string(ka) != out.String() {
				t.Errorf("keepalived --signum=%s: %q (%v), vrrpkit %q", name, ka, err, out.String())
			}
		}
	}
	for _, name := range []string{"FOO", "data", "JSON", "STATS_CLEAR"} {
		var out, errb bytes.Buffer
		if rc := run([]string{"--signum=" + name}, &out, &errb); rc != 1 || out.Len() != 0 || !strings.Contains(errb.String(), name) {
			t.Errorf("--signum=%s: rc %d, stdout %q, stderr %q; want 1, nothing, a message naming it", name, rc, out.String(), errb.String())
		}
	}
}

// TestPidFileDefaults: keepalived's pid files only for the default run
// directory; a path on the command line always.
func TestPidFileDefaults(t *testing.T) {
	o, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.runDir != rundir.Default || o.pidFile != "/run/keepalived.pid" || o.vrrpPidFile != "/run/vrrp.pid" || o.checkersPidFile != "/run/checkers.pid" {
		t.Errorf("defaults: run dir %q, pid files %q %q %q", o.runDir, o.pidFile, o.vrrpPidFile, o.checkersPidFile)
	}
	o, err = parseFlags([]string{"--run-dir", "/tmp/x", "-r", "/tmp/v.pid"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.pidFile != "" || o.vrrpPidFile != "/tmp/v.pid" || o.checkersPidFile != "" {
		t.Errorf("--run-dir /tmp/x -r /tmp/v.pid: pid files %q %q %q, want only vrrpd's", o.pidFile, o.vrrpPidFile, o.checkersPidFile)
	}
	o, err = parseFlags([]string{"--pid=/tmp/k.pid", "--checkers_pid", "/tmp/c.pid"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.pidFile != "/tmp/k.pid" || o.vrrpPidFile != "/run/vrrp.pid" || o.checkersPidFile != "/tmp/c.pid" {
		t.Errorf("--pid --checkers_pid: %q %q %q", o.pidFile, o.vrrpPidFile, o.checkersPidFile)
	}
}

// TestDumpFilePlantedLink: a symbolic link planted at the dump file's path
// is replaced by the file; what it pointed to is untouched. The file is
// 0600, as keepalived's.
func TestDumpFilePlantedLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keepalived.data")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := writeDumpFile(path, "dump\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a regular file 0600", path, fi.Mode())
	}
	if b, _ := os.ReadFile(path); string(b) != "dump\n" {
		t.Errorf("dump file %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestPidFile: "PID\n", 0644, and a planted link is refused (O_NOFOLLOW),
// as keepalived's pidfile_write.
func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.pid")
	if err := writePidFile(path, 1234); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "1234\n" || fi.Mode().Perm()&^0o644 != 0 || fi.Mode().Perm()&0o600 != 0o600 {
		t.Errorf("pid file %q mode %v", b, fi.Mode())
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pid")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := writePidFile(link, 1); err == nil {
		t.Error("a pid file through a symbolic link was written")
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	removePidFile(path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("pid file not removed: %v", err)
	}
}
