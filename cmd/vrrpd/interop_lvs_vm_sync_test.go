package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestLVSSyncDaemonVM is issue 8's lvs_sync_daemon in a real kernel: two
// directors, each a supervisor in its own network namespace inside one VM
// (IPVS, and so its sync daemon, is per namespace), joined by a veth pair,
// with one vrrp_instance between them that lvs_sync_daemon follows. The
// master's namespace must run a master sync daemon and the other a backup
// one; when the master's supervisor stops (SIGTERM), the other director
// becomes MASTER and its daemon master, and the stopped director's daemon
// is gone.
func TestLVSSyncDaemonVM(t *testing.T) {
	if bins.skip != "" {
		t.Skipf("interop: vrrpkit binaries: %s", bins.skip)
	}
	if bins.err != nil {
		t.Fatalf("interop: building vrrpkit: %v", bins.err)
	}
	for _, p := range []string{"ip", "ipvsadm"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("lvs sync vm: %s is not installed on the host", p)
		}
	}
	begin := time.Now()
	conf := func(prio int) []byte {
		return []byte(fmt.Sprintf(`
global_defs {
    lvs_sync_daemon eth0 VI_1 id 7
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        10.10.0.100/24
    }
}
`, prio))
	}
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "veth"},
		HostPrograms: []string{"ip", "ipvsadm"},
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": bins.supervisor},
		Files: map[string][]byte{
			"/etc/keepalived/d1.conf": conf(150),
			"/etc/keepalived/d2.conf": conf(100),
		},
	})
	vm.Sh(`
ip netns add d1; ip netns add d2
ip link add eth0 netns d1 type veth peer name eth0 netns d2
ip -n d1 addr add 10.10.0.1/24 dev eth0; ip -n d2 addr add 10.10.0.2/24 dev eth0
for n in d1 d2; do ip -n $n link set lo up; ip -n $n link set eth0 up; done
`)
	// exec keeps the shell's pid through ip netns exec, so the pid file
	// names the supervisor itself, for a SIGTERM rather than the kill of
	// the process group that stopping a vmlab.Proc is. busybox sh runs its own
	// ip applet unless given the path.
	start := func(n string) *vmlab.Proc {
		return vm.Start(vmlab.Cmd{Argv: []string{"/bin/sh", "-c",
			fmt.Sprintf("echo $$ > /run/%[1]s.pid; exec /usr/sbin/ip netns exec %[1]s /usr/local/sbin/supervisor -f /etc/keepalived/%[1]s.conf --run-dir /run/vk-%[1]s", n)}})
	}
	report := func(n string, p *vmlab.Proc) {
		t.Cleanup(func() {
			r := p.Stop()
			if t.Failed() && r != nil {
				t.Logf("%s: supervisor exit %d %s\nstdout:\n%s\nstderr:\n%s", n, r.Exit, r.Signal, r.Stdout, r.Stderr)
			}
		})
	}
	sup1 := start("d1")
	report("d1", sup1)
	sup2 := start("d2")
	report("d2", sup2)

	daemons := func(n string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, "ip", "netns", "exec", n, "ipvsadm", "-L", "--daemon")
		if err != nil || r.Exit != 0 {
			t.Fatalf("%s: ipvsadm -L --daemon: %v %v", n, err, r)
		}
		return strings.TrimSpace(string(r.Stdout))
	}
	hasVIP := func(n string) bool {
		t.Helper()
		return strings.Contains(vm.MustRun("ip", "-n", n, "-4", "addr", "show", "dev", "eth0"), "10.10.0.100/24")
	}
	master := "master sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
	backup := "backup sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
	waitFor := func(what string, within time.Duration, ok func() bool) time.Duration {
		t.Helper()
		s := time.Now()
		for !ok() {
			if time.Since(s) > within {
				t.Fatalf("%s: not within %v\nd1: %q, VIP %v\nd2: %q, VIP %v", what, within,
					daemons("d1"), hasVIP("d1"), daemons("d2"), hasVIP("d2"))
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(s)
	}

	// d1 (priority 150) becomes master after its down timer; d2 stays backup.
	d := waitFor("d1 master with a master sync daemon, d2 a backup one", 30*time.Second, func() bool {
		return hasVIP("d1") && daemons("d1") == master && daemons("d2") == backup
	})
	t.Logf("d1 master, its sync daemon master, d2's backup: %v after the supervisors started\nd1: %s\nd2: %s",
		d.Round(time.Millisecond), daemons("d1"), daemons("d2"))
	if hasVIP("d2") {
		t.Fatal("both directors hold the VIP")
	}

	// Stop d1's supervisor gracefully: it steps down (priority 0), stops
	// its sync daemon, and d2 takes over with a master daemon.
	pid := strings.TrimSpace(vm.MustRun("cat", "/run/d1.pid"))
	stopAt := time.Now()
	vm.MustRun("kill", "-TERM", pid)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := sup1.Wait(ctx)
	if err != nil {
		t.Fatalf("d1's supervisor did not exit after SIGTERM: %v", err)
	}
	if r.Exit != 0 {
		t.Errorf("d1's supervisor exited %d %s after SIGTERM\nstderr:\n%s", r.Exit, r.Signal, r.Stderr)
	}
	t.Logf("d1's supervisor exited %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	d = waitFor("d2 master with a master sync daemon", 10*time.Second, func() bool {
		return hasVIP("d2") && daemons("d2") == master
	})
	t.Logf("d2 master, its sync daemon master: %v after SIGTERM to d1\nd2: %s", time.Since(stopAt).Round(time.Millisecond), daemons("d2"))
	if got := daemons("d1"); got != "" {
		t.Errorf("d1 still runs a sync daemon after its supervisor stopped: %q", got)
	}
	if hasVIP("d1") {
		t.Error("d1 kept the VIP after its supervisor stopped")
	}
	_ = d
	t.Logf("whole test %v (boot %v)", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond))
}
