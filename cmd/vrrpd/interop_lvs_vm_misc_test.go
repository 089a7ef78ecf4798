package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestLVSVMMiscDynamic runs the supervisor against real IPVS in a qemu VM
// with a misc_dynamic MISC_CHECK (keepalived 2.2.7 check_misc.c): exit 7
// sets the destination's weight to 5; exit 2 to 0, which keeps it in the
// table (alive, at weight 0) but leaves the virtual server no live weight,
// so its quorum is lost and quorum_down runs (ipwrapper.c
// update_svr_wgt -> update_quorum_state: !weight_sum); exit 0 restores the
// configured weight 1 and quorum_up runs.
func TestLVSVMMiscDynamic(t *testing.T) {
	if bins.skip != "" {
		t.Skipf("interop: vrrpkit binaries: %s", bins.skip)
	}
	if bins.err != nil {
		t.Fatalf("interop: building vrrpkit: %v", bins.err)
	}
	if _, err := exec.LookPath("ipvsadm"); err != nil {
		t.Skip("lvs vm: ipvsadm is not installed on the host")
	}
	begin := time.Now()
	const conf = `
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum_up "/bin/sh -c 'echo up >> /tmp/quorum'"
    quorum_down "/bin/sh -c 'echo down >> /tmp/quorum'"
    real_server 10.0.1.1 80 {
        weight 1
        MISC_CHECK {
            misc_path "/bin/sh -c 'exit $(cat /tmp/status)'"
            misc_timeout 2
            misc_dynamic
        }
    }
}
`
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr"},
		HostPrograms: []string{"ipvsadm"},
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": bins.supervisor},
		Files:        map[string][]byte{"/etc/keepalived/keepalived.conf": []byte(conf)},
	})
	vm.Sh(`echo 7 > /tmp/status`) // /tmp is the guest's tmpfs, mounted over the initramfs
	sup := vm.Start(vmlab.Cmd{Argv: []string{"/usr/local/sbin/supervisor",
		"-f", "/etc/keepalived/keepalived.conf", "--run-dir", "/run/vk"}})
	t.Cleanup(func() {
		r := sup.Stop()
		if t.Failed() && r != nil {
			t.Logf("supervisor exit %d %s\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Signal, r.Stdout, r.Stderr)
		}
	})
	table := func() map[string]string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, "ipvsadm", "-Ln")
		if err != nil || r.Exit != 0 {
			t.Fatalf("ipvsadm -Ln: %v (exit %d) %s", err, r.Exit, r.Stderr)
		}
		_, rs := parseIPVSAdm(string(r.Stdout), "TCP", "192.0.2.100:80")
		return rs
	}
	waitFor := func(what string, within time.Duration, want map[string]string) {
		t.Helper()
		start := time.Now()
		var rs map[string]string
		for time.Since(start) < within {
			if rs = table(); equalMaps(rs, want) {
				t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not within %v: real servers %v, want %v\nipvsadm -Ln:\n%s\nthe script by hand:\n%s", what, within, rs, want,
			vm.MustRun("ipvsadm", "-Ln"), vm.Sh(`cat /tmp/status; /bin/sh -c 'exit $(cat /tmp/status)' || echo "exit $?"`))
	}
	quorum := func(want string) {
		t.Helper()
		start := time.Now()
		got := ""
		for time.Since(start) < 5*time.Second {
			got = strings.Join(strings.Fields(vm.Sh(`cat /tmp/quorum 2>/dev/null; true`)), " ")
			if got == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("quorum scripts wrote %q, want %q", got, want)
	}

	// The first check: bootstrap 1 s + warmup up to delay_loop.
	waitFor("exit 7: weight 5", 20*time.Second, map[string]string{"10.0.1.1:80": "Masq 5"})
	vm.Sh(`echo 2 > /tmp/status`)
	waitFor("exit 2: weight 0, still in the table", 5*time.Second, map[string]string{"10.0.1.1:80": "Masq 0"})
	quorum("down")
	vm.Sh(`echo 0 > /tmp/status`)
	waitFor("exit 0: the configured weight 1", 5*time.Second, map[string]string{"10.0.1.1:80": "Masq 1"})
	quorum("down up")
	t.Logf("whole test %v (boot %v)", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond))
}
