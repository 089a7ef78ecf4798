package vrrpkitv1_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func sampleSnapshot() *pb.ConfigSnapshot {
	return &pb.ConfigSnapshot{
		Generation:   7,
		SourcePath:   "/etc/keepalived/keepalived.conf",
		SourceSha256: []byte{0xde, 0xad, 0xbe, 0xef},
		Global:       &pb.GlobalDefs{RouterId: "lb1", ScriptUser: "keepalived_script", VrrpMcastGroup4: "224.0.0.18"},
		Instances: []*pb.VrrpInstance{{
			Name:      "VI_1",
			DefinedAt: "/etc/keepalived/keepalived.conf:12",
			Interface: "eth0",
			Vrid:      51,
			Priority:  150,
			AdvertInt: durationpb.New(time.Second),
			Version:   2,
			VirtualIpaddress: []*pb.VirtualAddress{
				{Prefix: "10.0.0.1/24", Dev: "eth0", Label: "eth0:vip", Scope: "global", Broadcast: "10.0.0.255"},
				{Prefix: "10.0.1.1/32", NoTrack: true},
			},
			UnicastSrcIp: "192.0.2.1",
			UnicastPeer:  []string{"192.0.2.2", "192.0.2.3"},
			PreemptDelay: durationpb.New(5 * time.Second),
			AuthType:     pb.AuthType_AUTH_TYPE_PASS,
			AuthPass:     "s3cret",
			StateHint:    pb.VrrpState_VRRP_STATE_MASTER,
			Garp: &pb.GarpSettings{
				MasterDelay:  durationpb.New(5 * time.Second),
				MasterRepeat: 5,
			},
			TrackInterface: []*pb.TrackInterface{{Name: "eth1", Weight: -20}},
			TrackScript:    []*pb.TrackScript{{Name: "chk_nginx", Weight: 10}},
			Notify:         &pb.Notify{Master: "/etc/keepalived/master.sh"},
		}},
		SyncGroups: []*pb.VrrpSyncGroup{{Name: "G1", Instances: []string{"VI_1"}}},
		Scripts: []*pb.VrrpScript{{
			Name: "chk_nginx", Script: "pidof nginx",
			Interval: durationpb.New(2 * time.Second), Rise: 2, Fall: 3,
		}},
	}
}

func TestConfigSnapshotRoundTrip(t *testing.T) {
	in := sampleSnapshot()
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(pb.ConfigSnapshot)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip changed the snapshot:\n in: %v\nout: %v", in, out)
	}
	if got := out.GetInstances()[0].GetAdvertInt().AsDuration(); got != time.Second {
		t.Errorf("advert_int = %v, want 1s", got)
	}
	// Unset messages read as zero values: a child can use the getters freely.
	var empty pb.VrrpInstance
	if empty.GetGarp().GetMasterRepeat() != 0 || empty.GetAdvertInt().AsDuration() != 0 {
		t.Error("getters on unset fields are not zero")
	}
}

// fakeVrrpd accepts a generation only if it is not older than the running one.
type fakeVrrpd struct {
	pb.UnimplementedVrrpdServer
	running uint64
}

func (f *fakeVrrpd) ApplyConfig(_ context.Context, s *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	if s.GetGeneration() < f.running {
		return nil, status.Errorf(codes.FailedPrecondition, "generation %d is older than %d", s.GetGeneration(), f.running)
	}
	f.running = s.GetGeneration()
	resp := &pb.ApplyConfigResponse{Generation: f.running}
	for _, in := range s.GetInstances() {
		resp.Added = append(resp.Added, in.GetName())
	}
	return resp, nil
}

func (f *fakeVrrpd) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	return &pb.StatusResponse{Generation: f.running, Instances: []*pb.InstanceStatus{{
		Name: "VI_1", State: pb.VrrpState_VRRP_STATE_MASTER, Priority: 150, EffectivePriority: 140,
		Counters: &pb.InstanceCounters{AdvertsSent: 3},
	}}}, nil
}

// TestVrrpdOverUnixSocket exercises the generated service code end to end
// over a Unix socket, the transport vrrpkit uses.
func TestVrrpdOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vrrpd.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterVrrpdServer(srv, &fakeVrrpd{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := pb.NewVrrpdClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := c.ApplyConfig(ctx, sampleSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetGeneration() != 7 || len(resp.GetAdded()) != 1 || resp.GetAdded()[0] != "VI_1" {
		t.Errorf("ApplyConfig = %v", resp)
	}
	_, err = c.ApplyConfig(ctx, &pb.ConfigSnapshot{Generation: 6})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("older generation: err = %v, want FailedPrecondition", err)
	}
	st, err := c.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetGeneration() != 7 || st.GetInstances()[0].GetCounters().GetAdvertsSent() != 3 {
		t.Errorf("Status = %v", st)
	}
}
