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

// TestLVSVM runs the supervisor (vrrpd and checkerd with it) against real
// IPVS in a qemu VM: a virtual_server with two TCP_CHECKed real servers
// must appear in the kernel's table, follow the real servers' health,
// survive a checkerd crash untouched, and come back after someone deletes
// it behind vrrpd's back (vrrpd reconciles its IPVS state periodically).
func TestLVSVM(t *testing.T) {
	if bins.skip != "" {
		t.Skipf("interop: vrrpkit binaries: %s", bins.skip)
	}
	if bins.err != nil {
		t.Fatalf("interop: building vrrpkit: %v", bins.err)
	}
	for _, p := range []string{"ip", "ipvsadm"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("lvs vm: %s is not installed on the host", p)
		}
	}
	begin := time.Now()
	const conf = `
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.1.1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.2.1 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr", "veth"},
		HostPrograms: []string{"ip", "ipvsadm"},
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": bins.supervisor},
		Files:        map[string][]byte{"/etc/keepalived/keepalived.conf": []byte(conf)},
		Sysctls:      map[string]string{"net.ipv4.ip_forward": "1"},
	})
	vm.Sh(`
ip link add eth0 type veth peer name eth0p
ip addr add 192.0.2.1/24 dev eth0
ip link set eth0p up; ip link set eth0 up
ns() { ip netns add "$1"; ip link add "$2" type veth peer name eth0 netns "$1"
       ip addr add "$3" dev "$2"; ip link set "$2" up
       ip -n "$1" link set lo up; ip -n "$1" addr add "$4" dev eth0; ip -n "$1" link set eth0 up
       ip -n "$1" route add default via "${3%/*}"; }
