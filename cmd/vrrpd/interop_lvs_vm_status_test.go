package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestLVSVMIpvsStatus: in a VM with real IPVS, `vrrpctl ipvs` prints what
// `ipvsadm -Ln` prints, line for line, each destination vrrpkit knows
// followed by its health ("up 3s", "down 2s: TCP_CHECK: ..."), and a
// service vrrpkit does not own exactly as ipvsadm shows it.
func TestLVSVMIpvsStatus(t *testing.T) {
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
	vrrpctl := buildVrrpctl(t)
	begin := time.Now()
	const conf = `
virtual_server 192.0.2.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.1.1 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 10.0.2.1 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr", "veth"},
		HostPrograms: []string{"ip", "ipvsadm"},
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": bins.supervisor, "/usr/local/sbin/vrrpctl": vrrpctl},
		Files:        map[string][]byte{"/etc/keepalived/keepalived.conf": []byte(conf)},
		Sysctls:      map[string]string{"net.ipv4.ip_forward": "1"},
	})
	// rs1 serves, rs2 does not (connection refused).
	vm.Sh(`
ns() { ip netns add "$1"; ip link add "$2" type veth peer name eth0 netns "$1"
       ip addr add "$3" dev "$2"; ip link set "$2" up
       ip -n "$1" link set lo up; ip -n "$1" addr add "$4" dev eth0; ip -n "$1" link set eth0 up
       ip -n "$1" route add default via "${3%/*}"; }
ns rs1 v1 10.0.1.254/24 10.0.1.1/24
ns rs2 v2 10.0.2.254/24 10.0.2.1/24
mkdir -p /srv/rs1
ipvsadm -A -u 198.51.100.7:53 -s rr -p 300
ipvsadm -a -u 198.51.100.7:53 -r 203.0.113.5:53 -m -w 2
`)
	rs := vm.Start(vmlab.Cmd{Argv: []string{"ip", "netns", "exec", "rs1", "httpd", "-f", "-p", "80", "-h", "/srv/rs1"}})
	t.Cleanup(func() { rs.Stop() })
	sup := vm.Start(vmlab.Cmd{Argv: []string{"/usr/local/sbin/supervisor", "-f", "/etc/keepalived/keepalived.conf", "--run-dir", "/run/vk"}})
	t.Cleanup(func() {
		r := sup.Stop()
		if t.Failed() && r != nil {
			t.Logf("supervisor exit %d %s\nstderr:\n%s", r.Exit, r.Signal, r.Stderr)
		}
	})

	run := func(argv ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, argv...)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(argv, " "), err)
		}
		if r.Exit != 0 {
			return fmt.Sprintf("exit %d: %s%s", r.Exit, r.Stdout, r.Stderr)
		}
		return string(r.Stdout)
	}
	// Both real servers checked: rs1 up, rs2 down (kept at weight 0).
	upRE := regexp.MustCompile(`(?m)^  -> 10\.0\.1\.1:80 +Masq +3 .* up \d+s$`)
	downRE := regexp.MustCompile(`(?m)^  -> 10\.0\.2\.1:80 +Masq +0 .* down \d+s: TCP_CHECK: TCP connect to 10\.0\.2\.1:80 failed: (connect: )?connection refused$`)
	var ours string
	err := eventually(20*time.Second, func() (bool, string) {
		ours = run("/usr/local/sbin/vrrpctl", "--run-dir", "/run/vk", "ipvs")
		return upRE.MatchString(ours) && downRE.MatchString(ours), "vrrpctl ipvs:\n" + ours
	})
	if err != nil {
		t.Fatal(err)
	}
	theirs := run("ipvsadm", "-Ln")
	ol, tl := strings.Split(strings.TrimSuffix(ours, "\n"), "\n"), strings.Split(strings.TrimSuffix(theirs, "\n"), "\n")
	if len(ol) != len(tl) {
		t.Fatalf("vrrpctl ipvs has %d lines, ipvsadm -Ln %d\nvrrpctl ipvs:\n%s\nipvsadm -Ln:\n%s", len(ol), len(tl), ours, theirs)
	}
	health := regexp.MustCompile(`^ (up|down) \d+s(: .*)?$`)
	annotated := 0
	for i := range tl {
		o, th := ol[i], tl[i]
		switch {
		case o == th:
		case strings.HasPrefix(o, th) && strings.HasPrefix(th, "  -> ") && health.MatchString(o[len(th):]):
			annotated++
		default:
			t.Errorf("line %d:\nvrrpctl ipvs: %q\nipvsadm -Ln:  %q", i+1, o, th)
		}
	}
	if annotated != 2 {
		t.Errorf("%d destinations carry a health column, want 2 (vrrpkit's)", annotated)
	}
	if !strings.Contains(theirs, "UDP  198.51.100.7:53 rr persistent 300") {
		t.Errorf("the foreign service is not in ipvsadm -Ln:\n%s", theirs)
	}
	if js := run("/usr/local/sbin/vrrpctl", "--run-dir", "/run/vk", "ipvs", "--json"); !strings.Contains(js, `"virtual_server": "192.0.2.100:80/TCP"`) ||
		!strings.Contains(js, `"inact_conn": 0`) {
		t.Errorf("vrrpctl ipvs --json:\n%s", js)
	}
	t.Logf("vrrpctl ipvs matches ipvsadm -Ln:\n%s", ours)
	t.Logf("whole test %v (boot %v)", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond))
}
