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
// configured weight 1 and quorum_up runs (it ran at start too); with
// omega, a stop runs quorum_down. keepalived 2.2.7 runs the same
// file first, in the same VM, as the oracle: both must give the same
// tables and scripts.
func TestLVSVMMiscDynamic(t *testing.T) {
	if bins.skip != "" {
		t.Skipf("interop: vrrpkit binaries: %s", bins.skip)
	}
	if bins.err != nil {
		t.Fatalf("interop: building vrrpkit: %v", bins.err)
	}
	progs := []string{"ipvsadm"}
	for _, p := range []string{"ipvsadm", "keepalived"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("lvs vm: %s is not installed on the host", p)
		}
	}
	progs = append(progs, "keepalived")
	begin := time.Now()
	const conf = `
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    omega
    quorum_up "/bin/sh -c 'echo up >> /tmp/quorum'"
    quorum_down "/bin/sh -c 'echo down >> /tmp/quorum'"
    real_server 10.0.1.1 80 {
        weight 1
        MISC_CHECK {
            misc_path "/bin/sh -c 'exit $(cat /tmp/status)'"
            misc_timeout 2
            misc_dynamic
            warmup 0
        }
    }
}
`
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr"},
		HostPrograms: progs,
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": bins.supervisor},
		Files:        map[string][]byte{"/etc/keepalived/keepalived.conf": []byte(conf)},
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
	type step struct {
		status string // what the script exits with
		what   string
		want   map[string]string
		quorum string // the quorum scripts' lines so far
	}
	steps := []step{
		// keepalived runs quorum_up at start: its quorum starts down
		// (set_quorum_states runs before any server is alive) and is
		// gained in init_service_vs.
		{"7", "exit 7: weight 5", map[string]string{"10.0.1.1:80": "Masq 5"}, "up"},
		{"2", "exit 2: weight 0, still in the table", map[string]string{"10.0.1.1:80": "Masq 0"}, "up down"},
		{"0", "exit 0: the configured weight 1", map[string]string{"10.0.1.1:80": "Masq 1"}, "up down up"},
	}
	run := func(impl string, argv []string, pid string) {
		t.Helper()
		// /tmp is the guest's tmpfs, mounted over the initramfs.
		vm.Sh(`ipvsadm -C; rm -f /tmp/quorum; echo 7 > /tmp/status`)
		p := vm.Start(vmlab.Cmd{Argv: argv})
		defer func() {
			r := p.Stop()
			if t.Failed() && r != nil {
				t.Logf("%s exit %d %s\nstdout:\n%s\nstderr:\n%s", impl, r.Exit, r.Signal, r.Stdout, r.Stderr)
			}
		}()
		for i, s := range steps {
			if i > 0 {
				vm.Sh(`echo ` + s.status + ` > /tmp/status`)
			}
			within := 5 * time.Second
			if i == 0 {
				within = 20 * time.Second // start, bootstrap, warmup up to delay_loop
			}
			start := time.Now()
			var rs map[string]string
			for rs = table(); !equalMaps(rs, s.want); rs = table() {
				if time.Since(start) > within {
					t.Fatalf("%s: %s: not within %v: real servers %v, want %v\nipvsadm -Ln:\n%s", impl, s.what, within, rs, s.want, vm.MustRun("ipvsadm", "-Ln"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			got := ""
			for time.Since(start) < within {
				if got = strings.Join(strings.Fields(vm.Sh(`cat /tmp/quorum 2>/dev/null; true`)), " "); got == s.quorum {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got != s.quorum {
				t.Fatalf("%s: %s: quorum scripts wrote %q, want %q", impl, s.what, got, s.quorum)
			}
			t.Logf("%s: %s after %v", impl, s.what, time.Since(start).Round(time.Millisecond))
		}
		// omega: a stop runs quorum_down once more (ipwrapper.c
		// clear_services -> update_vs_notifies(vs, stopping)).
		vm.Sh(`kill -TERM ` + pid)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("%s: after SIGTERM: %v", impl, err)
		}
		if got := strings.Join(strings.Fields(vm.Sh(`cat /tmp/quorum 2>/dev/null; true`)), " "); got != "up down up down" {
			t.Fatalf("%s: after the stop the quorum scripts wrote %q, want %q (omega)", impl, got, "up down up down")
		}
		t.Logf("%s: stopped, omega's quorum_down ran", impl)
	}
	run("keepalived", []string{"keepalived", "-n", "-l", "-D", "-C", "-f", "/etc/keepalived/keepalived.conf",
		"-p", "/run/ka.pid", "-c", "/run/ka-checkers.pid"}, "$(cat /run/ka.pid)")
	// keepalived's checker child must be gone too, or it would keep
	// running the script and editing the table.
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		left := strings.TrimSpace(vm.Sh(`for p in /proc/[0-9]*; do
  case "$(cat $p/comm 2>/dev/null)" in keepalived*) echo ${p#/proc/};; esac; done; true`))
		if left == "" {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("keepalived processes %q still running after it was killed", left)
		}
	}
	run("vrrpkit", []string{"/usr/local/sbin/supervisor", "-f", "/etc/keepalived/keepalived.conf", "--run-dir", "/run/vk"},
		`$(for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = supervisor ] && echo ${p#/proc/}; done)`)
	t.Logf("whole test %v (boot %v)", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond))
}
