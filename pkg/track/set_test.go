package track

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestSetApplyDiff: unchanged trackers keep state and schedule (a moved
// block or a new weight is no change), changed ones restart, removed ones
// stop; generations as vrrpd's ApplyConfig.
func TestSetApplyDiff(t *testing.T) {
	clk := newFakeClock()
	r := newChanRunner()
	s := NewSet(Options{Clock: clk, Runner: r, Log: slog.New(&logRec{}), Proc: fakeProc{1: {comm: "nginx"}}})
	defer s.Close()
	dir := t.TempDir()
	script := &pb.VrrpScript{Name: "chk", DefinedAt: "k.conf:1", Interval: durationpb.New(testInterval), Rise: 1, Fall: 1, Weight: 10}
	file := &pb.VrrpTrackFile{Name: "f", DefinedAt: "k.conf:5", Path: filepath.Join(dir, "a")}
	proc := &pb.VrrpTrackProcess{Name: "p", Process: []string{"nginx"}, Quorum: 1}
	res, err := s.Apply(&pb.ConfigSnapshot{Generation: 1, Scripts: []*pb.VrrpScript{script},
		TrackFiles: []*pb.VrrpTrackFile{file}, TrackProcesses: []*pb.VrrpTrackProcess{proc}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"vrrp_script chk", "vrrp_track_file f", "vrrp_track_process p"}; !slices.Equal(res.Added, want) {
		t.Errorf("added %v, want %v", res.Added, want)
	}
	r.next(t).reply <- reply{res: scriptrun.Result{Duration: time.Millisecond}}
	waitFor(t, "script up", func() bool { got, _ := resultOf(s, scriptKey("chk")); return got.State == StateUp })

	// Generation 2: the script moved and got a new weight (unchanged), the
	// file has a new path (changed), the process tracker is gone.
	script2 := &pb.VrrpScript{Name: "chk", DefinedAt: "k.conf:20", Interval: durationpb.New(testInterval), Rise: 1, Fall: 1, Weight: -5}
	file2 := &pb.VrrpTrackFile{Name: "f", Path: filepath.Join(dir, "b")}
	snap2 := &pb.ConfigSnapshot{Generation: 2, Scripts: []*pb.VrrpScript{script2}, TrackFiles: []*pb.VrrpTrackFile{file2}}
	res, err = s.Apply(snap2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Unchanged, []string{"vrrp_script chk"}) || !slices.Equal(res.Changed, []string{"vrrp_track_file f"}) ||
		!slices.Equal(res.Removed, []string{"vrrp_track_process p"}) || len(res.Added) != 0 {
		t.Errorf("apply 2: %+v", res)
	}
	// The unchanged script kept its state and was not run again.
	if got, _ := resultOf(s, scriptKey("chk")); got.State != StateUp {
		t.Errorf("unchanged script: %v, want up kept", got.State)
	}
	r.noCall(t)
	if _, ok := resultOf(s, procKey("p")); ok {
		t.Error("removed process tracker still in the snapshot")
	}
	if g := s.Snapshot().Generation; g != 2 {
		t.Errorf("snapshot generation %d, want 2", g)
	}

	// The same generation again is a no-op; an older one is refused.
	if res, err := s.Apply(snap2); err != nil || len(res.Unchanged) != 2 {
		t.Errorf("re-apply of generation 2: %+v, %v", res, err)
	}
	if _, err := s.Apply(&pb.ConfigSnapshot{Generation: 1}); !errors.Is(err, ErrOldGeneration) {
		t.Errorf("generation 1 after 2: %v, want ErrOldGeneration", err)
	}
	// A bad snapshot changes nothing.
	var inv *InvalidSnapshotError
	_, err = s.Apply(&pb.ConfigSnapshot{Generation: 3, Scripts: []*pb.VrrpScript{script, script}})
	if !errors.As(err, &inv) {
		t.Errorf("duplicate script: %v, want InvalidSnapshotError", err)
	}
	if s.Generation() != 2 || len(s.Snapshot().Results) != 2 {
		t.Errorf("after a refused snapshot: generation %d, %d results", s.Generation(), len(s.Snapshot().Results))
	}
	// The script's next run goes on its old schedule.
	clk.Advance(testInterval)
	if c := r.next(t); c.gen != 2 {
		t.Errorf("next run with generation %d, want 2", c.gen)
	}
}

// TestSnapshotProto: a script without a result yet is not on the wire.
func TestSnapshotProto(t *testing.T) {
	snap := Snapshot{Results: []Result{
		{Key: scriptKey("a"), State: StateInit},
		{Key: fileKey("f"), State: StateUp, Value: 3, Detail: "value 3"},
		{Key: scriptKey("b"), State: StateDown},
	}}
	p := snap.Proto()
	if len(p.Results) != 2 || p.Results[0].GetName() != "f" || !p.Results[0].GetUp() || p.Results[0].GetValue() != 3 ||
		p.Results[1].GetName() != "b" || p.Results[1].GetUp() {
		t.Errorf("proto %v", p)
	}
}

// TestSetEventsOnApply: a follower subscribed before an apply learns the
// first result of every added or changed tracker.
func TestSetEventsOnApply(t *testing.T) {
	clk := newFakeClock()
	s := NewSet(Options{Clock: clk, Log: slog.New(&logRec{}), Proc: fakeProc{1: {comm: "nginx"}}})
	defer s.Close()
	_, sub := s.Subscribe()
	defer sub.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("5"), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func(gen uint64, path string) {
		t.Helper()
		if _, err := s.Apply(&pb.ConfigSnapshot{Generation: gen,
			TrackFiles:     []*pb.VrrpTrackFile{{Name: "f", Path: filepath.Join(dir, path)}},
			TrackProcesses: []*pb.VrrpTrackProcess{{Name: "p", Process: []string{"nginx"}, Quorum: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	next := func() Event {
		t.Helper()
		select {
		case ev := <-sub.C:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return Event{}
		}
	}
	apply(1, "a")
	got := map[Key]Event{}
	for range 2 {
		ev := next()
		got[ev.Result.Key] = ev
	}
	if ev := got[fileKey("f")]; ev.Generation != 1 || ev.Result.State != StateDown {
		t.Errorf("file added: %+v", ev)
	}
	if ev := got[procKey("p")]; ev.Generation != 1 || ev.Result.State != StateUp {
		t.Errorf("process added: %+v", ev)
	}
	apply(2, "b") // the file changes; the process tracker does not
	if ev := next(); ev.Generation != 2 || ev.Result.Key != fileKey("f") || ev.Result.Value != 5 {
		t.Errorf("file changed: %+v", ev)
	}
	select {
	case ev := <-sub.C:
		t.Errorf("unexpected event %+v", ev)
	default:
	}
}
