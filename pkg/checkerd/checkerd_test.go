package checkerd

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/track"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func TestMainFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{args: []string{"-run-dir", "/nonexistent/dir"}, code: 1, err: "checkerd socket"},
		{args: []string{"-version"}, code: 0, out: "checkerd dev"},
		{args: []string{"-h"}, code: 0, err: "-run-dir"},
		{args: []string{"-log-level", "loud"}, code: 2, err: "-log-level"},
		{args: []string{"-proc-interval", "0s"}, code: 2, err: "-proc-interval"},
		{args: []string{"-no-such-flag"}, code: 2, err: "no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(tc.args, &stdout, &stderr, "dev")
		if code != tc.code || !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, stdout ~ %q, stderr ~ %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out, tc.err)
		}
	}
}

// fakeScripts is a real gRPC ScriptRunner server: every script exits with
// the status the test sets.
type fakeScripts struct {
	pb.UnimplementedScriptRunnerServer
	exit  atomic.Int32
	calls atomic.Int32
	gen   atomic.Uint64
}

func (f *fakeScripts) RunScript(_ context.Context, req *pb.RunScriptRequest) (*pb.RunScriptResponse, error) {
	f.calls.Add(1)
	f.gen.Store(req.GetGeneration())
	if req.GetKind() != pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT || req.GetName() != "chk" {
		return nil, status.Errorf(codes.NotFound, "no script %v %q", req.GetKind(), req.GetName())
	}
	return &pb.RunScriptResponse{ExitStatus: f.exit.Load(), Duration: durationpb.New(time.Millisecond)}, nil
}

