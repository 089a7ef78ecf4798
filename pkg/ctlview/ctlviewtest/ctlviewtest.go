// Package ctlviewtest holds the fixed supervisor status that ctlview's golden
// files are made from, so that vrrpctl's own tests can serve the same answer
// over a real socket and compare with the same documented output.
package ctlviewtest

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Status returns a new copy of the fixture each time (callers may modify
// it). It exercises every shape the views have to handle: a refused reload,
// a running and a stopped child, a MASTER with drops (out of order, to show
// they come out sorted), a BACKUP that knows its master, and a FAULT with
// reasons and no counters message at all; a NAT virtual server with a
// healthy and a failed real server and an idle sorry server, and a DR
// fwmark one that lost quorum.
func Status() *pb.SupervisorStatusResponse {
	return &pb.SupervisorStatusResponse{
		Generation:     3,
		ConfigPath:     "/etc/keepalived/keepalived.conf",
		ConfigLoadedAt: at("2026-03-14T09:26:53.589793238Z"),
		StartedAt:      at("2026-03-14T09:00:00Z"),
		Version:        "v0.3.0",
		LastReloadFailure: &pb.ReloadFailure{
			At: at("2026-03-14T11:30:00.5+01:00"),
			Errors: []string{
				"/etc/keepalived/keepalived.conf:12: error: virtual_router_id 300 is out of range (1-255)",
				`/etc/keepalived/conf.d/web.conf:4: error: unknown keyword "priorty" (did you mean "priority"?)`,
			},
		},
		Children: []*pb.ChildStatus{
			{Name: "vrrpd", Pid: 4242, Running: true, Generation: 3, Restarts: 1,
				StartedAt: at("2026-03-14T09:20:01.000000001Z"), LastExit: "signal: killed"},
			{Name: "checkerd", Restarts: 0},
		},
		Instances: []*pb.InstanceStatus{
			{
				Name: "VI_WEB", State: pb.VrrpState_VRRP_STATE_MASTER, Priority: 150, EffectivePriority: 140,
				VirtualIpaddress: []string{"192.0.2.100/32", "2001:db8::100/128"},
				MasterAddr:       "192.0.2.1", Interface: "eth0", Vrid: 51,
				StateSince: at("2026-03-14T09:20:01.25Z"),
				SyncGroup:  "SG_FRONT",
				Tracking: []*pb.TrackedStatus{
					{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "chk_nginx", Weight: -10, Up: false, Delta: -10, Detail: "exit status 1"},
					{Kind: pb.TrackerKind_TRACKER_KIND_INTERFACE, Name: "eth1", Up: true, Detail: "up"},
				},
				Counters: &pb.InstanceCounters{
					AdvertsSent: 1520, AdvertsReceived: 12, PriorityZeroSent: 0, PriorityZeroReceived: 1,
					BecameMaster: 2, ReleasedMaster: 1, SendErrors: 0, LowerPriorityMasterHeard: 3, ResumedLate: 1,
					SocketUnknownVrid: 7, SocketBadPackets: 2, OtherMasterHeard: 3,
					Drops: []*pb.DropCount{{Reason: "bad_ttl", Count: 3}, {Reason: "auth_mismatch", Count: 1}},
				},
			},
			{
				Name: "VI_DNS", State: pb.VrrpState_VRRP_STATE_BACKUP, Priority: 100, EffectivePriority: 100,
				MasterAddr: "192.0.2.2", Interface: "eth1", Vrid: 52,
				StateSince: at("2026-03-14T09:20:04.75Z"),
				Counters:   &pb.InstanceCounters{AdvertsReceived: 1500},
				Peers: []*pb.PeerStatus{{Address: "192.0.2.2", Priority: 150, AdvertInterval: durationpb.New(time.Second),
					FirstHeard: at("2026-03-14T09:20:02Z"), LastHeard: at("2026-03-14T09:45:00.5Z"), Adverts: 1500}},
			},
			{
				Name: "VI_DB", State: pb.VrrpState_VRRP_STATE_FAULT, Priority: 90, EffectivePriority: 90,
				Interface: "bond0", Vrid: 53, StateSince: at("2026-03-14T09:20:01Z"),
				FaultReasons: []string{"interface bond0 down", "chk_pg"},
			},
		},
		VirtualServers: virtualServers(),
	}
}

func at(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err) // a typo in this file
	}
	return timestamppb.New(t)
}

