package ipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// The test binary doubles as a client run under another uid: with envDial
// set, TestMain dials that socket, calls Vrrpd.Status and prints the answer.
const (
	envDial    = "IPC_TEST_DIAL"
	envTimeout = "IPC_TEST_TIMEOUT_MS"
	envMethod  = "IPC_TEST_METHOD" // "ApplyConfig" calls that instead
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envDial); path != "" {
		ms, _ := strconv.Atoi(os.Getenv(envTimeout))
		switch os.Getenv(envMethod) {
		case "ApplyConfig":
			fmt.Println(callApply(path, time.Duration(ms)*time.Millisecond))
			os.Exit(0)
		case "Events":
			fmt.Println(callEvents(path, time.Duration(ms)*time.Millisecond))
			os.Exit(0)
		}
		fmt.Println(callStatus(path, time.Duration(ms)*time.Millisecond))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// callStatus dials path and returns "ok <the server's view of us>" or
// "error <why>".
func callStatus(path string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc, err := Dial(ctx, path)
	if err != nil {
		return "error " + err.Error()
	}
	defer cc.Close()
	resp, err := v1.NewVrrpdClient(cc).Status(ctx, &v1.StatusRequest{})
	if err != nil {
		return "error " + err.Error()
	}
	return "ok " + resp.GetInstances()[0].GetName()
}

// callApply dials path and calls Vrrpd.ApplyConfig, which fakeVrrpd does
// not implement: "error <why>".
func callApply(path string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc, err := Dial(ctx, path)
	if err != nil {
		return "error " + err.Error()
	}
	defer cc.Close()
	_, err = v1.NewVrrpdClient(cc).ApplyConfig(ctx, &v1.ConfigSnapshot{})
	return fmt.Sprintf("error %v", err)
}

// callEvents dials path, opens Vrrpd.Events (a stream) and reads once.
func callEvents(path string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc, err := Dial(ctx, path)
	if err != nil {
		return "error " + err.Error()
	}
	defer cc.Close()
	st, err := v1.NewVrrpdClient(cc).Events(ctx, &v1.EventsRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	return fmt.Sprintf("error %v", err)
}

// fakeVrrpd answers Status with the caller's credentials as the name of its
// only instance.
type fakeVrrpd struct {
	v1.UnimplementedVrrpdServer
}

func (fakeVrrpd) Status(ctx context.Context, _ *v1.StatusRequest) (*v1.StatusResponse, error) {
	p, ok := PeerFromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer credentials")
	}
	return &v1.StatusResponse{Instances: []*v1.InstanceStatus{{Name: peerName(p)}}}, nil
}

func peerName(p Peer) string { return fmt.Sprintf("pid=%d uid=%d gid=%d", p.PID, p.UID, p.GID) }

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve runs a fake vrrpd on path and returns its log.
func serve(t *testing.T, path string, lc ListenConfig, opts ...grpc.ServerOption) *logBuffer {
	t.Helper()
	logs := &logBuffer{}
	lc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	l, err := lc.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(opts...)
	v1.RegisterVrrpdServer(s, fakeVrrpd{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return logs
}

// sharedDir returns a directory any uid can reach.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipc-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPeerFromContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vrrpd.sock")
	serve(t, path, ListenConfig{Mode: 0o600})
	got := callStatus(path, 5*time.Second)
	want := "ok " + peerName(Peer{PID: int32(os.Getpid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// runClient runs callStatus in a copy of the test binary as uid/gid 65534
// and returns its answer and its pid.
func runClient(t *testing.T, exe, path string, timeout time.Duration) (string, int) {
	t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = []string{envDial + "=" + path, envTimeout + "=" + strconv.Itoa(int(timeout/time.Millisecond))}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("client: %v: %s", err, out.String())
	}
	return strings.TrimSpace(out.String()), cmd.Process.Pid
}

func TestOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as uid 65534")
	}
	dir := sharedDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "client")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Run("allowed", func(t *testing.T) {
		path := filepath.Join(dir, "allowed.sock")
		serve(t, path, ListenConfig{Mode: 0o666, Allow: AllowUIDs(0, 65534)})
		got, pid := runClient(t, exe, path, 5*time.Second)
		if want := "ok " + peerName(Peer{PID: int32(pid), UID: 65534, GID: 65534}); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("refused", func(t *testing.T) {
		path := filepath.Join(dir, "refused.sock")
		logs := serve(t, path, ListenConfig{Mode: 0o666, Allow: AllowUIDs(0)})
		got, pid := runClient(t, exe, path, 500*time.Millisecond)
		if !strings.HasPrefix(got, "error ") {
			t.Errorf("uid 65534 got %q, want an error", got)
		}
		t.Logf("refused client saw: %s", got)
		want := fmt.Sprintf("pid=%d uid=65534 gid=65534 reason=\"uid 65534 not allowed\"", pid)
		if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), want) {
			t.Errorf("server log lacks the refusal of %s:\n%s", want, logs)
		}
		// The server still serves root.
		if got := callStatus(path, 5*time.Second); !strings.HasPrefix(got, "ok pid=") {
			t.Errorf("root after a refusal: %q", got)
		}
	})
}

// TestRefusalKeepsServing refuses the first connections (no root needed),
// then lets clients in: the server must survive the refusals.
func TestRefusalKeepsServing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	var open atomic.Bool
	var refused atomic.Int32
	logs := serve(t, path, ListenConfig{Mode: 0o600, Allow: func(p Peer) error {
		if !open.Load() {
			refused.Add(1)
			return errors.New("closed for now")
		}
		return nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if cc, err := Dial(ctx, path); err == nil {
		cc.Close()
		t.Fatal("Dial succeeded while refused")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial: %v, want DeadlineExceeded", err)
	} else {
		t.Logf("refused Dial: %v", err)
	}
	if refused.Load() == 0 || !strings.Contains(logs.String(), "closed for now") {
		t.Errorf("no refusal logged:\n%s", logs)
	}
	open.Store(true)
	if got := callStatus(path, 5*time.Second); !strings.HasPrefix(got, "ok ") {
		t.Errorf("after reopening: %q", got)
	}
}

func TestStaleSocketRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vrrpd.sock")
	// What a crashed server leaves: a socket file nobody listens on.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("no stale socket: %v", err)
	}
	serve(t, path, ListenConfig{Mode: 0o600})
	if got := callStatus(path, 5*time.Second); !strings.HasPrefix(got, "ok ") {
		t.Errorf("got %q", got)
	}
}

func TestLiveSocketNotStolen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vrrpd.sock")
	serve(t, path, ListenConfig{Mode: 0o600})
	if l, err := Listen(path, 0o600, nil); err == nil {
		l.Close()
		t.Fatal("second Listen on a live socket succeeded")
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen: %v, want EADDRINUSE", err)
	}
	if got := callStatus(path, 5*time.Second); !strings.HasPrefix(got, "ok ") {
		t.Errorf("first server after the attempt: %q", got)
	}
}

func TestNotASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vrrpd.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Listen(path, 0o600, nil); err == nil {
		l.Close()
		t.Fatal("Listen replaced a regular file")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("file damaged: %q, %v", b, err)
	}
}