// startFakeScripts serves f on <dir>/scripts.sock, open to everyone.
func startFakeScripts(t *testing.T, dir string, f *fakeScripts) {
	t.Helper()
	ln, err := ipc.Listen(filepath.Join(dir, ScriptsSocket), 0o666, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterScriptRunnerServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
}

// health follows a Health stream in the background.
type health struct {
	events chan *pb.HealthEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func followHealth(t *testing.T, c pb.CheckerdClient) *health {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := c.Health(ctx, &pb.HealthRequest{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h := &health{events: make(chan *pb.HealthEvent, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer close(h.events)
		for {
			ev, err := st.Recv()
			if err != nil {
				return
			}
			h.events <- ev
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *health) stop() {
	h.cancel()
	<-h.done
}

// next returns the next event that satisfies match (earlier ones skipped).
func (h *health) next(t *testing.T, what string, match func(*pb.HealthEvent) bool) *pb.HealthEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-h.events:
			if !ok {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within 10s", what)
		}
	}
}

func resultIs(kind pb.TrackerKind, name string, up bool, value int64) func(*pb.HealthEvent) bool {
	return func(ev *pb.HealthEvent) bool {
		r := ev.GetResult()
		return r != nil && r.GetKind() == kind && r.GetName() == name && r.GetUp() == up && r.GetValue() == value
	}
}

func findResult(s *pb.HealthSnapshot, kind pb.TrackerKind, name string) *pb.TrackerResult {
	for _, r := range s.GetResults() {
		if r.GetKind() == kind && r.GetName() == name {
			return r
		}
	}
	return nil
}

func selfComm(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc/self/comm")
	}
	return strings.TrimSpace(string(b))
}

// TestServe runs checkerd on a temp run directory with a fake script
// runner, applies a script, a file and a process tracker, and follows
// Health through changes and a reconnect.
func TestServe(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("checkerd serves uid 0 only; run as root")
	}
	dir := t.TempDir()
	scripts := &fakeScripts{}
	startFakeScripts(t, dir, scripts)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, Options{RunDir: dir, ProcInterval: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	var cc interface{ Close() error }
	var c pb.CheckerdClient
	for {
		conn, err := ipc.Dial(dctx, filepath.Join(dir, "checkerd.sock"))
		if err == nil {
			cc, c = conn, pb.NewCheckerdClient(conn)
			break
		}
		if dctx.Err() != nil {
			t.Fatalf("dial checkerd: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer cc.Close()

	file := filepath.Join(dir, "weight")
	if err := os.WriteFile(file, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := &pb.ConfigSnapshot{Generation: 2,
		Scripts: []*pb.VrrpScript{{Name: "chk", Script: "/bin/true", Interval: durationpb.New(100 * time.Millisecond),
			Timeout: durationpb.New(time.Second), Rise: 1, Fall: 1}},
		TrackFiles:     []*pb.VrrpTrackFile{{Name: "f", Path: file, Weight: 1}},
		TrackProcesses: []*pb.VrrpTrackProcess{{Name: "p", Process: []string{selfComm(t)}, Quorum: 1}},
	}
	resp, err := c.ApplyConfig(dctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetGeneration() != 2 || len(resp.GetAdded()) != 3 {
		t.Fatalf("apply: %v", resp)
	}

	h := followHealth(t, c)
	first := h.next(t, "snapshot", func(ev *pb.HealthEvent) bool { return ev.GetSnapshot() != nil })
	if first.GetSeq() != 1 || first.GetGeneration() != 2 || first.GetAt() == nil {
		t.Errorf("first event: seq %d generation %d at %v", first.GetSeq(), first.GetGeneration(), first.GetAt())
	}
	if r := findResult(first.GetSnapshot(), pb.TrackerKind_TRACKER_KIND_FILE, "f"); r == nil || !r.GetUp() || r.GetValue() != 3 {
		t.Errorf("file in the snapshot: %v", r)
	}
	if r := findResult(first.GetSnapshot(), pb.TrackerKind_TRACKER_KIND_PROCESS, "p"); r == nil || !r.GetUp() {
		t.Errorf("process in the snapshot: %v", r)
	}
	// The script is up once it ran (before that it is absent: init).
	if findResult(first.GetSnapshot(), pb.TrackerKind_TRACKER_KIND_SCRIPT, "chk") == nil {
		h.next(t, "script up", resultIs(pb.TrackerKind_TRACKER_KIND_SCRIPT, "chk", true, 0))
	}
	if g := scripts.gen.Load(); g != 2 {
		t.Errorf("script run with generation %d, want 2", g)
	}

	// The script starts failing.
	scripts.exit.Store(1)
	ev := h.next(t, "script down", resultIs(pb.TrackerKind_TRACKER_KIND_SCRIPT, "chk", false, 0))
	if ev.GetGeneration() != 2 || ev.GetSeq() < 2 || !strings.Contains(ev.GetResult().GetDetail(), "exit status 1") {
		t.Errorf("script down event: %v", ev)
	}
	// The file changes.
	if err := os.WriteFile(file, []byte("-8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.next(t, "file -8", resultIs(pb.TrackerKind_TRACKER_KIND_FILE, "f", true, -8))
	h.stop()

	// A reconnect gets a fresh snapshot with everything as it is now.
	h2 := followHealth(t, c)
	s2 := h2.next(t, "second snapshot", func(ev *pb.HealthEvent) bool { return ev.GetSnapshot() != nil }).GetSnapshot()
	if r := findResult(s2, pb.TrackerKind_TRACKER_KIND_SCRIPT, "chk"); r == nil || r.GetUp() {
		t.Errorf("script in the second snapshot: %v", r)
	}
	if r := findResult(s2, pb.TrackerKind_TRACKER_KIND_FILE, "f"); r == nil || r.GetValue() != -8 {
		t.Errorf("file in the second snapshot: %v", r)
	}

	// An older generation is refused; the same one is a no-op.
	if _, err := c.ApplyConfig(dctx, &pb.ConfigSnapshot{Generation: 1}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("generation 1 after 2: %v, want FailedPrecondition", err)
	}
	if resp, err := c.ApplyConfig(dctx, snap); err != nil || len(resp.GetUnchanged()) != 3 {
		t.Errorf("re-apply: %v, %v", resp, err)
	}
	// A bad snapshot is InvalidArgument.
	bad := &pb.ConfigSnapshot{Generation: 3, TrackFiles: []*pb.VrrpTrackFile{{Name: "g"}}}
	if _, err := c.ApplyConfig(dctx, bad); status.Code(err) != codes.InvalidArgument {
		t.Errorf("file without a path: %v, want InvalidArgument", err)
	}
}

// TestPeerCheck: a uid outside AllowUIDs is refused every RPC.
func TestPeerCheck(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	// Allow a uid that is not ours: the ipc.Listener refuses us at accept.
	go func() {
		served <- Serve(ctx, Options{RunDir: dir, AllowUIDs: []uint32{4242424}, Runner: nil, Log: slog.New(slog.DiscardHandler)})
	}()
	defer func() {
		cancel()
		<-served
	}()
	sock := filepath.Join(dir, "checkerd.sock")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkerd socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer dcancel()
	if conn, err := ipc.Dial(dctx, sock); err == nil {
		conn.Close()
		t.Fatal("a refused uid got a connection")
	}
}

// TestInheritedEnv: which LISTEN_* environments give the inherited fd.
func TestInheritedEnv(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	// LISTEN_PID naming another process: not ours, no listener, no error.
	ln, err := inherited(env(map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1"}), log)
	if ln != nil || err != nil {
		t.Errorf("LISTEN_PID=1: %v, %v; want nil, nil", ln, err)
	}
	// More than one fd is not what the supervisor passes.
	if _, err := inherited(env(map[string]string{"LISTEN_FDS": "2"}), log); err == nil {
		t.Error("LISTEN_FDS=2: no error")
	}
}

// TestPeerCheckInterceptor: on a listener that does not check peers (an
// inherited one), the interceptors refuse a uid that is not allowed.
func TestPeerCheckInterceptor(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "x.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer(peerCheck(ipc.AllowUIDs(4242424))...)
	set := track.NewSet(track.Options{Log: slog.New(slog.DiscardHandler)})
	defer set.Close()
	pb.RegisterCheckerdServer(srv, NewServer(set, nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	defer func() {
		srv.Stop()
		<-done
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc, err := ipc.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := pb.NewCheckerdClient(cc)
	if _, err := c.ApplyConfig(ctx, &pb.ConfigSnapshot{Generation: 1}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ApplyConfig: %v, want PermissionDenied", err)
	}
	st, err := c.Health(ctx, &pb.HealthRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Health: %v, want PermissionDenied", err)
	}
}
