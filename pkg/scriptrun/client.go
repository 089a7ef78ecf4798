package scriptrun

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Client asks the supervisor's ScriptRunner (<run-dir>/scripts.sock) to run
// a script of a configuration generation, named by kind and name: how a
// child runs a script without forking (design.md, "Processes").
type Client struct {
	path string
	cc   *grpc.ClientConn
	c    pb.ScriptRunnerClient
}

// NewClient returns a client of the ScriptRunner on the Unix socket path.
// It connects lazily and reconnects by itself; a call made while the
// supervisor is unreachable fails at once (Unavailable).
func NewClient(path string) (*Client, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("script runner %s: %w", path, err)
	}
	cc, err := grpc.NewClient("unix://"+abs, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("script runner %s: %w", path, err)
	}
	return &Client{path: abs, cc: cc, c: pb.NewScriptRunnerClient(cc)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.cc.Close() }

// Run runs the script and returns how it ended. An error means it was not
// run: the supervisor is unreachable, the generation is not one it keeps
// (FailedPrecondition), or it has no such script (NotFound).
func (c *Client) Run(ctx context.Context, generation uint64, kind pb.ScriptKind, name string) (Result, error) {
	resp, err := c.c.RunScript(ctx, &pb.RunScriptRequest{Generation: generation, Kind: kind, Name: name})
	if err != nil {
		return Result{}, fmt.Errorf("script runner %s: RunScript %v %q (generation %d): %w", c.path, kind, name, generation, err)
	}
	return ResultOf(resp), nil
}

// ResultOf is a RunScriptResponse as a Result.
func ResultOf(resp *pb.RunScriptResponse) Result {
	res := Result{ExitStatus: int(resp.GetExitStatus()), Signal: syscall.Signal(resp.GetSignal()),
		TimedOut: resp.GetTimedOut(), Duration: resp.GetDuration().AsDuration()}
	if e := resp.GetError(); e != "" {
		res.Err = errors.New(e)
	}
	return res
}
