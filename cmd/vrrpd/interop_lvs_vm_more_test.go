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

// lvsMoreConf is TestLVSVMMore's configuration. Every real server is
// 10.0.x.y:port in a netns of the VM, a busybox httpd on that port, so
// that one server dies without the others: rs1 and rs2 (the main virtual
// server, kept for the crash cases), rs3 with one httpd per port for the
// sorry_server (81, 82), inhibit_on_failure (83, 84), fwmark and group
// (84) cases, rs6 with IPv6 real servers (80, 81).
const lvsMoreConf = `
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
virtual_server 192.0.2.101 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server 10.0.3.1 89
    real_server 10.0.3.1 81 {
        weight 2
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.0.3.1 82 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 192.0.2.102 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 10.0.3.1 83 {
        weight 4
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.0.3.1 84 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server fwmark 5 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    real_server 10.0.3.1 84 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 2001:db8::100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server fd00:6::1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server fd00:6::1 81 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server_group G {
    192.0.2.110 80
    192.0.2.120-121 80
}
virtual_server group G {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.3.1 84 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// TestLVSVMMore runs the supervisor against real IPVS in one qemu VM for
// the LVS cases TestLVSVM leaves out, each a subtest observed with
// ipvsadm -Ln: sorry_server, inhibit_on_failure, fwmark, IPv6 and
// virtual_server_group services, how fast a dead real server leaves, and
// that a SIGKILL of vrrpd or of checkerd (each restarted by the
// supervisor) changes nothing in the table, watched continuously. The
// subtests run in order on one VM and depend on each other's end state.
func TestLVSVMMore(t *testing.T) {
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
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "veth"},
		HostPrograms: []string{"ip", "ipvsadm"},
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": bins.supervisor},
		Files:        map[string][]byte{"/etc/keepalived/keepalived.conf": []byte(lvsMoreConf)},
		Sysctls:      map[string]string{"net.ipv4.ip_forward": "1"},
	})
	// nodad: a tentative IPv6 address would fail the first checks.
	vm.Sh(`
ip link add eth0 type veth peer name eth0p
ip addr add 192.0.2.1/24 dev eth0
ip link set eth0p up; ip link set eth0 up
ns() { ip netns add "$1"; ip link add "$2" type veth peer name eth0 netns "$1"
       ip addr add "$3" dev "$2" $5; ip link set "$2" up
       ip -n "$1" link set lo up; ip -n "$1" addr add "$4" dev eth0 $5; ip -n "$1" link set eth0 up; }
