package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview/ctlviewtest"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// fakeSupervisor answers Status with ctlview's fixture, after block (if set)
// is closed.
type fakeSupervisor struct {
	pb.UnimplementedSupervisorServer
	block   chan struct{}
	ipvsErr error
}

func (f *fakeSupervisor) Status(ctx context.Context, _ *pb.SupervisorStatusRequest) (*pb.SupervisorStatusResponse, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return ctlviewtest.Status(), nil
}

// Ipvs answers with ctlview's IPVS fixture, or ipvsErr.
func (f *fakeSupervisor) Ipvs(context.Context, *pb.IpvsRequest) (*pb.IpvsResponse, error) {
	if f.ipvsErr != nil {
		return nil, f.ipvsErr
	}
	return ctlviewtest.IPVS(), nil
}

// serve runs f on control.sock in a new run directory, as the supervisor
// does (ipc's listener and server), and returns the directory.
func serve(t *testing.T, f pb.SupervisorServer) string {
	t.Helper()
	dir := t.TempDir()
	l, err := ipc.ListenConfig{Mode: 0o600}.Listen(rundir.Dir(dir).Control())
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterSupervisorServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

func runT(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// TestJSONAnywhere: --json before or after the command, and in the Go-style
// spelling vrrpctl took before, prints exactly the documented JSON
// (ctlview's golden file, which README.md shows).
func TestJSONAnywhere(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "pkg", "ctlview", "testdata", "status.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := serve(t, &fakeSupervisor{})
	for _, args := range [][]string{
		{"status", "--json", "--run-dir", dir},
		{"--json", "status", "--run-dir", dir},
		{"--run-dir=" + dir, "--json", "status"},
		{"-json", "-run-dir", dir, "status"},
	} {
		r := runT(t, args...)
		if r.code != 0 || r.stdout != string(want) || r.stderr != "" {
			t.Errorf("vrrpctl %s: %v\nwant exit 0 and the golden JSON", strings.Join(args, " "), r)
		}
	}
}

func TestStatusText(t *testing.T) {
	dir := serve(t, &fakeSupervisor{})
	r := runT(t, "status", "--run-dir", dir)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%v", r)
	}
	for _, want := range []string{"config /etc/keepalived/keepalived.conf, generation 3", "INSTANCE  INTERFACE  VRID  STATE",
		"VI_WEB    eth0       51    MASTER  140   192.0.2.1", "auth_mismatch=1 bad_ttl=3"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in\n%s", want, r.stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"status", "-h"}, {"status", "--help"}, {"--json", "status", "-h"}, {"help", "status"}} {
		r := runT(t, args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage:\n  vrrpctl status [flags]") ||
			!strings.Contains(r.stdout, "--json") || !strings.Contains(r.stdout, "--run-dir") {
			t.Errorf("vrrpctl %s: %v\nwant exit 0 and status's usage on stdout", strings.Join(args, " "), r)
		}
	}
	r := runT(t, "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "Commands:\n  genhash") || !strings.Contains(r.stdout, "\n  status") || !strings.Contains(r.stdout, "  version") {
		t.Errorf("vrrpctl -h: %v\nwant exit 0 and the list of commands", r)
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in stderr
	}{
		{nil, []string{"vrrpctl: no command given\n", "Usage:\n  vrrpctl [flags] <command>", "status "}},
		{[]string{"stauts"}, []string{`vrrpctl: unknown command "stauts" (did you mean "status"?); the commands are:`,
			"\n  status ", "\n  version ", "Run 'vrrpctl <command> -h'"}},
		{[]string{"frobnicate", "--json"}, []string{`unknown command "frobnicate"; the commands are:`, "\n  status "}},
		{[]string{"status", "--jsn"}, []string{"vrrpctl: unknown flag: --jsn\n", "Usage:\n  vrrpctl status [flags]"}},
		{[]string{"--timeout", "soon", "status"}, []string{`invalid argument "soon" for "--timeout"`, "Usage:\n  vrrpctl status [flags]"}},
		{[]string{"--jsn"}, []string{"vrrpctl: unknown flag: --jsn\n", "Usage:\n  vrrpctl [flags] <command>"}},
		{[]string{"status", "VI_1"}, []string{`status takes no arguments, got "VI_1"`, "Usage:\n  vrrpctl status"}},
	} {
		r := runT(t, tc.args...)
		ok := r.code == 2 && r.stdout == ""
		for _, w := range tc.want {
			ok = ok && strings.Contains(r.stderr, w)
		}
		if !ok {
			t.Errorf("vrrpctl %s: %v\nwant exit 2, stderr with %q", strings.Join(tc.args, " "), r, tc.want)
		}
	}
}

// TestNotRunning: no socket, and a socket nobody listens on (a supervisor
// that was killed), both fail at once, naming the socket and what to check.
func TestNotRunning(t *testing.T) {
	empty := t.TempDir()

	stale := t.TempDir()
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: rundir.Dir(stale).Control(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()

	for dir, errno := range map[string]string{empty: "no such file or directory", stale: "connection refused"} {
		start := time.Now()
		r := runT(t, "--timeout", "20s", "status", "--run-dir", dir)
		want := "vrrpctl: cannot reach the supervisor at " + rundir.Dir(dir).Control() + ": connect: " + errno + "\n"
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "systemctl status vrrpkit") ||
			!strings.Contains(r.stderr, "vrrpctl --run-dir DIR status") {
			t.Errorf("%v\nwant exit 1, stderr starting %q with the hints", r, want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v: it waited for the timeout instead of reporting the connect error", d)
		}
	}
}

func TestNoAnswer(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	dir := serve(t, &fakeSupervisor{block: block})
	r := runT(t, "status", "--run-dir", dir, "--timeout", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "no answer from the supervisor at "+rundir.Dir(dir).Control()+" within 200ms") ||
		!strings.Contains(r.stderr, "vrrpctl --timeout 10s status") {
		t.Errorf("%v\nwant exit 1 and a no-answer error with the --timeout hint", r)
	}
}

// TestRefused: a supervisor that refuses this user closes the connection
// (SO_PEERCRED check); vrrpctl cannot tell that from a stuck one, so the
// hint names both and where the supervisor says which.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := ipc.ListenConfig{
		Mode:   0o600,
		Allow:  func(ipc.Peer) error { return errors.New("not in the status group") },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}.Listen(rundir.Dir(dir).Control())
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterSupervisorServer(srv, &fakeSupervisor{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	r := runT(t, "status", "--run-dir", dir, "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, "no answer from the supervisor at "+rundir.Dir(dir).Control()) ||
		!strings.Contains(r.stderr, "refusing this user") || !strings.Contains(r.stderr, "journalctl -u vrrpkit") {
		t.Errorf("%v\nwant exit 1 and a hint that it may refuse this user", r)
	}
}

func TestVersion(t *testing.T) {
	if r := runT(t, "version"); r.code != 0 || r.stdout != "vrrpctl dev\n" {
		t.Errorf("%v", r)
	}
}

func TestGoStyleFlags(t *testing.T) {
	root := newRoot(nil, nil)
	got := goStyleFlags(root, []string{"-json", "-run-dir=/x", "-timeout", "1s", "-h", "-x", "status", "--", "-json"})
	want := []string{"--json", "--run-dir=/x", "--timeout", "1s", "-h", "-x", "status", "--", "-json"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("goStyleFlags = %q, want %q", got, want)
	}
	if got := goStyleFlags(root, nil); got == nil {
		t.Error("goStyleFlags(nil) = nil: cobra would read os.Args")
	}
}

// TestGenhash: the digest of a body fetched as HTTP_GET fetches it, in
// genhash's output format; command-line mistakes exit 2.
func TestGenhash(t *testing.T) {
	body := "hello from a real server\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != "KeepAliveClient" {
			http.Error(w, "not keepalived's request", http.StatusBadRequest)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	r := runT(t, "genhash", "-s", ap.Addr().String(), "-p", fmt.Sprint(ap.Port()), "-u", "/index.html")
	sum := md5.Sum([]byte(body))
	want := hex.EncodeToString(sum[:]) + "\n" // keepalived's genhash prints the digest alone
	if r.code != 0 || r.stdout != want {
		t.Fatalf("%v\nwant exit 0 and\n%s", r, want)
	}
	if r := runT(t, "genhash", "-s", "not-an-ip", "-p", "80", "-u", "/"); r.code != 2 {
		t.Errorf("bad -s: %v, want exit 2", r)
	}
}

// TestIpvs: vrrpctl ipvs prints ipvsadm's layout with the health column,
// --json the golden JSON; vrrpd's "no IPVS" reaches the user as it is.
func TestIpvs(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "pkg", "ctlview", "testdata", "ipvs.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := serve(t, &fakeSupervisor{})
	if r := runT(t, "ipvs", "--json", "--run-dir", dir); r.code != 0 || r.stdout != string(want) {
		t.Errorf("vrrpctl ipvs --json: %v\nwant the golden JSON", r)
	}
	r := runT(t, "ipvs", "--run-dir", dir)
	for _, w := range []string{"IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n",
		"  -> 10.0.1.2:80                  Masq    0      0          0          down "} {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Errorf("vrrpctl ipvs: no %q in %v", w, r)
		}
	}
	dir = serve(t, &fakeSupervisor{ipvsErr: status.Error(codes.Unavailable, "IPVS not available: genetlink: family IPVS not found")})
	r = runT(t, "ipvs", "--run-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "ipvs from the supervisor at") || !strings.Contains(r.stderr, "Unavailable: IPVS not available: genetlink") {
		t.Errorf("vrrpctl ipvs without IPVS: %v", r)
	}
}