ns rs1 v1 10.0.1.254/24 10.0.1.1/24
ns rs2 v2 10.0.2.254/24 10.0.2.1/24
mkdir -p /srv/rs1 /srv/rs2
`)
	startRS := func(n int) *vmlab.Proc {
		return vm.Start(vmlab.Cmd{Argv: []string{"ip", "netns", "exec", fmt.Sprintf("rs%d", n),
			"httpd", "-f", "-p", "80", "-h", fmt.Sprintf("/srv/rs%d", n)}})
	}
	rsA := startRS(1)
	rsB := startRS(2)
	t.Cleanup(func() { rsA.Stop(); rsB.Stop() })

	sup := vm.Start(vmlab.Cmd{Argv: []string{"/usr/local/sbin/supervisor",
		"-f", "/etc/keepalived/keepalived.conf", "--run-dir", "/run/vk"}})
	t.Cleanup(func() {
		r := sup.Stop()
		if t.Failed() && r != nil {
			t.Logf("supervisor exit %d %s\nstdout:\n%s\nstderr:\n%s", r.Exit, r.Signal, r.Stdout, r.Stderr)
		}
	})

	table := func() (svc string, rs map[string]string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, "ipvsadm", "-Ln")
		if err != nil {
			t.Fatalf("ipvsadm -Ln: %v", err)
		}
		if r.Exit != 0 {
			t.Fatalf("ipvsadm -Ln exited %d: %s", r.Exit, r.Stderr)
		}
		return parseIPVSAdm(string(r.Stdout), "TCP", "192.0.2.100:80")
	}
	both := map[string]string{"10.0.1.1:80": "Masq 1", "10.0.2.1:80": "Masq 2"}
	onlyB := map[string]string{"10.0.2.1:80": "Masq 2"}
	waitFor := func(what string, within time.Duration, want map[string]string) time.Duration {
		t.Helper()
		start := time.Now()
		var svc string
		var rs map[string]string
		for {
			svc, rs = table()
			if svc == "rr" && equalMaps(rs, want) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not within %v: service scheduler %q real servers %v, want rr %v\nipvsadm -Ln:\n%s",
			what, within, svc, rs, want, vm.MustRun("ipvsadm", "-Ln"))
		return 0
	}

	d := waitFor("service with both real servers", 20*time.Second, both)
	t.Logf("service programmed %v after the supervisor started", d.Round(time.Millisecond))

	// Without alpha a real server starts up and its first check decides at
	// once (check_data.c: retry_it starts at retry); only once a check has
	// passed does a failure wait for the retries. The first check runs
	// BOOTSTRAP_DELAY (1s) plus a warmup of up to delay_loop after checkerd
	// has the configuration: hold the table steady well past that.
	steady := time.Now()
	for time.Since(steady) < 3*time.Second {
		if svc, rs := table(); svc != "rr" || !equalMaps(rs, both) {
			t.Fatalf("%v after the service appeared: service %q real servers %v, want rr %v steady",
				time.Since(steady).Round(time.Millisecond), svc, rs, both)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// keepalived's check_tcp (tcp_epilog): after a success, a failed
	// connect is retried after delay_before_retry, and only when the retry
	// fails too is the real server removed; the next check starts
	// delay_loop after the last.
	const delayBeforeRetry = time.Second
	stopAt := time.Now()
	rsA.Stop()
	stopTook := time.Since(stopAt)
	bound := time.Second + 1*time.Second + 1*time.Second + 3*time.Second // delay_loop + connect_timeout + retry×delay_before_retry + margin
	d = waitFor("real server A down", bound, onlyB)
	if d+stopTook < delayBeforeRetry {
		t.Errorf("real server A removed %v after its stop was asked: sooner than delay_before_retry %v, so the retry was skipped",
			(d + stopTook).Round(time.Millisecond), delayBeforeRetry)
	}
	t.Logf("real server A removed %v after its stop was asked (the stop took %v; bound %v)",
		(d + stopTook).Round(time.Millisecond), stopTook.Round(time.Millisecond), bound)

	rsA = startRS(1)
	d = waitFor("real server A back", 5*time.Second, both)
	t.Logf("real server A restored %v after it restarted", d.Round(time.Millisecond))

	// checkerd crashes: vrrpd keeps the table as it is while the supervisor
	// restarts checkerd.
	pidOf := func(comm string) string {
		return strings.TrimSpace(vm.Sh(`for p in /proc/[0-9]*; do
  [ "$(cat $p/comm 2>/dev/null)" = ` + comm + ` ] && echo ${p#/proc/}; done; true`))
	}
	pid := pidOf("checkerd")
	if pid == "" || strings.Contains(pid, "\n") {
		t.Fatalf("want one checkerd process, found pids %q", pid)
	}
	vm.MustRun("kill", "-9", pid)
	killed := time.Now()
	for time.Since(killed) < 3*time.Second {
		if svc, rs := table(); svc != "rr" || !equalMaps(rs, both) {
			t.Fatalf("%v after kill -9 checkerd: service %q real servers %v, want rr %v unchanged",
				time.Since(killed).Round(time.Millisecond), svc, rs, both)
		}
		time.Sleep(100 * time.Millisecond)
	}
	now := pidOf("checkerd")
	for deadline := time.Now().Add(10 * time.Second); now == "" || now == pid; now = pidOf("checkerd") {
		if time.Now().After(deadline) {
			t.Fatalf("checkerd not restarted within 10s of kill -9 (pid %s, now %q)", pid, now)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("table unchanged for 3s after kill -9 checkerd (pid %s); checkerd now %q", pid, now)

	vm.MustRun("ipvsadm", "-D", "-t", "192.0.2.100:80")
	if svc, _ := table(); svc != "" {
		t.Fatalf("ipvsadm -D left the service (scheduler %q)", svc)
	}
	d = waitFor("service back after ipvsadm -D", 13*time.Second, both)
	t.Logf("service restored %v after ipvsadm -D", d.Round(time.Millisecond))
	t.Logf("whole test %v (boot %v)", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond))
}

// parseIPVSAdm finds the service proto addr in `ipvsadm -Ln` output and
// returns its scheduler ("" when absent) and its real servers, each as
// "Forward Weight".
func parseIPVSAdm(out, proto, addr string) (string, map[string]string) {
	sched := ""
	rs := map[string]string{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == proto && f[1] == addr:
			in, sched = true, f[2]
		case in && len(f) >= 4 && f[0] == "->":
			rs[f[1]] = f[2] + " " + f[3]
		default:
			in = false
		}
	}
	return sched, rs
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