ns rs1 v1 10.0.1.254/24 10.0.1.1/24; ip -n rs1 route add default via 10.0.1.254
ns rs2 v2 10.0.2.254/24 10.0.2.1/24; ip -n rs2 route add default via 10.0.2.254
ns rs3 v3 10.0.3.254/24 10.0.3.1/24; ip -n rs3 route add default via 10.0.3.254
ns rs6 v6 fd00:6::fe/64 fd00:6::1/64 nodad; ip -n rs6 route add default via fd00:6::fe
mkdir -p /srv
`)
	type server struct{ ns, port string }
	running := map[server]*vmlab.Proc{}
	start := func(ns, port string) {
		s := server{ns, port}
		running[s] = vm.Start(vmlab.Cmd{Argv: []string{"ip", "netns", "exec", ns,
			"httpd", "-f", "-p", port, "-h", "/srv"}})
	}
	stop := func(ns, port string) time.Duration {
		s := server{ns, port}
		at := time.Now()
		running[s].Stop()
		delete(running, s)
		return time.Since(at)
	}
	t.Cleanup(func() {
		for _, p := range running {
			p.Stop()
		}
	})
	start("rs1", "80")
	start("rs2", "80")
	start("rs3", "83")
	start("rs3", "84")
	start("rs6", "80")
	start("rs6", "81")
	// 10.0.3.1:81 and :82 start dead: the sorry server's case.

	// The log goes to a file so that a subtest can read what vrrpd did
	// while it runs; vrrpd and checkerd write to the supervisor's stderr.
	const logFile = "/tmp/supervisor.log"
	sup := vm.Start(vmlab.Cmd{Argv: []string{"/bin/sh", "-c",
		"exec /usr/local/sbin/supervisor -f /etc/keepalived/keepalived.conf --run-dir /run/vk >" + logFile + " 2>&1"}})
	supStart := time.Now()
	t.Cleanup(func() {
		sup.Stop()
		if t.Failed() {
			t.Logf("supervisor log:\n%s", vm.MustRun("cat", logFile))
		}
	})
	// run runs argv in the VM for the (sub)test t and returns its stdout.
	run := func(t *testing.T, argv ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, argv...)
		if err != nil {
			t.Fatalf("%q: %v", argv, err)
		}
		if r.Exit != 0 {
			t.Fatalf("%q exited %d: %s", argv, r.Exit, r.Stderr)
		}
		return string(r.Stdout)
	}
	ipvsadm := func(t *testing.T) string { t.Helper(); return run(t, "ipvsadm", "-Ln") }
	// service is one service of the table as "scheduler" and its real
	// servers as "Forward Weight"; want nil: the service is absent.
	type service struct {
		proto, addr, sched string
		rs                 map[string]string
	}
	matches := func(out string, want ...service) (bool, string) {
		for _, w := range want {
			sched, rs := parseIPVSAdm(out, w.proto, w.addr)
			if w.rs == nil {
				if sched != "" {
					return false, fmt.Sprintf("%s %s present, want it absent", w.proto, w.addr)
				}
				continue
			}
			if sched != w.sched || !equalMaps(rs, w.rs) {
				return false, fmt.Sprintf("%s %s: scheduler %q real servers %v, want %s %v", w.proto, w.addr, sched, rs, w.sched, w.rs)
			}
		}
		return true, ""
	}
	// waitFor polls the table until it matches want; every table seen on
	// the way must satisfy keep (nil: anything goes).
	waitFor := func(t *testing.T, what string, within time.Duration, keep func(out string) string, want ...service) time.Duration {
		t.Helper()
		begin := time.Now()
		for {
			out := ipvsadm(t)
			if keep != nil {
				if why := keep(out); why != "" {
					t.Fatalf("%s: after %v: %s\nipvsadm -Ln:\n%s", what, time.Since(begin).Round(time.Millisecond), why, out)
				}
			}
			ok, why := matches(out, want...)
			if ok {
				return time.Since(begin)
			}
			if time.Since(begin) > within {
				t.Fatalf("%s: not within %v: %s\nipvsadm -Ln:\n%s", what, within, why, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rs := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	mainBoth := service{"TCP", "192.0.2.100:80", "rr", rs("10.0.1.1:80", "Masq 1", "10.0.2.1:80", "Masq 2")}
	mainOnlyA := service{"TCP", "192.0.2.100:80", "rr", rs("10.0.1.1:80", "Masq 1")}
	inhibitBoth := service{"TCP", "192.0.2.102:80", "wrr", rs("10.0.3.1:83", "Masq 4", "10.0.3.1:84", "Masq 1")}
	// The checks of a TCP_CHECK with retry 1, delay_before_retry 1: a
	// server that passed is removed after its first failure, a retry
	// delay_before_retry later and that retry's failure (a dead port in a
	// netns refuses at once, so connect_timeout does not count), the
	// first failure coming up to delay_loop after the death. The bound
	// adds connect_timeout, in case, and 3 s for TCG on a loaded machine.
	const (
		delayLoop        = time.Second
		delayBeforeRetry = time.Second
		connectTimeout   = time.Second
		detectBound      = delayLoop + 1*delayBeforeRetry + connectTimeout + 3*time.Second
	)
	var figures []string
	figure := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		figures = append(figures, s)
		t.Log(s)
	}

	t.Run("programmed", func(t *testing.T) {
		waitFor(t, "every service with its live real servers", 30*time.Second, nil,
			mainBoth, inhibitBoth,
			service{"FWM", "5", "rr", rs("10.0.3.1:84", "Masq 1")},
			service{"TCP", "[2001:db8::100]:80", "rr", rs("[fd00:6::1]:80", "Masq 1", "[fd00:6::1]:81", "Masq 1")},
			service{"TCP", "192.0.2.110:80", "rr", rs("10.0.3.1:84", "Masq 1")},
			service{"TCP", "192.0.2.120:80", "rr", rs("10.0.3.1:84", "Masq 1")},
			service{"TCP", "192.0.2.121:80", "rr", rs("10.0.3.1:84", "Masq 1")},
			service{"TCP", "192.0.2.111:80", "", nil},
			service{"TCP", "192.0.2.122:80", "", nil},
		)
		figure("all services programmed %v after the supervisor started", time.Since(supStart).Round(time.Millisecond))
	})

	t.Run("sorry_server", func(t *testing.T) {
		// Both real servers are dead from the start: the first checks
		// fail and the sorry server (weight 1) replaces the pool
		// (ipwrapper.c perform_quorum_state).
		sorryOnly := service{"TCP", "192.0.2.101:80", "rr", rs("10.0.3.1:89", "Masq 1")}
		waitFor(t, "only the sorry server", 15*time.Second, nil, sorryOnly)
		start("rs3", "82")
		back := time.Now()
		waitFor(t, "one real server back, the sorry server gone", 10*time.Second, nil,
			service{"TCP", "192.0.2.101:80", "rr", rs("10.0.3.1:82", "Masq 3")})
		figure("sorry_server: real server 10.0.3.1:82 in and the sorry server out %v after its httpd started", time.Since(back).Round(time.Millisecond))
	})

	t.Run("inhibit_on_failure", func(t *testing.T) {
		present := func(out string) string {
			if _, r := parseIPVSAdm(out, "TCP", "192.0.2.102:80"); r["10.0.3.1:83"] == "" {
				return "inhibited real server 10.0.3.1:83 left the service"
			}
			return ""
		}
		took := stop("rs3", "83")
		d := waitFor(t, "dead server at weight 0", detectBound, present,
			service{"TCP", "192.0.2.102:80", "wrr", rs("10.0.3.1:83", "Masq 0", "10.0.3.1:84", "Masq 1")})
		figure("inhibit_on_failure: 10.0.3.1:83 at weight 0 %v after its stop was asked (bound %v)", (d + took).Round(time.Millisecond), detectBound)
		start("rs3", "83")
		d = waitFor(t, "back with its weight", 10*time.Second, present, inhibitBoth)
		figure("inhibit_on_failure: 10.0.3.1:83 back at weight 4 %v after its httpd started", d.Round(time.Millisecond))
	})

	t.Run("ipv6_real_server_down", func(t *testing.T) {
		// The IPv6 checks are real: a dead IPv6 server leaves.
		took := stop("rs6", "81")
		d := waitFor(t, "IPv6 real server [fd00:6::1]:81 removed", detectBound, nil,
			service{"TCP", "[2001:db8::100]:80", "rr", rs("[fd00:6::1]:80", "Masq 1")})
		figure("IPv6: [fd00:6::1]:81 removed %v after its stop was asked (bound %v)", (d + took).Round(time.Millisecond), detectBound)
	})

	t.Run("detection_bound", func(t *testing.T) {
		took := stop("rs2", "80")
		d := waitFor(t, "real server 10.0.2.1:80 removed", detectBound, nil, mainOnlyA)
		if d+took < delayBeforeRetry {
			t.Errorf("removed %v after its stop was asked: sooner than delay_before_retry %v, so the retry was skipped",
				(d + took).Round(time.Millisecond), delayBeforeRetry)
		}
		figure("detection: 10.0.2.1:80 removed %v after its stop was asked (stop took %v; bound delay_loop %v + retry 1 x delay_before_retry %v + connect_timeout %v + 3s TCG margin = %v)",
			(d + took).Round(time.Millisecond), took.Round(time.Millisecond), delayLoop, delayBeforeRetry, connectTimeout, detectBound)
		// 10.0.2.1:80 stays dead: the crash cases run with a down server.
	})

	// The normalised table: services and real servers with forwarding and
	// weight, without the connection counters.
	normal := func(out string) string {
		var b strings.Builder
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "->" {
				f = f[:4]
			}
			b.WriteString(strings.Join(f, " ") + "\n")
		}
		return b.String()
	}
	pids := func(t *testing.T, name string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, "pidof", name) // exits 1 when there is none
		if err != nil {
			t.Fatalf("pidof %s: %v", name, err)
		}
		return strings.TrimSpace(string(r.Stdout))
	}
	// watchScript watches the table in the VM until /tmp/watch.stop
	// exists, recording the uptime of every look into watch.times (or
	// watch.ktimes) and every table that differs from the one before it
	// (the first included) into watch.changes (watch.kchanges). Each round
	// takes one ipvsadm -Ln snapshot, the only process it starts, then
	// reads the kernel's /proc/net/ip_vs 4 times 50 ms apart with shell
	// builtins alone (read, [, echo, printf; usleep is a NOFORK applet):
	// under TCG an ipvsadm run takes a few hundred ms, so the kernel's own
	// listing is what sees a short flap. Watching from the host would cost
	// a serial round trip per look.
	const watchScript = `prev=; kprev=
