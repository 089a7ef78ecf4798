package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestVirtualServerStatus: Status lists each virtual server with its real
// servers' health as checkerd last said (reason, since, last_check) and
// the weight vrrpd programs; Ipvs reads the kernel's table back with the
// same health beside each destination it knows.
func TestVirtualServerStatus(t *testing.T) {
	k := newFakeIPVS()
	r, _ := newLVSRig(t, func() (lvs.Kernel, error) { return k, nil }, 0)
	vs := webVS()
	vs.Quorum = 1
	vs.SorryServer = &pb.LvsRealServer{Address: "10.0.0.9", Port: 8080, Weight: 1, Unchecked: true}
	r.apply(t, lvsSnap(1, vs))
	waitDump(t, k, webBoth)

	since, last := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 14, 9, 5, 0, 0, time.UTC)
	r.e.ApplyHealth(&pb.HealthEvent{Generation: 1, Event: &pb.HealthEvent_Result{Result: &pb.TrackerResult{
		Kind: pb.TrackerKind_TRACKER_KIND_REAL_SERVER, Name: "rs1", Up: false,
		Detail: "HTTP_GET: HTTP status 503 from http://10.0.0.1:8080/, want 200-299",
		Since:  timestamppb.New(since), LastCheck: timestamppb.New(last)}}})
	waitDump(t, k, webOnly2)

	st, err := r.e.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetVirtualServers()) != 1 {
		t.Fatalf("virtual servers %v, want web", st.GetVirtualServers())
	}
	v := st.GetVirtualServers()[0]
	if v.GetName() != "web" || v.GetScheduler() != "rr" || !v.GetQuorumUp() || len(v.GetRealServers()) != 2 || v.GetSorryServer() == nil {
		t.Fatalf("web status %v", v)
	}
	rs1, rs2 := v.GetRealServers()[0], v.GetRealServers()[1]
	if rs1.GetHealthy() || rs1.GetWeight() != 0 || rs1.GetReason() != "HTTP_GET: HTTP status 503 from http://10.0.0.1:8080/, want 200-299" ||
		!rs1.GetSince().AsTime().Equal(since) || !rs1.GetLastCheck().AsTime().Equal(last) || rs1.GetAddress() != "10.0.0.1" || rs1.GetPort() != 8080 {
		t.Errorf("rs1 (down) status %v", rs1)
	}
	if !rs2.GetHealthy() || rs2.GetWeight() != 1 || rs2.GetReason() != "not checked yet" || rs2.GetSince() != nil {
		t.Errorf("rs2 (no result yet) status %v", rs2)
	}
	if s := v.GetSorryServer(); !s.GetHealthy() || s.GetWeight() != 0 || s.GetReason() != "no checker" {
		t.Errorf("sorry server (quorum up: not in the pool) %v", s)
	}

	ip, err := r.e.Ipvs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ip.GetServices()) != 1 || ip.GetServices()[0].GetVirtualServer() != "web" || len(ip.GetServices()[0].GetDestinations()) != 1 {
		t.Fatalf("ipvs %v", ip)
	}
	d := ip.GetServices()[0].GetDestinations()[0]
	if d.GetAddress() != "10.0.0.2" || d.GetWeight() != 1 || d.GetServer().GetHealthId() != "rs2" || !d.GetServer().GetHealthy() {
		t.Errorf("ipvs destination %v, want rs2 with its health", d)
	}

	// Without IPVS, Ipvs says so; Status still carries the health.
	r2, _ := newLVSRig(t, func() (lvs.Kernel, error) { return nil, errors.New("genetlink: family IPVS not found") }, 0)
	r2.apply(t, lvsSnap(1, webVS()))
	if _, err := r2.e.Ipvs(context.Background()); !errors.Is(err, ErrNoIPVS) {
		t.Errorf("Ipvs without IPVS: %v, want ErrNoIPVS", err)
	}
	if st, _ := r2.e.Status(context.Background()); len(st.GetVirtualServers()) != 1 {
		t.Errorf("status without IPVS: %v", st.GetVirtualServers())
	}
}

// TestStatusScale: Status with one virtual server of 3000 checked real
// servers, each with a result (the size issue 8 aims at), lists them all
// with their health; it logs what one Status costs.
func TestStatusScale(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 3000
	vs := &pb.VirtualServer{Name: "big", Scheduler: "wlc",
		Services: []*pb.LvsService{{Family: "inet", Address: "192.0.2.10", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP}}}
	var results []*pb.TrackerResult
	now := timestamppb.Now()
	for i := range n {
		id := fmt.Sprintf("rs%d", i)
		vs.RealServers = append(vs.RealServers, &pb.LvsRealServer{Address: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255),
			Port: 8080, Weight: 1, HealthId: id, Checkers: []*pb.LvsChecker{{}}})
		results = append(results, &pb.TrackerResult{Kind: pb.TrackerKind_TRACKER_KIND_REAL_SERVER, Name: id, Up: i%7 != 0,
			Detail: "TCP_CHECK: TCP connect to 10.0.0.1:8080 failed: connection refused", Since: now, LastCheck: now})
	}
	k := newFakeIPVS()
	r, _ := newLVSRig(t, func() (lvs.Kernel, error) { return k, nil }, 0)
	r.apply(t, lvsSnap(1, vs))
	r.e.ApplyHealth(&pb.HealthEvent{Generation: 1, Event: &pb.HealthEvent_Snapshot{Snapshot: &pb.HealthSnapshot{Results: results}}})
	st, err := r.e.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	down := 0
	for _, rs := range st.GetVirtualServers()[0].GetRealServers() {
		if !rs.GetHealthy() {
			down++
			if rs.GetWeight() != 0 || rs.GetReason() == "" {
				t.Fatalf("down server %v: want weight 0 and the reason", rs)
			}
		}
	}
	if got := len(st.GetVirtualServers()[0].GetRealServers()); got != n || down != (n+6)/7 {
		t.Fatalf("%d real servers, %d down; want %d, %d", got, down, n, (n+6)/7)
	}
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := r.e.Status(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	t.Logf("Status with %d real servers: %v per call, %s; checkerd's refresh snapshot of them: %d bytes",
		n, time.Duration(res.NsPerOp()), res.MemString(), proto.Size(&pb.HealthSnapshot{Results: results}))
}
