package vrrpd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeCheckerd serves Checkerd.Health: it sends its events, then holds the
// stream open until it is stopped.
type fakeCheckerd struct {
	pb.UnimplementedCheckerdServer
	events []*pb.HealthEvent
}

func (f *fakeCheckerd) Health(_ *pb.HealthRequest, stream pb.Checkerd_HealthServer) error {
	for _, ev := range f.events {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// serveCheckerd starts a fake checkerd on path; the returned func stops it.
func serveCheckerd(t *testing.T, path string, events ...*pb.HealthEvent) func() {
	t.Helper()
	ln, err := ipc.ListenConfig{Mode: 0o600, Allow: ipc.AllowUIDs(uint32(os.Getuid()))}.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterCheckerdServer(srv, &fakeCheckerd{events: events})
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	stop := func() { srv.Stop(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestHealthFollowerKeepsResults: vrrpd follows checkerd over its socket;
// when checkerd goes away the last results stay, and a restarted checkerd
// whose snapshot does not list a tracker yet changes no priority.
func TestHealthFollowerKeepsResults(t *testing.T) {
	r := newRig(t)
	cfg := vi1()
	cfg.TrackScript = []*pb.TrackScript{{Name: "chk", Weight: -20}, {Name: "other", Weight: 5}}
	r.apply(t, withScript(snapshot(1, cfg), "chk", "other"))
	path := filepath.Join(t.TempDir(), "checkerd.sock")
	stop := serveCheckerd(t, path, &pb.HealthEvent{Generation: 1, Event: &pb.HealthEvent_Snapshot{Snapshot: &pb.HealthSnapshot{
		Results: []*pb.TrackerResult{{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "chk", Up: false}}}}})
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		(&HealthFollower{Path: path, Sink: r.e, MinRetry: 5 * time.Millisecond, MaxRetry: 20 * time.Millisecond}).Run(ctx)
	}()
	defer func() { cancel(); <-followed }()
	prio := func() uint32 { return r.instance(t, "VI_1").GetEffectivePriority() }
	eventually(t, "chk's failure to lower the priority to 80", func() bool { return prio() == 80 })

	stop() // checkerd dies
	serveCheckerd(t, path, &pb.HealthEvent{Generation: 1, Event: &pb.HealthEvent_Snapshot{Snapshot: &pb.HealthSnapshot{
		Results: []*pb.TrackerResult{{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "other", Up: true}}}}})
	eventually(t, "the restarted checkerd's snapshot", func() bool {
		for _, tr := range r.instance(t, "VI_1").GetTracking() {
			if tr.GetName() == "other" && tr.GetDelta() == 5 {
				return true
			}
		}
		return false
	})
	if p := prio(); p != 85 {
		t.Fatalf("priority %d after checkerd restarted, want 85: chk's last result (-20) kept, other's +5 added", p)
	}
}
