package checkerd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// ScriptsSocket is the supervisor's ScriptRunner socket in the run
// directory (control.proto, service ScriptRunner).
const ScriptsSocket = "scripts.sock"

// ScriptRunnerClient runs vrrp_scripts through the supervisor's
// ScriptRunner service: checkerd never forks.
type ScriptRunnerClient struct {
	path string
	cc   *grpc.ClientConn
	c    pb.ScriptRunnerClient
}

// NewScriptRunnerClient returns a client of the ScriptRunner on the Unix
// socket path. It connects lazily and reconnects by itself; a call made
// while the supervisor is unreachable fails at once (Unavailable).
func NewScriptRunnerClient(path string) (*ScriptRunnerClient, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("script runner %s: %w", path, err)
	}
	cc, err := grpc.NewClient("unix://"+abs, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("script runner %s: %w", path, err)
	}
	return &ScriptRunnerClient{path: abs, cc: cc, c: pb.NewScriptRunnerClient(cc)}, nil
}

// Close closes the connection.
func (r *ScriptRunnerClient) Close() error { return r.cc.Close() }

// RunScript implements track.ScriptRunner.
func (r *ScriptRunnerClient) RunScript(ctx context.Context, generation uint64, name string) (scriptrun.Result, error) {
	return r.Run(ctx, generation, pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT, name)
}

// Run runs a script of any kind (MISC_CHECK for the real-server checks).
func (r *ScriptRunnerClient) Run(ctx context.Context, generation uint64, kind pb.ScriptKind, name string) (scriptrun.Result, error) {
	resp, err := r.c.RunScript(ctx, &pb.RunScriptRequest{Generation: generation, Kind: kind, Name: name})
	if err != nil {
		return scriptrun.Result{}, fmt.Errorf("script runner %s: RunScript %v %s (generation %d): %w", r.path, kind, name, generation, err)
	}
	return resultOf(resp), nil
}

func resultOf(resp *pb.RunScriptResponse) scriptrun.Result {
	res := scriptrun.Result{ExitStatus: int(resp.GetExitStatus()), Signal: syscall.Signal(resp.GetSignal()),
		TimedOut: resp.GetTimedOut(), Duration: resp.GetDuration().AsDuration()}
	if e := resp.GetError(); e != "" {
		res.Err = errors.New(e)
	}
	return res
}
