package vrrpd

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Server is the engine's gRPC face (proto/vrrpkit/v1/control.proto,
// service Vrrpd): one-line handlers over the engine, with the status codes
// the .proto promises.
type Server struct {
	pb.UnimplementedVrrpdServer
	e *Engine
}

// NewServer returns the gRPC server of e.
func NewServer(e *Engine) *Server { return &Server{e: e} }

func (s *Server) ApplyConfig(ctx context.Context, snap *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	resp, err := s.e.Apply(ctx, snap)
	return resp, grpcError(err)
}

func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.e.Status(ctx)
	return resp, grpcError(err)
}

func (s *Server) Ipvs(ctx context.Context, _ *pb.IpvsRequest) (*pb.IpvsResponse, error) {
	resp, err := s.e.Ipvs(ctx)
	return resp, grpcError(err)
}

// Events streams the engine's events until the client goes, the engine
// stops, or the client falls too far behind (then it resubscribes and gets
// a fresh snapshot).
func (s *Server) Events(_ *pb.EventsRequest, stream pb.Vrrpd_EventsServer) error {
	sub := s.e.Subscribe()
	defer sub.Close()
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				if sub.Overflowed() {
					return status.Error(codes.ResourceExhausted, "vrrpd: event stream reader fell behind; subscribe again")
				}
				return status.Error(codes.Unavailable, "vrrpd: engine stopped")
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// grpcError maps the engine's errors to gRPC status codes.
func grpcError(err error) error {
	var inv *InvalidSnapshotError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrOldGeneration):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrStopped), errors.Is(err, ErrNoIPVS):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, err.Error())
}
