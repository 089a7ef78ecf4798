package ctlview_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func peersFixture(now time.Time) *pb.SupervisorStatusResponse {
	ts := func(ago time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-ago)) }
	return &pb.SupervisorStatusResponse{Instances: []*pb.InstanceStatus{
		{Name: "VI_1", Interface: "eth0", Vrid: 51, State: pb.VrrpState_VRRP_STATE_MASTER,
			Counters: &pb.InstanceCounters{OtherMasterHeard: 3},
			Peers: []*pb.PeerStatus{
				{Address: "192.0.2.2", Priority: 100, AdvertInterval: durationpb.New(time.Second), FirstHeard: ts(time.Hour),
					LastHeard: ts(300 * time.Millisecond), Adverts: 3600, HeardWhileMaster: 3},
				{Address: "192.0.2.3", Priority: 0, FirstHeard: ts(time.Minute), LastHeard: ts(2 * time.Second),
					Drops: []*pb.DropCount{{Reason: "auth_mismatch", Count: 12}}},
			}},
		{Name: "VI_2", Interface: "eth1", Vrid: 52, State: pb.VrrpState_VRRP_STATE_BACKUP},
	}}
}

func TestPeersGolden(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	v := ctlview.PeersFromProto(peersFixture(now))
	var j, txt bytes.Buffer
	if err := ctlview.WritePeersJSON(&j, v); err != nil {
		t.Fatal(err)
	}
	golden(t, "peers.golden.json", j.Bytes())
	if err := ctlview.WritePeersText(&txt, v, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "peers.golden.txt", txt.Bytes())
}
