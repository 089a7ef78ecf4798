package lvs

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// rs builds a checked NAT real server 10.0.0.N:80 with health id "rsN".
func rs(n int, weight uint32, opts ...func(*pb.LvsRealServer)) *pb.LvsRealServer {
	r := &pb.LvsRealServer{
		Address: fmt.Sprintf("10.0.0.%d", n), Port: 80, Weight: weight,
		HealthId: fmt.Sprintf("rs%d", n), Forwarding: &pb.LvsForwarding{},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func inhibit(r *pb.LvsRealServer)    { r.InhibitOnFailure = true }
func startsDown(r *pb.LvsRealServer) { r.StartsDown = true }
func unchecked(r *pb.LvsRealServer)  { r.Unchecked = true }
func dr(r *pb.LvsRealServer)         { r.Forwarding = &pb.LvsForwarding{Method: pb.LvsMethod_LVS_METHOD_DR} }

func sorry(opts ...func(*pb.LvsRealServer)) *pb.LvsRealServer {
	s := &pb.LvsRealServer{Address: "10.0.9.9", Port: 80, Weight: 1, Unchecked: true, Forwarding: &pb.LvsForwarding{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func vs(quorum, hysteresis uint32, ss *pb.LvsRealServer, rss ...*pb.LvsRealServer) *pb.VirtualServer {
	return &pb.VirtualServer{
		Name:      "192.0.2.1:80/TCP",
		Services:  []*pb.LvsService{{Family: "inet", Address: "192.0.2.1", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP}},
		Scheduler: "wlc", Quorum: quorum, Hysteresis: hysteresis,
		SorryServer: ss, RealServers: rss,
	}
}

var svc80 = ServiceKey{Family: INET, Protocol: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}

// health maps health ids to up (true) / down (false); absent is unknown.
func health(m map[string]bool) Health {
	return func(id string) (ServerHealth, bool) { v, ok := m[id]; return ServerHealth{Up: v}, ok }
}

// dests renders an entry's destinations as "addr:port=weight" sorted.
func dests(e *Entry) string {
	if e == nil {
		return "<no service>"
	}
	var out []string
	for k, d := range e.Dests {
		out = append(out, fmt.Sprintf("%s=%d", k, d.Weight))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestDesiredDestinations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vs     *pb.VirtualServer
		health map[string]bool
		want   string
		up     bool
	}{
		{"all up", vs(1, 0, nil, rs(1, 1), rs(2, 3)), map[string]bool{"rs1": true, "rs2": true},
			"10.0.0.1:80=1 10.0.0.2:80=3", true},
		{"down is removed", vs(1, 0, nil, rs(1, 1), rs(2, 3)), map[string]bool{"rs1": true, "rs2": false},
			"10.0.0.1:80=1", true},
		{"down with inhibit_on_failure is weight 0", vs(1, 0, nil, rs(1, 1), rs(2, 3, inhibit)), map[string]bool{"rs1": true, "rs2": false},
			"10.0.0.1:80=1 10.0.0.2:80=0", true},
		{"no result yet: up (checkers start up)", vs(1, 0, nil, rs(1, 1), rs(2, 3)), nil,
			"10.0.0.1:80=1 10.0.0.2:80=3", true},
		{"no result yet, alpha: down", vs(1, 0, nil, rs(1, 1), rs(2, 3, startsDown)), nil,
			"10.0.0.1:80=1", true},
		{"no result yet, alpha + inhibit: weight 0", vs(1, 0, nil, rs(1, 1), rs(2, 3, startsDown, inhibit)), nil,
			"10.0.0.1:80=1 10.0.0.2:80=0", true},
		{"alpha then a good result: up", vs(1, 0, nil, rs(1, 1, startsDown)), map[string]bool{"rs1": true},
			"10.0.0.1:80=1", true},
		{"unchecked server ignores health", vs(1, 0, nil, rs(1, 2, unchecked)), map[string]bool{"rs1": false},
			"10.0.0.1:80=2", true},
		{"all down, no sorry server: empty service", vs(1, 0, nil, rs(1, 1), rs(2, 1)), map[string]bool{"rs1": false, "rs2": false},
			"", false},
		{"all down: sorry server in at weight 1", vs(1, 0, sorry(), rs(1, 1), rs(2, 1)), map[string]bool{"rs1": false, "rs2": false},
			"10.0.9.9:80=1", false},
		{"all down, inhibited real server stays at 0 beside sorry", vs(1, 0, sorry(), rs(1, 1, inhibit), rs(2, 1)), map[string]bool{"rs1": false, "rs2": false},
			"10.0.0.1:80=0 10.0.9.9:80=1", false},
		{"quorum lost: sorry replaces live servers too", vs(3, 0, sorry(), rs(1, 2), rs(2, 2)), map[string]bool{"rs1": true, "rs2": false},
			"10.0.9.9:80=1", false},
		{"quorum lost: live inhibited server goes to 0", vs(3, 0, sorry(), rs(1, 2, inhibit), rs(2, 2)), map[string]bool{"rs1": true, "rs2": false},
			"10.0.0.1:80=0 10.0.9.9:80=1", false},
		{"quorum lost without sorry server: live servers stay", vs(3, 0, nil, rs(1, 2), rs(2, 2)), map[string]bool{"rs1": true, "rs2": false},
			"10.0.0.1:80=2", false},
		{"quorum met: no sorry server", vs(3, 0, sorry(), rs(1, 2), rs(2, 2)), map[string]bool{"rs1": true, "rs2": true},
			"10.0.0.1:80=2 10.0.0.2:80=2", true},
		{"sorry_server_inhibit: present at 0 while quorum is up", vs(1, 0, sorry(inhibit), rs(1, 1)), map[string]bool{"rs1": true},
			"10.0.0.1:80=1 10.0.9.9:80=0", true},
		{"sorry_server_inhibit: weight 1 when quorum is lost", vs(1, 0, sorry(inhibit), rs(1, 1)), map[string]bool{"rs1": false},
			"10.0.9.9:80=1", false},
		{"sorry server that is a real server: its real weight while up", vs(1, 0, sorry(func(s *pb.LvsRealServer) { s.Address = "10.0.0.1"; s.InhibitOnFailure = true }), rs(1, 5, inhibit), rs(2, 1)),
			map[string]bool{"rs1": true, "rs2": true}, "10.0.0.1:80=5 10.0.0.2:80=1", true},
		{"sorry server that is a real server: weight 1 when quorum is lost", vs(1, 0, sorry(func(s *pb.LvsRealServer) { s.Address = "10.0.0.1" }), rs(1, 5), rs(2, 1)),
			map[string]bool{"rs1": false, "rs2": false}, "10.0.0.1:80=1", false},
		{"quorum + hysteresis not reached at start", vs(4, 1, sorry(), rs(1, 2), rs(2, 2), rs(3, 2)), map[string]bool{"rs1": true, "rs2": true, "rs3": false},
			"10.0.9.9:80=1", false},
		{"weight above 65535 is clamped", vs(1, 0, nil, rs(1, 70000)), nil, "10.0.0.1:80=65535", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := Desired([]*pb.VirtualServer{tc.vs}, health(tc.health))
			if got := dests(tab.Services[svc80]); got != tc.want {
				t.Errorf("destinations: got %q, want %q", got, tc.want)
			}
			if got := tab.QuorumUp[tc.vs.Name]; got != tc.up {
				t.Errorf("quorum up: got %v, want %v", got, tc.up)
			}
		})
	}
}

// TestQuorumHysteresis walks a virtual server with quorum 4, hysteresis 1
// and three servers of weight 2 through health changes: it loses quorum
// below 3 and regains it only at 5 (ipwrapper.c update_quorum_state).
func TestQuorumHysteresis(t *testing.T) {
	v := vs(4, 1, sorry(), rs(1, 2), rs(2, 2), rs(3, 2))
	vss := []*pb.VirtualServer{v}
	steps := []struct {
		h    map[string]bool
		up   bool
		want string
	}{
		{map[string]bool{"rs1": true, "rs2": true, "rs3": true}, true, "10.0.0.1:80=2 10.0.0.2:80=2 10.0.0.3:80=2"},
		{map[string]bool{"rs1": true, "rs2": true, "rs3": false}, true, "10.0.0.1:80=2 10.0.0.2:80=2"}, // 4: 4+1 >= 4, stays up
		{map[string]bool{"rs1": true, "rs2": false, "rs3": false}, false, "10.0.9.9:80=1"},             // 2: 2+1 < 4, lost
		{map[string]bool{"rs1": true, "rs2": true, "rs3": false}, false, "10.0.9.9:80=1"},              // 4 < 5: still down
		{map[string]bool{"rs1": true, "rs2": true, "rs3": true}, true, "10.0.0.1:80=2 10.0.0.2:80=2 10.0.0.3:80=2"},
	}
	var tab Table
	for i, s := range steps {
		if i == 0 {
			tab = Desired(vss, health(s.h))
		} else {
			tab = tab.Next(vss, health(s.h))
		}
		if got := tab.QuorumUp[v.Name]; got != s.up {
			t.Errorf("step %d: quorum up %v, want %v", i, got, s.up)
		}
		if got := dests(tab.Services[svc80]); got != s.want {
			t.Errorf("step %d: destinations %q, want %q", i, got, s.want)
		}
	}
	// A virtual server the previous table did not know (a reload adding
	// it) starts as at daemon start: 4 live < 5 is down.
	renamed := vs(4, 1, sorry(), rs(1, 2), rs(2, 2), rs(3, 2))
	renamed.Name = "other"
	tab = tab.Next([]*pb.VirtualServer{renamed}, health(map[string]bool{"rs1": true, "rs2": true, "rs3": false}))
	if tab.QuorumUp["other"] {
		t.Errorf("new virtual server on reload: quorum up, want down (4 < quorum+hysteresis 5)")
	}
	if _, kept := tab.QuorumUp[v.Name]; kept {
		t.Errorf("removed virtual server still has a quorum state")
	}
}

func TestDesiredServices(t *testing.T) {
	v := &pb.VirtualServer{
		Name: "group G/TCP",
		Services: []*pb.LvsService{
			{Family: "inet", Address: "192.0.2.1", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP},
			{Family: "inet", Address: "192.0.2.2", Port: 8080, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP},
			{Family: "inet", Fwmark: 7},
		},
		Scheduler: "sh", Flags: 0x18, Quorum: 1,
		PersistenceTimeout: durationpb.New(360 * time.Second), PersistenceGranularity: "255.255.255.0", PersistenceEngine: "sip",
		RealServers: []*pb.LvsRealServer{rs(1, 1, dr), rs(2, 1, func(r *pb.LvsRealServer) { r.Port = 8000 })},
	}
	tab := Desired([]*pb.VirtualServer{v}, nil)
	a := ServiceKey{Family: INET, Protocol: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	b := ServiceKey{Family: INET, Protocol: TCP, Addr: netip.MustParseAddr("192.0.2.2"), Port: 8080}
	f := ServiceKey{Family: INET, Fwmark: 7}
	if got, want := tab.Keys(), []ServiceKey{f, a, b}; !reflect.DeepEqual(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	for k, want := range map[ServiceKey]string{
		a: "10.0.0.1:80=1 10.0.0.2:8000=1",   // DR takes the service's port
		b: "10.0.0.1:8080=1 10.0.0.2:8000=1", // NAT keeps its own
		f: "10.0.0.1:0=1 10.0.0.2:8000=1",    // DR under a fwmark: no port
	} {
		if got := dests(tab.Services[k]); got != want {
			t.Errorf("%s: destinations %q, want %q", k, got, want)
		}
	}
	s := tab.Services[a].Service
	want := Service{ServiceKey: a, Scheduler: "sh", Flags: 0x18 | FlagPersistent, Timeout: 360 * time.Second,
		Netmask: netip.MustParsePrefix("255.255.255.0/32"), PEName: "sip"}
	if s != want {
		t.Errorf("service settings %+v, want %+v", s, want)
	}
	if d := tab.Services[a].Dests[DestKey{netip.MustParseAddr("10.0.0.1"), 80}]; d.Method != DR {
		t.Errorf("method %v, want DR", d.Method)
	}

	// Not persistent: no flag, no timeout, host mask, no engine.
	v.PersistenceTimeout = nil
	s = Desired([]*pb.VirtualServer{v}, nil).Services[a].Service
	if s.Flags&FlagPersistent != 0 || s.Timeout != 0 || s.Netmask.IsValid() || s.PEName != "" {
		t.Errorf("non-persistent service %+v", s)
	}

	// IPv6 granularity is a prefix length.
	if got := granularity(INET6, "64"); got != netip.MustParsePrefix("::/64") {
		t.Errorf("granularity(inet6, 64) = %v", got)
	}
}

func vssOf(v ...*pb.VirtualServer) []*pb.VirtualServer { return v }

// TestQuorumZero: a pool whose total weight is 0 has quorum 0 (clamped by
// the snapshot). keepalived starts it with quorum up, and it loses quorum at
// the first weight change that leaves the live weight at 0
// (update_quorum_state: "!weight_sum").
func TestQuorumZero(t *testing.T) {
	v := vs(0, 0, sorry(), rs(1, 0), rs(2, 1))
	v.Quorum = 0
	vss := vssOf(v)
	tab := Desired(vss, health(map[string]bool{"rs1": true, "rs2": false}))
	if !tab.QuorumUp[v.Name] || dests(tab.Services[svc80]) != "10.0.0.1:80=0" {
		t.Fatalf("start: up %v, %s", tab.QuorumUp[v.Name], dests(tab.Services[svc80]))
	}
	tab = tab.Next(vss, health(map[string]bool{"rs1": true, "rs2": false}))
	if !tab.QuorumUp[v.Name] {
		t.Fatalf("no change: quorum lost")
	}
	tab = tab.Next(vss, health(map[string]bool{"rs1": true, "rs2": true}))
	tab = tab.Next(vss, health(map[string]bool{"rs1": true, "rs2": false}))
	if tab.QuorumUp[v.Name] || dests(tab.Services[svc80]) != "10.0.9.9:80=1" {
		t.Errorf("live weight back to 0: up %v, %s", tab.QuorumUp[v.Name], dests(tab.Services[svc80]))
	}
}
