package vmlab_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestIPVSForwarding builds a whole LVS-NAT site inside one VM: a client
// and two real servers (busybox httpd) in network namespaces of their own,
// the VM's root namespace as the director, IPVS programmed through netlink
// (ipvsprobe, the library vrrpd uses), and checks that the kernel balances
// connections to the virtual service over both real servers. It is the
// pattern for end-to-end tests of vrrpd's IPVS programming.
func TestIPVSForwarding(t *testing.T) {
	t.Parallel()
	if !hasHostProgram("ip") {
		t.Skip("iproute2's ip is not installed on the host")
	}
	begin := time.Now()
	probe := vmlab.BuildGo(t, "github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/ipvsprobe")
	vm := vmlab.Boot(t, vmlab.Options{
		Modules:      []string{"ip_vs_rr", "veth"},
		HostPrograms: []string{"ip"}, // busybox ip has no netns
		Binaries:     map[string]string{"/usr/local/bin/ipvsprobe": probe},
		Sysctls:      map[string]string{"net.ipv4.ip_forward": "1"},
	})
	vm.Sh(`
ns() { ip netns add "$1"; ip link add "$2" type veth peer name eth0 netns "$1"
       ip addr add "$3" dev "$2"; ip link set "$2" up
       ip -n "$1" link set lo up; ip -n "$1" addr add "$4" dev eth0; ip -n "$1" link set eth0 up
       ip -n "$1" route add default via "${3%/*}"; }
ip addr add 10.0.0.1/32 dev lo # the VIP: IPVS takes it at LOCAL_IN
ns client vc 198.51.100.1/24 198.51.100.2/24
ns rs1 v1 10.0.1.254/24 10.0.1.1/24
ns rs2 v2 10.0.2.254/24 10.0.2.1/24
for n in 1 2; do
  mkdir -p /srv/rs$n; echo rs$n > /srv/rs$n/index.html
  ip netns exec rs$n httpd -p 80 -h /srv/rs$n
done
`)
	vm.MustRun("ipvsprobe", "-vip", "10.0.0.1:80", "-sched", "rr", "-rs", "10.0.1.1:80:1", "-rs", "10.0.2.1:80:1")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hits := map[string]int{}
	for range 4 {
		// busybox-static's wget segfaults (its static glibc resolver), so
		// HTTP by hand over nc.
		r, err := vm.Exec(ctx, vmlab.Cmd{
			Argv:  []string{"ip", "netns", "exec", "client", "nc", "-w", "5", "10.0.0.1", "80"},
			Stdin: []byte("GET /index.html HTTP/1.0\r\n\r\n"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Exit != 0 {
			t.Fatalf("nc through the VIP exited %d %s: %s\n/proc/net/ip_vs:\n%s", r.Exit, r.Signal, r.Stderr, vm.MustRun("cat", "/proc/net/ip_vs"))
		}
		body := strings.TrimSpace(string(r.Stdout))
		hits[body[strings.LastIndexByte(body, '\n')+1:]]++
	}
	if hits["rs1"] != 2 || hits["rs2"] != 2 {
		t.Errorf("rr over two real servers, 4 connections: hits = %v, want rs1:2 rs2:2", hits)
	}
	t.Logf("whole test %v (boot %v)", time.Since(begin).Round(time.Millisecond), vm.BootTime.Round(time.Millisecond))
}
