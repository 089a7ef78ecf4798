package resume

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

const (
	master = pb.VrrpState_VRRP_STATE_MASTER
	backup = pb.VrrpState_VRRP_STATE_BACKUP
	fault  = pb.VrrpState_VRRP_STATE_FAULT
)

func snap(states map[string]pb.VrrpState) *pb.VrrpEvent {
	s := &pb.EventSnapshot{}
	for name, st := range states {
		s.Instances = append(s.Instances, &pb.InstanceState{Name: name, State: st})
	}
	return &pb.VrrpEvent{Event: &pb.VrrpEvent_Snapshot{Snapshot: s}}
}

func trans(name string, from, to pb.VrrpState) *pb.VrrpEvent {
	return &pb.VrrpEvent{Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{Instance: name, From: from, To: to, Reason: "test"}}}
}

func addr(name string, held bool) *pb.VrrpEvent {
	return &pb.VrrpEvent{Event: &pb.VrrpEvent_Address{Address: &pb.AddressChange{Instance: name, Prefix: "192.0.2.1/24", Held: held}}}
}

func TestRecord(t *testing.T) {
	for _, c := range []struct {
		name        string
		events      []*pb.VrrpEvent
		wantMasters []string
		wantSummary string
	}{
		{"fresh start: nothing to resume", nil, nil, "no instances"},
		{"snapshot", []*pb.VrrpEvent{snap(map[string]pb.VrrpState{"A": master, "B": backup})}, []string{"A"}, "2 instances: 1 MASTER, 1 BACKUP"},
		{"transition to master", []*pb.VrrpEvent{snap(map[string]pb.VrrpState{"A": master, "B": backup}), trans("B", backup, master)}, []string{"A", "B"}, "2 instances: 2 MASTER"},
		{"transition out of master", []*pb.VrrpEvent{snap(map[string]pb.VrrpState{"A": master}), trans("A", master, fault)}, nil, "1 instance: 1 FAULT"},
		{"a new snapshot replaces the record", []*pb.VrrpEvent{snap(map[string]pb.VrrpState{"A": master, "B": master}), snap(map[string]pb.VrrpState{"C": master})}, []string{"C"}, "1 instance: 1 MASTER"},
		{"address changes do not change state", []*pb.VrrpEvent{snap(map[string]pb.VrrpState{"A": backup}), addr("A", true)}, nil, "1 instance: 1 BACKUP"},
		{"transition before any snapshot", []*pb.VrrpEvent{trans("A", backup, master)}, []string{"A"}, "1 instance: 1 MASTER"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r Record
			for _, ev := range c.events {
				r.Apply(ev)
			}
			if got := r.Masters(); !slices.Equal(got, c.wantMasters) {
				t.Errorf("Masters() = %q, want %q", got, c.wantMasters)
			}
			if got := r.Summary(); got != c.wantSummary {
				t.Errorf("Summary() = %q, want %q", got, c.wantSummary)
			}
		})
	}
}

// fakeVrrpd streams script on each Events call, then holds the stream
// open until its connection is closed or stop is closed.
type fakeVrrpd struct {
	pb.UnimplementedVrrpdServer
	script []*pb.VrrpEvent
	mu     sync.Mutex
	calls  int
	stop   chan struct{}
}

func (f *fakeVrrpd) Events(_ *pb.EventsRequest, stream pb.Vrrpd_EventsServer) error {
	f.mu.Lock()
	f.calls++
	calls := f.calls
	f.mu.Unlock()
	for i, ev := range f.script {
		ev.Seq = uint64(i + 1)
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	if calls == 1 {
		return nil // the first stream ends at once: the follower must reconnect
	}
	select {
	case <-stream.Context().Done():
	case <-f.stop:
	}
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFollowerKeepsMastersAfterCrash follows a fake vrrpd that streams a
// snapshot and transitions, then dies; the record still names the masters
// it held, which is what the next snapshot's resume_master carries.
func TestFollowerKeepsMastersAfterCrash(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vrrpd.sock")
	ln, err := ipc.Listen(sock, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeVrrpd{stop: make(chan struct{}), script: []*pb.VrrpEvent{
		snap(map[string]pb.VrrpState{"VI_1": master, "VI_2": backup, "VI_3": master}),
		trans("VI_2", backup, master),
		trans("VI_3", master, backup),
		addr("VI_2", true),
	}}
	srv := ipc.NewServer()
	pb.RegisterVrrpdServer(srv, fake)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()

	var rec Record
	var mu sync.Mutex
	var seen int
	f := &Follower{Path: sock, Record: &rec, Retry: 5 * time.Millisecond, OnEvent: func(*pb.VrrpEvent) {
		mu.Lock()
		seen++
		mu.Unlock()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// Two streams of four events: the follower reconnected after the first.
	waitFor(t, "both streams", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen == 2*len(fake.script)
	})
	// vrrpd crashes: its server goes away mid-stream.
	srv.Stop()
	<-served
	if got, want := rec.Masters(), []string{"VI_1", "VI_2"}; !slices.Equal(got, want) {
		t.Errorf("resume set after the crash = %q, want %q", got, want)
	}
}