func virtualServers() []*pb.VirtualServerStatus {
	return []*pb.VirtualServerStatus{
		{
			Name:      "192.0.2.100:80/TCP",
			Services:  []*pb.LvsService{{Family: "inet", Address: "192.0.2.100", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP}},
			Scheduler: "wlc", LbKind: pb.LvsMethod_LVS_METHOD_NAT, QuorumUp: true,
			RealServers: []*pb.RealServerStatus{web1(), web2()},
			SorryServer: &pb.RealServerStatus{Address: "10.0.9.9", Port: 80, Healthy: true, Reason: "no checker"},
		},
		{
			Name:      "fwmark 5",
			Services:  []*pb.LvsService{{Family: "inet6", Fwmark: 5}},
			Scheduler: "sh", LbKind: pb.LvsMethod_LVS_METHOD_DR,
			RealServers: []*pb.RealServerStatus{{Address: "2001:db8::10", Port: 0, Weight: 0, Healthy: false, HealthId: "fwmark 5/[2001:db8::10]:0",
				Forward: pb.LvsMethod_LVS_METHOD_DR,
				Since:   at("2026-03-14T09:25:00Z"), LastCheck: at("2026-03-14T09:26:40Z"),
				Reason: "PING_CHECK: ping 2001:db8::10: no echo reply before the deadline"}},
		},
	}
}

func web1() *pb.RealServerStatus {
	return &pb.RealServerStatus{Address: "10.0.1.1", Port: 80, Weight: 3, Healthy: true, HealthId: "192.0.2.100:80/TCP/10.0.1.1:80",
		Since: at("2026-03-14T09:20:03Z"), LastCheck: at("2026-03-14T09:26:50.5Z"),
		Reason: "HTTP status 200 from http://10.0.1.1:80/health"}
}

func web2() *pb.RealServerStatus {
	return &pb.RealServerStatus{Address: "10.0.1.2", Port: 80, Weight: 0, Healthy: false, HealthId: "192.0.2.100:80/TCP/10.0.1.2:80",
		Since: at("2026-03-14T09:24:10Z"), LastCheck: at("2026-03-14T09:26:51Z"),
		Reason: "HTTP_GET: HTTP status 503 from http://10.0.1.2:80/health, want 200-299"}
}

// IPVSNow is the time the IPVS fixture's durations count to.
var IPVSNow = time.Date(2026, 3, 14, 9, 27, 0, 0, time.UTC)

// IPVS returns the kernel table fixture: the fixture's NAT virtual server
// (its failed real server inhibited at weight 0), a persistent service
// vrrpkit does not own, and the IPv6 DR fwmark one (inhibited).
func IPVS() *pb.IpvsResponse {
	inhibited := web2()
	return &pb.IpvsResponse{
		Version: "1.2.1", ConnTableSize: 4096,
		Services: []*pb.IpvsService{
			{Key: &pb.LvsService{Family: "inet6", Fwmark: 5}, Scheduler: "sh", VirtualServer: "fwmark 5",
				Destinations: []*pb.IpvsDestination{{Address: "2001:db8::10", Forward: 3, Weight: 0, ActiveConns: 12, InactiveConns: 40,
					Server: virtualServers()[1].RealServers[0]}}},
			{Key: &pb.LvsService{Family: "inet", Address: "192.0.2.100", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP},
				Scheduler: "wlc", VirtualServer: "192.0.2.100:80/TCP",
				Destinations: []*pb.IpvsDestination{
					{Address: "10.0.1.1", Port: 80, Forward: 0, Weight: 3, ActiveConns: 2, InactiveConns: 17, Server: web1()},
					{Address: "10.0.1.2", Port: 80, Forward: 0, Weight: 0, Server: inhibited},
				}},
			{Key: &pb.LvsService{Family: "inet", Address: "198.51.100.7", Port: 53, Protocol: pb.LvsProtocol_LVS_PROTOCOL_UDP},
				Scheduler: "rr", Flags: 0x0001, TimeoutSeconds: 300, Netmask: "255.255.255.0",
				Destinations: []*pb.IpvsDestination{{Address: "203.0.113.5", Port: 53, Forward: 2, Weight: 2}}},
		},
	}
}