func TestModeAndClose(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o600, 0o660, 0o666} {
		path := filepath.Join(dir, fmt.Sprintf("m%o.sock", mode))
		l, err := Listen(path, mode, nil)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want socket %v", path, fi.Mode(), mode)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after Close: %v", path, err)
		}
	}
	// No temporary names left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in %s: %v", dir, ents)
	}
}

// TestCloseKeepsSuccessor: a listener whose socket file was replaced does
// not remove its successor's when it closes.
func TestCloseKeepsSuccessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vrrpd.sock")
	old, err := Listen(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	serve(t, path, ListenConfig{Mode: 0o600})
	old.Close()
	if got := callStatus(path, 5*time.Second); !strings.HasPrefix(got, "ok ") {
		t.Errorf("successor after the old listener closed: %q", got)
	}
}

func TestPeerOf(t *testing.T) {
	a, b, err := unixPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	p, err := PeerOf(a)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Peer{PID: int32(os.Getpid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}); p.PID != want.PID || p.UID != want.UID || p.GID != want.GID {
		t.Errorf("PeerOf = %v, want %v", p, want)
	}
	// SO_PEERGROUPS: our own supplementary groups.
	own, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Groups) != len(own) {
		t.Errorf("PeerOf groups = %v, want getgroups(2)'s %v", p.Groups, own)
	}
	for _, g := range own {
		if !p.InGroup(uint32(g)) {
			t.Errorf("PeerOf groups = %v: %d missing", p.Groups, g)
		}
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if _, err := PeerOf(c1); err == nil {
		t.Error("PeerOf(net.Pipe) succeeded")
	}
	if _, ok := PeerFromContext(context.Background()); ok {
		t.Error("PeerFromContext on a bare context")
	}
}

func unixPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		conns[i] = c
	}
	return conns[0], conns[1], nil
}
