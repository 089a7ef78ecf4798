package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/rundir"
)

// accessOutput is a bytes.Buffer a process may write while the test reads.
type accessOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *accessOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *accessOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInteropStatusGroup: the supervisor with --status-group serves
// control.sock 0660 root:GROUP. Run as each user, vrrpctl shows that a
// member of the group may use status, peers and watch but not reload (PERMISSION_DENIED
// naming root and what the group may use), a user outside it cannot connect
// (EACCES, the hint naming the group and the option), root may do both;
// and with the file mode opened up, the supervisor itself refuses the
// outsider at accept and logs it.
func TestInteropStatusGroup(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	for _, tool := range []string{"groupadd", "useradd", "userdel", "groupdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	vrrpctl := buildVrrpctl(t)
	suffix := fmt.Sprintf("%05x", rand.Uint32()&0xfffff)
	group, member, outsider := "vkgrp"+suffix, "vkmem"+suffix, "vkout"+suffix
	admin := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	admin("groupadd", "--system", group)
	t.Cleanup(func() { _ = exec.Command("groupdel", group).Run() })
	for _, u := range []struct{ name, groups string }{{member, group}, {outsider, ""}} {
		args := []string{"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
		if u.groups != "" {
			args = append(args, "-G", u.groups)
		}
		admin(append(args, u.name)...)
		// Registered before the group's: cleanups run last first, and
		// groupdel refuses a group that is still some user's.
		t.Cleanup(func() { _ = exec.Command("userdel", u.name).Run() })
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}

	h := lab.Host("ra", lab.Segment("lan"))
	file := filepath.Join(lab.Dir(), "ra-access.conf")
	if err := os.WriteFile(file, []byte(conf("ra", inst{vrid: 61, prio: 100, version: 2, interval: time.Second,
		vips: []netip.Addr{netip.MustParseAddr("192.0.2.61")}})), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir, err := os.MkdirTemp("", "vkrun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	p := h.Start(bins.supervisor, "-f", file, "--run-dir", runDir, "--status-group", group)
	sock := rundir.Dir(runDir).Control()

	// run runs vrrpctl as who (nil: root) with the groups a login gives.
	type result struct {
		code           int
		stdout, stderr string
	}
	command := func(ctx context.Context, who *user.User, args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.CommandContext(ctx, vrrpctl, append([]string{"--run-dir", runDir}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		if who != nil {
			uid, _ := strconv.ParseUint(who.Uid, 10, 32)
			gid, _ := strconv.ParseUint(who.Gid, 10, 32)
			ids, err := who.GroupIds()
			if err != nil {
				t.Fatal(err)
			}
			var groups []uint32
			for _, id := range ids {
				n, _ := strconv.ParseUint(id, 10, 32)
				groups = append(groups, uint32(n))
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
		}
		return cmd
	}
	run := func(who *user.User, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := command(ctx, who, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("vrrpctl %s: %v", strings.Join(args, " "), err)
		}
		name := "root"
		if who != nil {
			name = who.Username
		}
		t.Logf("as %s: vrrpctl %s: exit %d\n%s%s", name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
		return r
	}
	if err := eventually(30*time.Second, func() (bool, string) {
		r := run(nil, "status")
		return r.code == 0 && strings.Contains(r.stdout, "VI_1"), r.stderr
	}); err != nil {
		t.Fatalf("root's vrrpctl status: %v\n%s", err, p.Log())
	}

	var st syscall.Stat_t
	if err := syscall.Stat(sock, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || strconv.Itoa(int(st.Gid)) != g.Gid || st.Mode&0o777 != 0o660 {
		t.Errorf("control.sock is %d:%d %o, want 0:%s 660", st.Uid, st.Gid, st.Mode&0o777, g.Gid)
	}

	// Others may traverse the run directory to reach control.sock, not list it.
	if fi, err := os.Stat(runDir); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o751 {
		t.Errorf("run directory mode %v, want 0751", fi.Mode().Perm())
	}
	mem, err := user.Lookup(member)
	if err != nil {
		t.Fatal(err)
	}
	out, err := user.Lookup(outsider)
	if err != nil {
		t.Fatal(err)
	}
	if r := run(mem, "status"); r.code != 0 || !strings.Contains(r.stdout, "VI_1") {
		t.Errorf("member's status: exit %d, want 0 and VI_1:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(mem, "status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"VI_1"`) {
		t.Errorf("member's status --json: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(mem, "peers"); r.code != 0 || !strings.Contains(r.stdout, "VI_1") {
		t.Errorf("member's peers: exit %d, want 0 and VI_1:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// watch is a stream: the member sees root's reloads.
	wctx, wcancel := context.WithCancel(context.Background())
	t.Cleanup(wcancel) // a failure below must not leave vrrpctl watch running
	watch := command(wctx, mem, "watch")
	var watched accessOutput
	watch.Stdout, watch.Stderr = &watched, &watched
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	if err := eventually(30*time.Second, func() (bool, string) {
		// Reloads until one arrives: the stream may not be open yet.
		run(nil, "reload")
		return strings.Contains(watched.String(), "reload"), watched.String()
	}); err != nil {
		t.Errorf("member's watch saw no reload: %v", err)
	}
	wcancel()
	_ = watch.Wait()
	wantDenied := fmt.Sprintf("PermissionDenied: Reload needs root; uid %s may use Ipvs, Status, Watch as a member of group %s", mem.Uid, group)
	if r := run(mem, "reload"); r.code != 1 || !strings.Contains(r.stderr, wantDenied) || !strings.Contains(r.stderr, "sudo vrrpctl reload") {
		t.Errorf("member's reload: exit %d, want 1 with %q and the sudo hint:\n%s", r.code, wantDenied, r.stderr)
	}
	for _, args := range [][]string{{"status"}, {"reload"}} {
		r := run(out, args...)
		for _, want := range []string{"cannot reach the supervisor at " + sock + ": connect: permission denied",
			"members of group " + group + " (the supervisor's --status-group)", "sudo vrrpctl " + args[0]} {
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("outsider's %s: exit %d, want 1 with %q:\n%s", args[0], r.code, want, r.stderr)
			}
		}
	}
	if r := run(nil, "reload"); r.code != 0 {
		t.Errorf("root's reload: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The file mode keeps the outsider out; the accept check is the second
	// wall. Open the first and the second must hold, with a log line.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	r := run(out, "--timeout", "1s", "status")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "refusing this user (neither root nor in its --status-group") {
		t.Errorf("outsider through a 0666 socket: exit %d, want 1, no status and the refusal hint:\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantLog := fmt.Sprintf("uid %s is neither root nor a member of group %s (gid %s), which may use Ipvs, Status, Watch", out.Uid, group, g.Gid)
	if err := p.WaitLog(wantLog, 10*time.Second); err != nil {
		t.Errorf("no refusal at accept in the supervisor's log: %v", err)
	}
	if r := run(mem, "status"); r.code != 0 {
		t.Errorf("member's status after a refusal: exit %d:\n%s", r.code, r.stderr)
	}
}
