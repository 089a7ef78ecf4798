// Package ctlviewtest holds the fixed supervisor status that ctlview's golden
// files are made from, so that vrrpctl's own tests can serve the same answer
// over a real socket and compare with the same documented output.
package ctlviewtest

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Status returns a new copy of the fixture each time (callers may modify
// it). It exercises every shape the views have to handle: a refused reload,
// a running and a stopped child, a MASTER with drops (out of order, to show
// they come out sorted), a BACKUP that knows its master, and a FAULT with
// reasons and no counters message at all.
func Status() *pb.SupervisorStatusResponse {
	at := func(s string) *timestamppb.Timestamp {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err) // a typo in this file
		}
		return timestamppb.New(t)
	}
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
					SocketUnknownVrid: 7, SocketBadPackets: 2,
					Drops: []*pb.DropCount{{Reason: "bad_ttl", Count: 3}, {Reason: "auth_mismatch", Count: 1}},
				},
			},
			{
				Name: "VI_DNS", State: pb.VrrpState_VRRP_STATE_BACKUP, Priority: 100, EffectivePriority: 100,
				MasterAddr: "192.0.2.2", Interface: "eth1", Vrid: 52,
				StateSince: at("2026-03-14T09:20:04.75Z"),
				Counters:   &pb.InstanceCounters{AdvertsReceived: 1500},
			},
			{
				Name: "VI_DB", State: pb.VrrpState_VRRP_STATE_FAULT, Priority: 90, EffectivePriority: 90,
				Interface: "bond0", Vrid: 53, StateSince: at("2026-03-14T09:20:01Z"),
				FaultReasons: []string{"interface bond0 down", "chk_pg"},
			},
		},
	}
}
