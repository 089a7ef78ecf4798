package lvs

import (
	"net/netip"
	"testing"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestReadTableFallbackAndOrder: a Kernel without ReadTable is read
// through Services and Destinations, in ipvsadm's order: fwmark services
// last (by mark), then by protocol, address, port; destinations by
// address, then port.
func TestReadTableFallbackAndOrder(t *testing.T) {
	k := newFake()
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	svcs := []ServiceKey{
		{Family: INET, Fwmark: 7},
		{Family: INET, Protocol: UDP, Addr: a("192.0.2.1"), Port: 53},
		{Family: INET, Protocol: TCP, Addr: a("192.0.2.2"), Port: 80},
		{Family: INET, Protocol: TCP, Addr: a("192.0.2.1"), Port: 443},
		{Family: INET, Protocol: TCP, Addr: a("192.0.2.1"), Port: 80},
	}
	for _, sk := range svcs {
		if err := k.NewService(Service{ServiceKey: sk, Scheduler: "rr"}); err != nil {
			t.Fatal(err)
		}
	}
	web := svcs[4]
	for _, d := range []DestKey{{a("10.0.0.2"), 80}, {a("10.0.0.10"), 80}, {a("10.0.0.2"), 8}} {
		if err := k.NewDestination(web, Destination{DestKey: d, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := ReadTable(k)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range tab.Services {
		got = append(got, s.ServiceKey.String())
	}
	want := []string{"TCP 192.0.2.1:80", "TCP 192.0.2.1:443", "TCP 192.0.2.2:80", "UDP 192.0.2.1:53", "FWM 7"}
	if len(got) != len(want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("services %q, want %q", got, want)
		}
	}
	var dests []string
	for _, d := range tab.Services[0].Dests {
		dests = append(dests, d.DestKey.String())
	}
	if len(dests) != 3 || dests[0] != "10.0.0.2:8" || dests[1] != "10.0.0.2:80" || dests[2] != "10.0.0.10:80" {
		t.Errorf("destinations %q, want by address then port", dests)
	}
}

// TestPlaces: a real server's destination key per service follows
// Desired: a NAT server keeps its port, a DR one takes the service's.
func TestPlaces(t *testing.T) {
	vs := &pb.VirtualServer{Name: "g", Services: []*pb.LvsService{
		{Family: "inet", Address: "192.0.2.1", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP},
		{Family: "inet", Address: "192.0.2.2", Port: 8080, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP},
	}}
	nat := &pb.LvsRealServer{Address: "10.0.0.1", Port: 9000}
	dr := &pb.LvsRealServer{Address: "10.0.0.2", Port: 9000, Forwarding: &pb.LvsForwarding{Method: pb.LvsMethod_LVS_METHOD_DR}}
	if p := Places(vs, nat); len(p) != 2 || p[0].Dest.Port != 9000 || p[1].Dest.Port != 9000 || p[1].Service.Port != 8080 {
		t.Errorf("NAT places %v", p)
	}
	if p := Places(vs, dr); len(p) != 2 || p[0].Dest.Port != 80 || p[1].Dest.Port != 8080 {
		t.Errorf("DR places %v, want the services' ports", p)
	}
	// Desired agrees.
	tab := Desired([]*pb.VirtualServer{{Name: vs.Name, Services: vs.Services, RealServers: []*pb.LvsRealServer{nat, dr}}}, nil)
	for _, rs := range []*pb.LvsRealServer{nat, dr} {
		for _, p := range Places(vs, rs) {
			if _, ok := tab.Services[p.Service].Dests[p.Dest]; !ok {
				t.Errorf("%v not in Desired's table", p)
			}
		}
	}
}
