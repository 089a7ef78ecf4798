package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// The test binary doubles as a fake vrrpd: started through a symlink named
// "vrrpd" (the supervisor passes its child no environment to switch on),
// it serves the Vrrpd service on the run directory's socket.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "vrrpd" {
		os.Exit(fakeVrrpdMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeVrrpd applies any snapshot, writing it to
// <run-dir>/applied-<pid>-<generation> for the test to read, and streams
// events: a snapshot (MASTER where state MASTER or resume_master says so),
// then, on a fresh start, VI_2 BACKUP -> MASTER.
type fakeVrrpd struct {
	pb.UnimplementedVrrpdServer
	dir string
	mu  sync.Mutex
	cur *pb.ConfigSnapshot
	// applied is closed by the first ApplyConfig: Events waits for it, so
	// that its snapshot and transitions are those of a configured vrrpd
	// (the real one sends an empty snapshot first, then the transitions of
	// the instances as they start).
	applied   chan struct{}
	closeOnce sync.Once
}

func fakeVrrpdMain(args []string) int {
	fs := flag.NewFlagSet("vrrpd", flag.ContinueOnError)
	dir := fs.String("run-dir", "", "")
	fs.String("log-level", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := ipc.Listen(rundir.Dir(*dir).Vrrpd(), 0o600, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake vrrpd:", err)
		return 1
	}
	srv := ipc.NewServer()
	pb.RegisterVrrpdServer(srv, &fakeVrrpd{dir: *dir, applied: make(chan struct{})})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	_ = srv.Serve(ln)
	return 0
}

func (f *fakeVrrpd) ApplyConfig(_ context.Context, s *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	b, err := proto.Marshal(s)
	if err != nil {
		return nil, err
	}
	name := filepath.Join(f.dir, fmt.Sprintf("applied-%d-%d", os.Getpid(), s.GetGeneration()))
	if err := os.WriteFile(name+".tmp", b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(name+".tmp", name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.cur = s
	f.mu.Unlock()
	f.closeOnce.Do(func() { close(f.applied) })
	return &pb.ApplyConfigResponse{Generation: s.GetGeneration()}, nil
}

func (f *fakeVrrpd) Events(_ *pb.EventsRequest, stream pb.Vrrpd_EventsServer) error {
	select {
	case <-f.applied:
	case <-stream.Context().Done():
		return nil
	}
	f.mu.Lock()
	cur := f.cur
	f.mu.Unlock()
	snap := &pb.EventSnapshot{}
	for _, in := range cur.GetInstances() {
		st := pb.VrrpState_VRRP_STATE_BACKUP
		if in.GetStateHint() == pb.VrrpState_VRRP_STATE_MASTER || slices.Contains(cur.GetResumeMaster(), in.GetName()) {
			st = pb.VrrpState_VRRP_STATE_MASTER
		}
		snap.Instances = append(snap.Instances, &pb.InstanceState{Name: in.GetName(), State: st})
	}
	evs := []*pb.VrrpEvent{{Seq: 1, Generation: cur.GetGeneration(), Event: &pb.VrrpEvent_Snapshot{Snapshot: snap}}}
	if len(cur.GetResumeMaster()) == 0 {
		evs = append(evs, &pb.VrrpEvent{Seq: 2, Generation: cur.GetGeneration(), Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{
			Instance: "VI_2", From: pb.VrrpState_VRRP_STATE_BACKUP, To: pb.VrrpState_VRRP_STATE_MASTER, Reason: "master down timer expired", Priority: 100}}})
	}
	for _, ev := range evs {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeVrrpd) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &pb.StatusResponse{Generation: f.cur.GetGeneration()}, nil
}

// notifySocket is systemd's end of sd_notify(3): a unixgram socket that
// collects every datagram.
type notifySocket struct {
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T, path string) *notifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifySocket{}
	done := make(chan struct{})
	go func() { // owned by the test: ends when Cleanup closes c
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			ns.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return ns
}

// find returns the first message with a line that starts with prefix and
// contains every one of parts.
func (ns *notifySocket) find(prefix string, parts ...string) (string, bool) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	for _, m := range ns.msgs {
		for _, line := range strings.Split(m, "\n") {
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return m, true
			}
		}
	}
	return "", false
}

func (ns *notifySocket) count(line string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	n := 0
	for _, m := range ns.msgs {
		if slices.Contains(strings.Split(m, "\n"), line) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// TestDaemonNotifyAndResume runs the real supervisor daemon with a fake
// vrrpd under a NOTIFY_SOCKET of its own: it must hear READY=1 with STATUS=
// once generation 1 is applied, WATCHDOG=1 at half of WATCHDOG_USEC and
// STOPPING=1 at shutdown; and a vrrpd killed while master of VI_1 (from its
// state) and VI_2 (from a transition) must be restarted with both in
// resume_master.
func TestDaemonNotifyAndResume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the supervisor hands vrrpd ambient capabilities: needs root")
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	vrrpd := filepath.Join(dir, "vrrpd")
	if err := os.Symlink(self, vrrpd); err != nil {
		t.Fatal(err)
	}
	ns := listenNotify(t, filepath.Join(dir, "notify.sock"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify.sock"))
	t.Setenv("WATCHDOG_USEC", "100000") // 100 ms: pings every 50 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`vrrp_instance VI_1 {
    state MASTER
    interface lo
    virtual_router_id 1
    virtual_ipaddress { 192.0.2.1/32 }
}
vrrp_instance VI_2 {
    interface lo
    virtual_router_id 2
    virtual_ipaddress { 192.0.2.2/32 }
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Parse(conf, config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	runDir := filepath.Join(dir, "run")
	o := &options{file: conf, runDir: runDir, vrrpdPath: vrrpd, logLevel: "info", checkerdPath: "none"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := make(chan int, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		rc <- serve(ctx, o, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), make(chan struct{}))
	}()
	// A failure midway must still stop serve (and its vrrpd) before the
	// test's directory goes and its logger is gone.
	t.Cleanup(func() { cancel(); <-served })

	waitFor(t, "READY=1", func() bool { _, ok := ns.find("READY=1"); return ok })
	ready, _ := ns.find("READY=1")
	if !strings.Contains(ready, "STATUS=generation 1 applied; vrrpd pid ") {
		t.Errorf("READY=1 came without the status line: %q", ready)
	}
	applied, _ := filepath.Glob(filepath.Join(runDir, "applied-*-1"))
	if len(applied) != 1 {
		t.Fatalf("READY=1 before vrrpd applied generation 1 (applied: %q)", applied)
	}
	if s := readApplied(t, applied[0]); len(s.GetResumeMaster()) != 0 {
		t.Errorf("fresh start: resume_master = %q, want none", s.GetResumeMaster())
	}
	waitFor(t, "STATUS= with VI_2's transition", func() bool {
		_, ok := ns.find("STATUS=generation 1 applied; vrrpd pid ", "2 instances: 2 MASTER")
		return ok
	})
	waitFor(t, "two WATCHDOG=1", func() bool { return ns.count("WATCHDOG=1") >= 2 })

	// Crash vrrpd: the restarted one must resume both masters.
	st := supervisorStatus(t, rundir.Dir(runDir))
	if len(st.GetChildren()) != 1 || st.GetChildren()[0].GetName() != "vrrpd" || !st.GetChildren()[0].GetRunning() {
		t.Fatalf("status children = %v", st.GetChildren())
	}
	pid := int(st.GetChildren()[0].GetPid())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var again *pb.ConfigSnapshot
	waitFor(t, "the restarted vrrpd's snapshot", func() bool {
		m, _ := filepath.Glob(filepath.Join(runDir, "applied-*-1"))
		for _, name := range m {
			if !strings.Contains(name, fmt.Sprintf("applied-%d-", pid)) {
				again = readApplied(t, name)
				return true
			}
		}
		return false
	})
	if got, want := again.GetResumeMaster(), []string{"VI_1", "VI_2"}; !slices.Equal(got, want) {
		t.Errorf("after a crash: resume_master = %q, want %q", got, want)
	}
	waitFor(t, "status of the restarted vrrpd", func() bool {
		c := supervisorStatus(t, rundir.Dir(runDir)).GetChildren()[0]
		return c.GetRunning() && int(c.GetPid()) != pid && c.GetRestarts() == 1
	})

	cancel()
	if code := <-rc; code != 0 {
		t.Errorf("serve returned %d, want 0", code)
	}
	if _, ok := ns.find("STOPPING=1"); !ok {
		t.Error("no STOPPING=1 at shutdown")
	}
}

func readApplied(t *testing.T, name string) *pb.ConfigSnapshot {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := &pb.ConfigSnapshot{}
	if err := proto.Unmarshal(b, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func supervisorStatus(t *testing.T, dir rundir.Dir) *pb.SupervisorStatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := ipc.Dial(ctx, dir.Control())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := pb.NewSupervisorClient(conn).Status(ctx, &pb.SupervisorStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// refusingVrrpd answers every ApplyConfig with one error code.
type refusingVrrpd struct {
	pb.UnimplementedVrrpdServer
	code  codes.Code
	mu    sync.Mutex
	calls int
}

func (r *refusingVrrpd) ApplyConfig(context.Context, *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	return nil, status.Error(r.code, "refused by the test")
}

// TestPushDoesNotRetryRefusals: InvalidArgument and FailedPrecondition say
// that the same snapshot can never be applied; push gives up at once and
// sends no READY=1, where Unavailable-like errors are retried.
func TestPushDoesNotRetryRefusals(t *testing.T) {
	for _, code := range []codes.Code{codes.InvalidArgument, codes.FailedPrecondition} {
		t.Run(code.String(), func(t *testing.T) {
			dir := rundir.Dir(t.TempDir())
			ln, err := ipc.Listen(dir.Vrrpd(), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			fake := &refusingVrrpd{code: code}
			srv := ipc.NewServer()
			pb.RegisterVrrpdServer(srv, fake)
			served := make(chan struct{})
			go func() {
				defer close(served)
				_ = srv.Serve(ln)
			}()
			t.Cleanup(func() {
				srv.Stop()
				<-served
			})
			var notes []string
			d := &daemon{
				log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), opts: &options{}, dir: dir,
				current: &pb.ConfigSnapshot{Generation: 1}, gen: 1, children: map[string]*childInfo{childVrrpd: {running: true}},
				notify: func(s string) { notes = append(notes, s) },
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			d.push(ctx)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("push took %v: it retried until its deadline", took)
			}
			if fake.calls != 1 {
				t.Errorf("ApplyConfig called %d times, want 1", fake.calls)
			}
			for _, n := range notes {
				if strings.Contains(n, "READY=1") {
					t.Errorf("READY=1 after a refused push: %q", n)
				}
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	env := map[string]string{"GOGC": "80", "HOME": "/root", "GODEBUG": "gctrace=1", "NOTIFY_SOCKET": "/run/x"}
	got := childEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	want := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOGC=80", "GODEBUG=gctrace=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("childEnv = %q, want %q", got, want)
	}
}

func TestAllowCheckerPing(t *testing.T) {
	withPing, diags := config.ParseBytes("k.conf", []byte(`virtual_server 192.0.2.1 80 {
    real_server 192.0.2.10 80 {
        PING_CHECK {
        }
    }
}
`), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	without, _ := config.ParseBytes("k.conf", []byte("global_defs {\n}\n"), config.Options{})
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	for _, c := range []struct {
		cfg       *config.Config
		was, want string
	}{
		{withPing, "1 0", "65534 65534"},           // Debian's closed default
		{withPing, "0 100", "0 65534"},             // widened up to the group
		{withPing, "0 2147483647", "0 2147483647"}, // already covers it: untouched
		{without, "1 0", "1 0"},                    // no PING_CHECK: untouched
	} {
		path := filepath.Join(t.TempDir(), "ping_group_range")
		if err := os.WriteFile(path, []byte(c.was+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		allowCheckerPing(c.cfg, 65534, log, path)
		got, _ := os.ReadFile(path)
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("from %q: %q, want %q", c.was, strings.TrimSpace(string(got)), c.want)
		}
	}
}
