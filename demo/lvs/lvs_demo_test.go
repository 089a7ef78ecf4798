// Package lvsdemo is make demo's LVS act (demo/lvs.sh runs it): vrrpkit's
// supervisor programs real IPVS in a throwaway qemu VM (pkg/vmlab; the
// host's kernel lacks ip_vs or must not be touched), a client in a netns
// of the VM fetches the virtual server's page again and again, one real
// server dies, leaves the table and comes back. It is a test only so that
// it can use pkg/vmlab; it skips unless VRRPKIT_DEMO=1.
package lvsdemo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

const demoConf = `vrrp_instance VI_1 {
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
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`

func say(format string, args ...any) {
	fmt.Printf("\n\033[1m== %s\033[0m\n", fmt.Sprintf(format, args...))
}

func TestDemoLVS(t *testing.T) {
	if os.Getenv("VRRPKIT_DEMO") != "1" {
		t.Skip("make demo's LVS act: run by demo/lvs.sh (VRRPKIT_DEMO=1)")
	}
	for _, p := range []string{"ip", "ipvsadm"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("the LVS act needs %s on the host, to copy into the VM (apt-get install iproute2 ipvsadm)", p)
		}
	}
	sup := os.Getenv("VRRPKIT_SUPERVISOR") // make build's static bin/supervisor
	if sup == "" {
		sup = vmlab.BuildGo(t, "github.com/vrrpkit/vrrpkit/cmd/supervisor")
	}

	say("LVS: booting a qemu VM with the real IPVS (Debian's kernel with its ip_vs modules; this host's kernel has no IPVS)")
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs", "ip_vs_rr", "veth"},
		HostPrograms: []string{"ip", "ipvsadm"},
		Binaries:     map[string]string{"/usr/local/sbin/supervisor": sup},
		Files: map[string][]byte{
			"/etc/keepalived/keepalived.conf": []byte(demoConf),
			"/srv/rs1/index.html":             []byte("hello from rs1 (10.0.1.1)\n"),
			"/srv/rs2/index.html":             []byte("hello from rs2 (10.0.2.1)\n"),
		},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
	})
	fmt.Printf("booted %s in %v\n", vm.Hello.Kernel, vm.BootTime.Round(time.Millisecond))

	say("building the site: a client netns, the director (the VM itself), two real servers rs1 and rs2 (busybox httpd)")
	vm.Sh(`
ip netns add client
ip link add eth0 type veth peer name eth0 netns client
ip addr add 192.0.2.1/24 dev eth0; ip link set eth0 up
ip -n client link set lo up; ip -n client addr add 192.0.2.2/24 dev eth0; ip -n client link set eth0 up
for n in 1 2; do
  ip netns add rs$n
  ip link add v$n type veth peer name eth0 netns rs$n
  ip addr add 10.0.$n.254/24 dev v$n; ip link set v$n up
  ip -n rs$n link set lo up; ip -n rs$n addr add 10.0.$n.1/24 dev eth0; ip -n rs$n link set eth0 up
  ip -n rs$n route add default via 10.0.$n.254
done
`)
	fmt.Print(`  client 192.0.2.2 --- eth0 192.0.2.1, VIP 192.0.2.100 (vrrpkit, VRRP master, IPVS NAT)
                          |-- v1 --- rs1 10.0.1.1:80
                          |-- v2 --- rs2 10.0.2.1:80
`)
	rs := map[int]*vmlab.Proc{}
	startRS := func(n int) {
		rs[n] = vm.Start(vmlab.Cmd{Argv: []string{"ip", "netns", "exec", fmt.Sprintf("rs%d", n),
			"httpd", "-f", "-p", "80", "-h", fmt.Sprintf("/srv/rs%d", n)}})
	}
	startRS(1)
	startRS(2)
	t.Cleanup(func() {
		for _, p := range rs {
			p.Stop()
		}
	})

	say("starting vrrpkit's supervisor (vrrpd, checkerd) with a virtual_server of rs1 and rs2, TCP_CHECK every second")
	fmt.Print(indent(demoConf[strings.Index(demoConf, "virtual_server"):]))
	supervisor := vm.Start(vmlab.Cmd{Argv: []string{"/usr/local/sbin/supervisor",
		"-f", "/etc/keepalived/keepalived.conf", "--run-dir", "/run/vk"}})
	t.Cleanup(func() {
		r := supervisor.Stop()
		if t.Failed() && r != nil {
			t.Logf("supervisor stderr:\n%s", r.Stderr)
		}
	})

	table := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := vm.Run(ctx, "ipvsadm", "-Ln")
		if err != nil || r.Exit != 0 {
			t.Fatalf("ipvsadm -Ln: %v %v", err, r)
		}
		return string(r.Stdout)
	}
	// has reports whether the virtual server has exactly these real servers.
	has := func(out string, want ...string) bool {
		var got []string
		in := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "TCP" && f[1] == "192.0.2.100:80":
				in = true
			case in && len(f) >= 2 && f[0] == "->":
				got = append(got, f[1])
			default:
				in = false
			}
		}
		return strings.Join(got, " ") == strings.Join(want, " ")
	}
	waitTable := func(what string, within time.Duration, want ...string) time.Duration {
		start := time.Now()
		for {
			out := table()
			if has(out, want...) {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("%s: not within %v; ipvsadm -Ln:\n%s", what, within, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	show := func() {
		fmt.Println("# ipvsadm -Ln")
		fmt.Print(indent(table()))
	}
	// The client: a bare HTTP/1.0 request through busybox nc in the
	// client netns, a new connection each time; the page names the real
	// server that answered. (busybox-static's wget segfaults under ip
	// netns exec, as pkg/vmlab's doc warns.)
	fetch := func(n int) {
		for i := 1; i <= n; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := vm.Exec(ctx, vmlab.Cmd{Argv: []string{"ip", "netns", "exec", "client", "nc", "-w", "2", "192.0.2.100", "80"},
				Stdin: []byte("GET / HTTP/1.0\r\n\r\n")})
			cancel()
			answer := ""
			if err != nil {
				answer = err.Error()
			} else if lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\n"); strings.HasPrefix(lines[len(lines)-1], "hello") {
				answer = lines[len(lines)-1]
			}
			if !strings.HasPrefix(answer, "hello") {
				why := answer
				if r != nil {
					why = fmt.Sprintf("nc exit %d: %s", r.Exit, strings.TrimSpace(string(r.Stderr)))
				}
				t.Errorf("client request #%d: no page (%s)", i, why)
				answer = "no answer: " + why
			}
			fmt.Printf("client -> http://192.0.2.100/ #%d: %s\n", i, answer)
		}
	}

	began := time.Now()
	waitTable("the service with both real servers", 60*time.Second, "10.0.1.1:80", "10.0.2.1:80")
	fmt.Printf("IPVS programmed %v after the supervisor started\n", time.Since(began).Round(time.Millisecond))
	show()
	// The table is there before VRRP made this node master (state MASTER
	// still waits its Master_Down_Interval, about 3 s at advert_int 1):
	// until then nobody answers ARP for the VIP.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(vm.MustRun("ip", "-br", "addr", "show", "eth0"), "192.0.2.100/24"); {
		if time.Now().After(deadline) {
			t.Fatalf("the VIP 192.0.2.100 is not on eth0 after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("VRRP master: the VIP is up %v after the supervisor started\n# ip -br addr show eth0\n%s",
		time.Since(began).Round(time.Millisecond), indent(vm.MustRun("ip", "-br", "addr", "show", "eth0")))
	say("the client fetches the VIP's page: round robin between rs1 and rs2")
	fetch(4)

	say("rs2 dies (its httpd is killed): TCP_CHECK fails, retries once after delay_before_retry, and vrrpd removes it")
	killed := time.Now()
	rs[2].Stop()
	delete(rs, 2)
	waitTable("rs2 removed", 30*time.Second, "10.0.1.1:80")
	fmt.Printf("rs2 left the table %v after its death (keepalived's bound: delay_loop 1s + retry 1 x delay_before_retry 1s + connect_timeout 1s)\n", time.Since(killed).Round(time.Millisecond))
	show()
	fetch(3)

	say("rs2 comes back: its next check passes and it is back in the pool")
	back := time.Now()
	startRS(2)
	waitTable("rs2 back", 30*time.Second, "10.0.1.1:80", "10.0.2.1:80")
	fmt.Printf("rs2 back in the table %v after its httpd started\n", time.Since(back).Round(time.Millisecond))
	show()
	fetch(4)
	say("LVS act done; the VM goes away with everything in it")
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}
