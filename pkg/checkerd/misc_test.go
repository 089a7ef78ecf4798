package checkerd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestAggregateMiscWeight: a misc_dynamic MISC_CHECK that is up sets the
// real server's weight (keepalived check_misc.c: exit status - 2); FILE_CHECK
// deltas stay in Value; a down server carries no weight.
func TestAggregateMiscWeight(t *testing.T) {
	misc := func(up bool, w int64, has bool) *rsCheck {
		return &rsCheck{sc: check.SnapshotCheck{Type: "MISC_CHECK"}, ran: true,
			last: check.Transition{Up: up, Result: check.Result{Up: up, Reason: "misc", Weight: w, HasWeight: has, WeightAbsolute: has}}}
	}
	file := &rsCheck{sc: check.SnapshotCheck{Type: "FILE_CHECK"}, ran: true,
		last: check.Transition{Up: true, Result: check.Result{Up: true, Reason: "file", Weight: 3, HasWeight: true}}}
	for _, tc := range []struct {
		name   string
		checks []*rsCheck
		weight uint32
		has    bool
		value  int64
	}{
		{"exit 7", []*rsCheck{misc(true, 5, true)}, 5, true, 0},
		{"exit 2", []*rsCheck{misc(true, 0, true)}, 0, true, 0},
		{"exit 0", []*rsCheck{misc(true, 0, false)}, 0, false, 0},
		{"with a file delta", []*rsCheck{misc(true, 5, true), file}, 5, true, 3},
		{"down", []*rsCheck{misc(true, 5, true), misc(false, 0, false)}, 0, false, 0},
	} {
		r := aggregate("rs", 10, tc.checks)
		if r.Weight != tc.weight || r.HasWeight != tc.has || r.Value != tc.value {
			t.Errorf("%s: weight %d (set %v) value %d, want %d (set %v) value %d", tc.name, r.Weight, r.HasWeight, r.Value, tc.weight, tc.has, tc.value)
		}
		if p := r.Proto(); (p.Weight != nil) != tc.has || p.GetWeight() != tc.weight {
			t.Errorf("%s: on the wire weight %v, want %d (set %v)", tc.name, p.Weight, tc.weight, tc.has)
		}
	}
}

// TestMiscCheckThroughRunner runs checkerd's MISC_CHECK against a real
// ScriptRunner on <run-dir>/scripts.sock (scriptrun.Server, the
// supervisor's, with a real Runner): the script reads a file that says its
// exit status; 0 is up, 1 down, and with misc_dynamic 7 is up at weight 5.
// checkerd sends the checker's name, never the command line.
func TestMiscCheckThroughRunner(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "status")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(status+".tmp", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(status+".tmp", status); err != nil {
			t.Fatal(err)
		}
	}
	write("0")
	const loop = 100 * time.Millisecond
	const id = "vs 10.0.0.1:80"
	rs := &pb.LvsRealServer{HealthId: id, Weight: 3, Checkers: []*pb.LvsChecker{{DefinedAt: "k.conf:9", Type: pb.LvsCheckerType_LVS_CHECKER_MISC,
		MiscPath: []string{"/bin/sh", "-c", "exit $(cat " + status + ")"}, MiscDynamic: true, MiscTimeout: durationpb.New(5 * time.Second),
		DelayLoop: durationpb.New(loop), DelayBeforeRetry: durationpb.New(loop)}}}
	snap := &pb.ConfigSnapshot{Generation: 1, VirtualServers: []*pb.VirtualServer{{Name: "vs", RealServers: []*pb.LvsRealServer{rs}}}}
	name := check.MiscScriptNames(rs)[0]

	var asked sync.Map // names the runner was asked for
	lookup := func(gen uint64, kind pb.ScriptKind, n string) (scriptrun.Command, error) {
		asked.Store(fmt.Sprintf("%d %v %s", gen, kind, n), true)
		if gen != 1 {
			return scriptrun.Command{}, scriptrun.ErrStaleGeneration
		}
		if kind != pb.ScriptKind_SCRIPT_KIND_MISC_CHECK || n != name {
			return scriptrun.Command{}, scriptrun.ErrUnknownScript
		}
		c := rs.GetCheckers()[0]
		return scriptrun.Command{Name: "MISC_CHECK", Args: c.GetMiscPath(), Timeout: c.GetMiscTimeout().AsDuration()}, nil
	}
	ln, err := ipc.Listen(filepath.Join(dir, ScriptsSocket), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterScriptRunnerServer(srv, scriptrun.NewServer(&scriptrun.Runner{Log: slog.New(slog.DiscardHandler)}, lookup))
	srvDone := make(chan struct{})
	go func() { defer close(srvDone); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-srvDone })

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, Options{RunDir: dir, Log: slog.New(slog.DiscardHandler), AllowUIDs: []uint32{uint32(os.Getuid())}})
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	var c pb.CheckerdClient
	for {
		conn, err := ipc.Dial(dctx, filepath.Join(dir, "checkerd.sock"))
		if err == nil {
			defer conn.Close()
			c = pb.NewCheckerdClient(conn)
			break
		}
		if dctx.Err() != nil {
			t.Fatalf("dial checkerd: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.ApplyConfig(dctx, snap); err != nil {
		t.Fatal(err)
	}
	h := followHealth(t, c)
	defer h.stop()
	kind := pb.TrackerKind_TRACKER_KIND_REAL_SERVER
	is := func(up bool, weight *uint32) func(*pb.HealthEvent) bool {
		return func(ev *pb.HealthEvent) bool {
			r := ev.GetResult()
			if r == nil || r.GetKind() != kind || r.GetName() != id || r.GetUp() != up || (r.Weight != nil) != (weight != nil) {
				return false
			}
			return weight == nil || r.GetWeight() == *weight
		}
	}
	five := uint32(5)
	h.next(t, "up at the configured weight (exit 0)", is(true, nil))
	write("7")
	ev := h.next(t, "up at weight 5 (exit 7)", is(true, &five))
	if d := ev.GetResult().GetDetail(); !strings.Contains(d, "weight 5") {
		t.Errorf("detail %q, want the weight", d)
	}
	write("1")
	ev = h.next(t, "down (exit 1)", is(false, nil))
	if d := ev.GetResult().GetDetail(); !strings.Contains(d, "status 1") {
		t.Errorf("detail %q, want the exit status", d)
	}
	write("0")
	h.next(t, "up again (exit 0)", is(true, nil))
	if _, ok := asked.Load(fmt.Sprintf("1 %v %s", pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, name)); !ok {
		t.Errorf("the runner was never asked for %q", name)
	}
	n := 0
	asked.Range(func(k, _ any) bool { n++; return true })
	if n != 1 {
		t.Errorf("the runner was asked for %d distinct scripts, want 1 (the MISC_CHECK's name)", n)
	}
}
