package ctlview_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestWatchGolden: one event of each kind, as vrrpctl watch prints it with
// and without --json.
func TestWatchGolden(t *testing.T) {
	at := time.Date(2026, 12, 2, 4, 20, 1, 123000000, time.UTC)
	ts := func(ms int) *timestamppb.Timestamp {
		return timestamppb.New(at.Add(time.Duration(ms) * time.Millisecond))
	}
	w := uint32(5)
	evs := []*pb.WatchEvent{
		{At: ts(1), Event: &pb.WatchEvent_Vrrp{Vrrp: &pb.VrrpEvent{Seq: 7, At: ts(0), Generation: 2, Event: &pb.VrrpEvent_Transition{
			Transition: &pb.StateTransition{Instance: "VI_1", From: pb.VrrpState_VRRP_STATE_BACKUP, To: pb.VrrpState_VRRP_STATE_MASTER,
				Priority: 150, Reason: "master down timer expired"}}}}},
		{At: ts(2), Event: &pb.WatchEvent_Vrrp{Vrrp: &pb.VrrpEvent{Seq: 8, At: ts(1), Generation: 2, Event: &pb.VrrpEvent_Address{
			Address: &pb.AddressChange{Instance: "VI_1", Prefix: "192.0.2.100/24", Dev: "eth0", Held: true}}}}},
		{At: ts(3), Event: &pb.WatchEvent_Vrrp{Vrrp: &pb.VrrpEvent{Seq: 9, At: ts(2), Generation: 2, Event: &pb.VrrpEvent_LowerPriorityMaster{
			LowerPriorityMaster: &pb.LowerPriorityMaster{Instance: "VI_1", From: "192.0.2.2", TheirPriority: 100, Priority: 150}}}}},
		{At: ts(900), Event: &pb.WatchEvent_Health{Health: &pb.HealthEvent{Seq: 3, Generation: 2, Event: &pb.HealthEvent_Result{
			Result: &pb.TrackerResult{Kind: pb.TrackerKind_TRACKER_KIND_REAL_SERVER, Name: "192.0.2.100:80/TCP 10.0.0.1:80",
				Detail: "TCP_CHECK: connect 10.0.0.1:80: connection refused"}}}}},
		{At: ts(950), Event: &pb.WatchEvent_Health{Health: &pb.HealthEvent{Seq: 4, Generation: 2, Event: &pb.HealthEvent_Result{
			Result: &pb.TrackerResult{Kind: pb.TrackerKind_TRACKER_KIND_REAL_SERVER, Name: "192.0.2.100:80/TCP 10.0.0.2:80", Up: true,
				Weight: &w, Detail: "MISC_CHECK: exit status 7"}}}}},
		{At: ts(5000), Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: true, Generation: 3,
			Plan: &pb.ReloadPlan{InstancesChanged: 1, InstancesUnchanged: 4, Items: []*pb.PlanItem{
				{Section: "instance", Op: "change", Name: "VI_1", Details: []string{"priority: 150 -> 160"}},
				{Section: "ipvs", Op: "change", Name: "TCP 192.0.2.100:80 -> 10.0.0.1:80", Details: []string{"weight: 1 -> 2"}}}}}}},
		{At: ts(6000), Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Generation: 3,
			Errors: []string{"/etc/keepalived/keepalived.conf:4: error: priority: \"lots\" is not a whole number in [1, 255]"}}}},
	}
	var j, txt bytes.Buffer
	for _, ev := range evs {
		v := ctlview.WatchFromProto(ev)
		if v == nil {
			t.Fatalf("no view of %v", ev)
		}
		if err := ctlview.WriteWatchJSON(&j, v); err != nil {
			t.Fatal(err)
		}
		if err := ctlview.WriteWatchText(&txt, v, time.UTC); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "watch.golden.jsonl", j.Bytes())
	golden(t, "watch.golden.txt", txt.Bytes())
	if v := ctlview.WatchFromProto(&pb.WatchEvent{}); v != nil {
		t.Errorf("an empty event has a view: %+v", v)
	}
}
