package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/checkerd"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// syncBuffer is a bytes.Buffer safe for the child's stderr copier and the
// test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type scripts struct {
	pb.UnimplementedScriptRunnerServer
}

func (scripts) RunScript(context.Context, *pb.RunScriptRequest) (*pb.RunScriptResponse, error) {
	return &pb.RunScriptResponse{ExitStatus: 0, Duration: durationpb.New(time.Millisecond)}, nil
}

const nobody = 65534

// TestRunsAsNobodyWithPassedListener builds checkerd and runs it as uid
// 65534 with no capabilities, as the supervisor will: the listening socket
// is made by the test (root) and passed as fd 3 with LISTEN_FDS=1 and no
// LISTEN_PID (see package checkerd). checkerd must serve on it, run a
// script through the runner socket, say clearly that it cannot read a
// root-only track file, and exit 0 on SIGTERM.
func TestRunsAsNobodyWithPassedListener(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a process as uid 65534")
	}
	// A directory nobody can enter, for the binary and the sockets.
	dir, err := os.MkdirTemp("", "track-checkerd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "checkerd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The supervisor's side: the ScriptRunner socket, and checkerd's
	// listening socket, both made by root.
	sln, err := ipc.Listen(filepath.Join(dir, checkerd.ScriptsSocket), 0o666, nil)
	if err != nil {
		t.Fatal(err)
	}
	ssrv := ipc.NewServer()
	pb.RegisterScriptRunnerServer(ssrv, scripts{})
	sdone := make(chan struct{})
	go func() {
		defer close(sdone)
		ssrv.Serve(sln)
	}()
	defer func() {
		ssrv.Stop()
		<-sdone
	}()
	sock := filepath.Join(dir, "checkerd.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()

	secret := filepath.Join(dir, "root-only")
	if err := os.WriteFile(secret, []byte("5\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var stderr syncBuffer
	cmd := exec.Command(bin, "-run-dir", dir, "-log-level", "debug")
	cmd.Env = []string{"LISTEN_FDS=1", "PATH=/usr/bin:/bin"}
	cmd.ExtraFiles = []*os.File{lf} // fd 3
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("checkerd stderr:\n%s", stderr.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := ipc.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := pb.NewCheckerdClient(cc)
	if _, err := c.ApplyConfig(ctx, &pb.ConfigSnapshot{Generation: 1,
		Scripts:    []*pb.VrrpScript{{Name: "chk", Interval: durationpb.New(200 * time.Millisecond), Rise: 1, Fall: 1}},
		TrackFiles: []*pb.VrrpTrackFile{{Name: "secret", Path: secret, Weight: 1}},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Health(ctx, &pb.HealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	scriptUp := false
	for !scriptUp {
		ev, err := st.Recv()
		if err != nil {
			t.Fatalf("health: %v", err)
		}
		for _, r := range append(ev.GetSnapshot().GetResults(), ev.GetResult()) {
			if r.GetKind() == pb.TrackerKind_TRACKER_KIND_SCRIPT && r.GetUp() {
				scriptUp = true
			}
			if r.GetKind() == pb.TrackerKind_TRACKER_KIND_FILE && r.GetValue() != 0 {
				t.Errorf("nobody read a root-only file: %v", r)
			}
		}
	}
	// It really runs as nobody, with no capabilities.
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534", "CapEff:\t0000000000000000"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("/proc/PID/status lacks %q", want)
		}
	}
	if !strings.Contains(stderr.String(), "checkerd runs as uid 65534") {
		t.Errorf("no hint about checkerd's user for the unreadable file")
	}
	if !strings.Contains(stderr.String(), "inherited fd 3") {
		t.Errorf("checkerd did not say it serves the inherited listener")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatal("checkerd did not stop within 10s of SIGTERM")
	}
}
