package scriptrun

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Errors a Lookup returns, wrapped or not; the Server maps them to gRPC
// codes as control.proto's ScriptRunner documents.
var (
	// ErrStaleGeneration: the request names a generation that is not the
	// running one (codes.FailedPrecondition).
	ErrStaleGeneration = errors.New("not the running configuration generation")
	// ErrUnknownScript: the generation has no script of that kind and name
	// (codes.NotFound).
	ErrUnknownScript = errors.New("no such script in the configuration")
)

// Lookup finds the script a child names in the supervisor's own copy of a
// configuration generation.
type Lookup func(generation uint64, kind pb.ScriptKind, name string) (Command, error)

// Server is the supervisor's ScriptRunner service: a child names a script of
// the configuration it runs, and the Server runs what the supervisor's copy
// of that generation says. A child never sends a command line. A script
// runs under the RPC's context: when the caller gives up (its deadline, a
// closed connection, a child that died) the script's group is killed.
type Server struct {
	pb.UnimplementedScriptRunnerServer
	runner *Runner
	lookup Lookup
}

// NewServer returns a Server running scripts with r, found with lookup.
func NewServer(r *Runner, lookup Lookup) *Server {
	return &Server{runner: r, lookup: lookup}
}

// Run looks the script up and runs it: the library core of RunScript.
func (s *Server) Run(ctx context.Context, generation uint64, kind pb.ScriptKind, name string) (Result, error) {
	if s.lookup == nil || s.runner == nil {
		return Result{}, errors.New("scriptrun: server has no runner or lookup")
	}
	cmd, err := s.lookup(generation, kind, name)
	if err != nil {
		return Result{}, fmt.Errorf("script %v %q in generation %d: %w", kind, name, generation, err)
	}
	return s.runner.Run(ctx, cmd), nil
}

// RunScript implements pb.ScriptRunnerServer.
func (s *Server) RunScript(ctx context.Context, req *pb.RunScriptRequest) (*pb.RunScriptResponse, error) {
	return response(s.Run(ctx, req.GetGeneration(), req.GetKind(), req.GetName()))
}

func response(res Result, err error) (*pb.RunScriptResponse, error) {
	switch {
	case errors.Is(err, ErrStaleGeneration):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrUnknownScript):
		return nil, status.Error(codes.NotFound, err.Error())
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &pb.RunScriptResponse{
		ExitStatus: int32(res.ExitStatus),
		Signal:     int32(res.Signal),
		TimedOut:   res.TimedOut,
		Duration:   durationpb.New(res.Duration),
	}
	if res.Err != nil {
		resp.Error = res.Err.Error()
		resp.ExitStatus = -1
	}
	return resp, nil
}