while [ ! -e /tmp/watch.stop ]; do
  read u _ </proc/uptime
  cur=$(/usr/sbin/ipvsadm -Ln)
  echo "$u" >>/tmp/watch.times
  [ "$cur" = "$prev" ] || printf '@ %s\n%s\n' "$u" "$cur" >>/tmp/watch.changes
  prev=$cur
  i=0
  while [ $i -lt 4 ]; do
    read u _ </proc/uptime
    k=
    while read -r l; do k="$k
$l"; done </proc/net/ip_vs
    echo "$u" >>/tmp/watch.ktimes
    [ "$k" = "$kprev" ] || printf '@ %s%s\n' "$u" "$k" >>/tmp/watch.kchanges
    kprev=$k
    i=$((i + 1))
    usleep 50000
  done
done`
	uptime := func(t *testing.T, out string) float64 {
		t.Helper()
		var u float64
		if _, err := fmt.Sscanf(strings.TrimSpace(out), "%f", &u); err != nil {
			t.Fatalf("uptime %q: %v", out, err)
		}
		return u
	}
	// crash SIGKILLs the child name while the table is watched in the VM,
	// from 1 s before the kill until settle after the supervisor's new
	// process appeared: no snapshot may differ from the one before, and
	// nothing may be logged as changed in IPVS. If not nil, prepare runs
	// just before the kill and restarted once the new process is there,
	// with the log's offset at the kill.
	crash := func(t *testing.T, name string, settle time.Duration, prepare func(), restarted func(logOff int)) {
		waitFor(t, "the table with 10.0.2.1:80 down", 10*time.Second, nil, mainOnlyA, inhibitBoth)
		want := normal(ipvsadm(t))
		old := pids(t, name)
		if old == "" || strings.Contains(old, " ") {
			t.Fatalf("want one %s process, found pids %q", name, old)
		}
		off := len(run(t, "cat", logFile))
		run(t, "rm", "-f", "/tmp/watch.stop", "/tmp/watch.times", "/tmp/watch.changes", "/tmp/watch.ktimes", "/tmp/watch.kchanges")
		w := vm.Start(vmlab.Cmd{Argv: []string{"/bin/sh", "-c", watchScript}})
		defer w.Stop()
		count := func() int {
			n := strings.TrimSpace(run(t, "sh", "-c", "cat /tmp/watch.times 2>/dev/null | wc -l"))
			var c int
			fmt.Sscanf(n, "%d", &c)
			return c
		}
		for deadline := time.Now().Add(30 * time.Second); count() < 3; {
			if time.Now().After(deadline) {
				t.Fatal("the watcher took no 3 snapshots within 30s")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if prepare != nil {
			prepare()
		}
		killedUp := uptime(t, run(t, "sh", "-c", "cut -d' ' -f1 /proc/uptime; kill -9 "+old))
		killed := time.Now()
		var newPid string
		var restartedAfter time.Duration
		for {
			p := pids(t, name)
			if newPid == "" && p != "" && p != old {
				newPid, restartedAfter = p, time.Since(killed)
				if restarted != nil {
					restarted(off)
				}
			}
			if newPid != "" && p != newPid {
				t.Fatalf("%s restarted as pid %s, then pid %q: it does not stay up", name, newPid, p)
			}
			if newPid == "" && time.Since(killed) > 20*time.Second {
				t.Fatalf("%s not restarted within 20s of its kill", name)
			}
			if newPid != "" && time.Since(killed) > restartedAfter+settle {
				break
			}
			time.Sleep(250 * time.Millisecond) // every poll costs the VM's one CPU a process
		}
		endUp := uptime(t, run(t, "sh", "-c", "cut -d' ' -f1 /proc/uptime; touch /tmp/watch.stop"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := w.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the watcher did not stop: %v", err)
		}
		// looks checks that the looks recorded in timesFile cover the kill
		// and the restart, that every table in changesFile is want, and
		// returns how many looks there were, how many before the kill,
		// their mean and longest interval.
		looks := func(what, timesFile, changesFile, want string) (n, before int, mean, gap float64) {
			var times []float64
			for _, l := range strings.Fields(run(t, "cat", timesFile)) {
				times = append(times, uptime(t, l))
			}
			if len(times) < 2 {
				t.Fatalf("%s: %d looks", what, len(times))
			}
			for i, u := range times {
				if u < killedUp {
					before++
				}
				if i > 0 {
					gap = max(gap, u-times[i-1])
				}
			}
			first, last := times[0], times[len(times)-1]
			if before == 0 || last < killedUp+restartedAfter.Seconds()+settle.Seconds()-1 {
				t.Fatalf("%s: the looks (uptime %.2f to %.2f, %d before the kill at %.2f) do not cover the kill and the restart", what, first, last, before, killedUp)
			}
			for _, c := range strings.Split(run(t, "cat", changesFile), "@ ")[1:] {
				at, table, _ := strings.Cut(c, "\n")
				if got := normal(table); got != want {
					t.Fatalf("%s at uptime %s (the kill of %s at %.2f): the table changed\nwant:\n%s\ngot:\n%s", what, at, name, killedUp, want, got)
				}
			}
			return len(times), before, 1000 * (last - first) / float64(len(times)-1), 1000 * gap
		}
		n, before, mean, gap := looks("ipvsadm -Ln", "/tmp/watch.times", "/tmp/watch.changes", want)
		kwant := ""
		if c := strings.Split(run(t, "cat", "/tmp/watch.kchanges"), "@ "); len(c) > 1 {
			_, first, _ := strings.Cut(c[1], "\n")
			kwant = normal(first)
		}
		kn, kbefore, kmean, kgap := looks("/proc/net/ip_vs", "/tmp/watch.ktimes", "/tmp/watch.kchanges", kwant)
		figure("SIGKILL %s (pid %s): table unchanged in %d ipvsadm -Ln snapshots (%d before the kill; every %.0f ms, longest gap %.0f ms) and %d reads of /proc/net/ip_vs (%d before; every %.0f ms, longest gap %.0f ms) in the %.1fs from the kill; the supervisor restarted it (pid %s) %v after the kill, watched %v more",
			name, old, n, before, mean, gap, kn, kbefore, kmean, kgap, endUp-killedUp, newPid, restartedAfter.Round(time.Millisecond), settle)
		log := run(t, "cat", logFile)[off:]
		for _, l := range strings.Split(log, "\n") {
			// Adopting a service changes vrrpd's ownership, not the kernel.
			if strings.Contains(l, "IPVS changed") && !strings.Contains(l, "adopt-service") {
				t.Fatalf("IPVS changed after the kill of %s: %s\nlog since the kill:\n%s", name, l, log)
			}
		}
		t.Logf("the log since the kill:\n%s", log)
	}
	// vrrpd: the restarted one waits for checkerd's health snapshot up to
	// DefaultLVSHealthWait (5 s) before touching IPVS: watch past that
	// (here the snapshot usually comes before the configuration).
	t.Run("sigkill_vrrpd", func(t *testing.T) { crash(t, "vrrpd", 6*time.Second, nil, nil) })
	// The same with checkerd stalled (SIGSTOP) across the restart, so that
	// the new vrrpd has its configuration long before checkerd's health
	// snapshot: it must wait for it (lvs.go) instead of re-adding the
	// down 10.0.2.1:80, which it starts by counting as up.
	t.Run("sigkill_vrrpd_checkerd_stalled", func(t *testing.T) {
		var stalled string
		crash(t, "vrrpd", 4*time.Second, func() {
			stalled = pids(t, "checkerd")
			run(t, "kill", "-STOP", stalled)
		}, func(off int) {
			defer run(t, "kill", "-CONT", stalled)
			const waiting = "waiting for checkerd's health snapshot"
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(run(t, "cat", logFile)[off:], waiting); {
				if time.Now().After(deadline) {
					t.Errorf("the new vrrpd did not log %q within 10s", waiting)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			figure("checkerd (pid %s) stalled: the new vrrpd waits for its health snapshot; SIGCONT", stalled)
		})
	})
	// checkerd: the new one is configured, runs its first checks after
	// BOOTSTRAP_DELAY (1 s) and up to delay_loop, then every delay_loop.
	t.Run("sigkill_checkerd", func(t *testing.T) { crash(t, "checkerd", 4*time.Second, nil, nil) })

	// A reload that changes one real server's weight (issue 9): vrrpd
	// edits that one destination and nothing else in the table moves.
	// SIGHUP goes to every process of the binary, as keepalived users send
	// it (killall -HUP keepalived): the children must ignore it.
	t.Run("reload_one_weight", func(t *testing.T) {
		const from, to = "    real_server 10.0.1.1 80 {\n        weight 1\n", "    real_server 10.0.1.1 80 {\n        weight 7\n"
		if !strings.Contains(lvsMoreConf, from) {
			t.Fatal("the configuration changed: no weight 1 for 10.0.1.1:80")
		}
		// A table that has held for longer than delay_loop: no check in
		// flight is about to change it (when this subtest runs alone, the
		// dead servers' first checks are).
		var before string
		for deadline, since := time.Now().Add(20*time.Second), time.Now(); ; time.Sleep(250 * time.Millisecond) {
			out := ipvsadm(t)
			if out != before {
				before, since = out, time.Now()
			}
			if time.Since(since) > delayLoop+delayBeforeRetry+500*time.Millisecond {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the IPVS table did not settle within 20s:\n%s", out)
			}
		}
		off := len(run(t, "cat", logFile))
		vm.Sh("cat > /etc/keepalived/keepalived.conf <<'VKEOF'\n" + strings.Replace(lvsMoreConf, from, to, 1) + "VKEOF\n" +
			"kill -HUP $(pidof supervisor)\n")
		var after string
		waitFor(t, "the new weight", 20*time.Second, nil, service{"TCP", "192.0.2.100:80", "rr", func() map[string]string {
			_, m := parseIPVSAdm(before, "TCP", "192.0.2.100:80")
			m["10.0.1.1:80"] = "Masq 7"
			return m
		}()})
		after = ipvsadm(t)
		// Every line but that destination's is as it was.
		bl, al := strings.Split(before, "\n"), strings.Split(after, "\n")
		if len(bl) != len(al) {
			t.Fatalf("the table changed shape on reload:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		for i := range bl {
			if bl[i] != al[i] && !strings.Contains(al[i], "10.0.1.1:80") {
				t.Errorf("line %d changed on reload: %q -> %q", i, bl[i], al[i])
			}
		}
		var changes []string
		for _, l := range strings.Split(run(t, "cat", logFile)[off:], "\n") {
			if strings.Contains(l, "IPVS changed") {
				changes = append(changes, l)
			}
		}
		if len(changes) != 1 || !strings.Contains(changes[0], "edit-dest") || !strings.Contains(changes[0], "10.0.1.1:80") {
			t.Errorf("IPVS changes on reload, want one edit-dest of 10.0.1.1:80:\n%s\nlog since the reload:\n%s", strings.Join(changes, "\n"), run(t, "cat", logFile)[off:])
		}
		figure("reload changing one weight: IPVS changes %d (%s)", len(changes), strings.Join(changes, "; "))
	})

	t.Logf("whole test %v (boot %v); figures:\n%s", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond), strings.Join(figures, "\n"))
}
