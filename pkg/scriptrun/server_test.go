package scriptrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestServer runs scripts through gRPC over a real Unix socket.
func TestServer(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	scripts := map[string]Command{
		"three":   {Name: "vrrp_script three", Args: []string{writeScript(t, dir, "three", "exit 3")}},
		"hang":    {Name: "vrrp_script hang", Args: []string{writeScript(t, dir, "hang", "exec sleep 300")}, Timeout: 200 * time.Millisecond},
		"missing": {Name: "vrrp_script missing", Args: []string{filepath.Join(dir, "nope")}},
	}
	pidFile := filepath.Join(dir, "forever.pid")
	scripts["forever"] = Command{Name: "vrrp_script forever", Args: []string{writeScript(t, dir, "forever", "echo $$ > "+pidFile+"\nexec sleep 300")}}
	const running = 7
	lookup := func(gen uint64, kind pb.ScriptKind, name string) (Command, error) {
		if gen != running {
			return Command{}, fmt.Errorf("generation %d, running %d: %w", gen, running, ErrStaleGeneration)
		}
		c, ok := scripts[name]
		if kind != pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT || !ok {
			return Command{}, ErrUnknownScript
		}
		return c, nil
	}
	r, _ := newRunner()
	sock := filepath.Join(dir, "scripts.sock")
	l, err := ipc.Listen(sock, 0o600, ipc.AllowUIDs(uint32(os.Geteuid())))
	if err != nil {
		t.Fatal(err)
	}
	srv := ipc.NewServer()
	pb.RegisterScriptRunnerServer(srv, NewServer(r, lookup))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := ipc.Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := pb.NewScriptRunnerClient(cc)
	call := func(gen uint64, kind pb.ScriptKind, name string) (*pb.RunScriptResponse, error) {
		return client.RunScript(ctx, &pb.RunScriptRequest{Generation: gen, Kind: kind, Name: name})
	}
	vs := pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT

	resp, err := call(running, vs, "three")
	if err != nil || resp.GetExitStatus() != 3 || resp.GetError() != "" || resp.GetTimedOut() || resp.GetDuration().AsDuration() <= 0 {
		t.Errorf("three: %v, %v", resp, err)
	}
	resp, err = call(running, vs, "hang")
	if err != nil || !resp.GetTimedOut() || resp.GetSignal() != 9 || resp.GetExitStatus() != -1 {
		t.Errorf("hang: %v, %v", resp, err)
	}
	resp, err = call(running, vs, "missing")
	if err != nil || resp.GetExitStatus() != -1 || !strings.Contains(resp.GetError(), "cannot be accessed") {
		t.Errorf("missing: %v, %v", resp, err)
	}
	// A caller that gives up (its deadline, or a child that dies) takes
	// its script with it.
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	_, err = client.RunScript(short, &pb.RunScriptRequest{Generation: running, Kind: vs, Name: "forever"})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("forever with a deadline: %v, want DeadlineExceeded", err)
	}
	var forever int
	waitFor(t, "the script to have started", 5*time.Second, func() bool { forever = readPID(pidFile); return forever > 0 })
	t.Cleanup(func() { _ = syscall.Kill(forever, syscall.SIGKILL) })
	waitFor(t, "the abandoned script to be killed", 5*time.Second, func() bool { return !alive(forever) })

	for _, tc := range []struct {
		gen  uint64
		kind pb.ScriptKind
		name string
		code codes.Code
	}{
		{running - 1, vs, "three", codes.FailedPrecondition},
		{running, vs, "nosuch", codes.NotFound},
		{running, pb.ScriptKind_SCRIPT_KIND_UNSPECIFIED, "three", codes.NotFound},
	} {
		_, err := call(tc.gen, tc.kind, tc.name)
		if status.Code(err) != tc.code {
			t.Errorf("generation %d %v %q: %v, want %v", tc.gen, tc.kind, tc.name, err, tc.code)
		}
	}
}
