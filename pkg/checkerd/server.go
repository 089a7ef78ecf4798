package checkerd

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/track"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Server is checkerd's gRPC face (control.proto, service Checkerd) over a
// track.Set (vrrp_script, track_file, track_process) and the real-server
// health checks of the virtual servers (pkg/check), which Health streams
// as TRACKER_KIND_REAL_SERVER results named by health_id.
type Server struct {
	pb.UnimplementedCheckerdServer
	set *track.Set
	rs  *realServers

	// applyMu makes each ApplyConfig apply the trackers and the real
	// servers together: two at once could leave the trackers at one
	// generation and the real servers at the other.
	applyMu sync.Mutex

	mu      sync.Mutex
	applied chan struct{} // closed and replaced by each ApplyConfig that moves the generation
}

// NewServer returns the gRPC server of set; log (nil: slog.Default) gets
// the real-server checkers that cannot run. Close stops the real-server
// checks.
func NewServer(set *track.Set, log *slog.Logger) *Server {
	return newServer(set, log, nil)
}

// newServer is NewServer whose MISC_CHECKs run through scripts (nil: they
// are not run).
func newServer(set *track.Set, log *slog.Logger, scripts kindRunner) *Server {
	if log == nil {
		log = slog.Default()
	}
	rs := newRealServers(log, check.SnapshotOptions{}, 0)
	if scripts != nil {
		rs.opts.Runner = miscRunner{rs: rs, run: scripts} // misc.go
	}
	return &Server{set: set, rs: rs, applied: make(chan struct{})}
}

// Close stops the real-server checks and ends their part of every Health
// stream. The track.Set is the caller's to close.
func (s *Server) Close() { s.rs.close() }

// appliedChan is closed when the next generation is applied.
func (s *Server) appliedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func (s *Server) ApplyConfig(_ context.Context, snap *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	before := s.set.Generation()
	res, err := s.set.Apply(snap)
	if err != nil {
		return nil, grpcError(err)
	}
	// set.Apply refused an older generation; the real servers follow the
	// same one.
	a, r, c, u := s.rs.apply(res.Generation, snap)
	res.Added, res.Removed = append(res.Added, a...), append(res.Removed, r...)
	res.Changed, res.Unchanged = append(res.Changed, c...), append(res.Unchanged, u...)
	if res.Generation != before {
		s.mu.Lock()
		close(s.applied)
		s.applied = make(chan struct{})
		s.mu.Unlock()
	}
	return &pb.ApplyConfigResponse{Generation: res.Generation, Added: res.Added, Removed: res.Removed,
		Changed: res.Changed, Unchanged: res.Unchanged}, nil
}

// Health streams a snapshot, then every change, until the client goes, the
// set closes, or the client falls too far behind (it then reconnects and
// gets a fresh snapshot). A full snapshot also comes every refresh (30 s)
// while real-server checks run, with their last_check. Each new generation
// is followed by a full snapshot stamped with it: vrrpd ignores results of generations older
// than its own, so a result it dropped because it arrived while vrrpd was
// already one generation ahead would otherwise never come again.
func (s *Server) Health(_ *pb.HealthRequest, stream pb.Checkerd_HealthServer) error {
	applied, refreshed := s.appliedChan(), s.rs.refreshChan()
	snap, sub := s.set.Subscribe()
	defer sub.Close()
	rsSnap, rsSub := s.rs.subscribe()
	defer rsSub.Close()
	seq := uint64(1)
	if err := stream.Send(&pb.HealthEvent{Seq: seq, At: timestamppb.New(snap.At), Generation: snap.Generation,
		Event: &pb.HealthEvent_Snapshot{Snapshot: withRealServers(snap, rsSnap)}}); err != nil {
		return err
	}
	send := func(ev track.Event) error {
		if ev.Result.State == track.StateInit {
			return nil // not on the wire (track.Snapshot.Proto)
		}
		seq++
		return stream.Send(&pb.HealthEvent{Seq: seq, At: timestamppb.New(ev.At), Generation: ev.Generation,
			Event: &pb.HealthEvent_Result{Result: ev.Result.Proto()}})
	}
	ended := func(overflowed bool) error {
		if overflowed {
			return status.Error(codes.ResourceExhausted, "checkerd: health stream reader fell behind; subscribe again")
		}
		return status.Error(codes.Unavailable, "checkerd: stopping")
	}
	resnap := func() error {
		snap := s.set.Snapshot()
		seq++
		return stream.Send(&pb.HealthEvent{Seq: seq, At: timestamppb.New(snap.At), Generation: snap.Generation,
			Event: &pb.HealthEvent_Snapshot{Snapshot: withRealServers(snap, s.rs.snapshot())}})
	}
	for {
		select {
		case <-applied:
			applied = s.appliedChan()
			if err := resnap(); err != nil {
				return err
			}
		case <-refreshed:
			// Real servers' last_check moved (realServers.refresh).
			refreshed = s.rs.refreshChan()
			if err := resnap(); err != nil {
				return err
			}
		case ev, ok := <-sub.C:
			if !ok {
				return ended(sub.Overflowed())
			}
			if err := send(ev); err != nil {
				return err
			}
		case ev, ok := <-rsSub.C:
			if !ok {
				return ended(rsSub.Lagged())
			}
			seq++
			if err := stream.Send(&pb.HealthEvent{Seq: seq, At: timestamppb.New(ev.At), Generation: ev.Generation,
				Event: &pb.HealthEvent_Result{Result: ev.Result}}); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// withRealServers is snap on the wire with the real servers' results
// (realServers.snapshot: those with a result) after the trackers'.
func withRealServers(snap track.Snapshot, rs []*pb.TrackerResult) *pb.HealthSnapshot {
	out := snap.Proto()
	out.Results = append(out.Results, rs...)
	return out
}

func grpcError(err error) error {
	var inv *track.InvalidSnapshotError
	switch {
	case errors.Is(err, track.ErrOldGeneration):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, track.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// peerCheck returns interceptors that refuse RPCs from peers allow
// refuses. The listener may come from the supervisor (an inherited fd), so
// the check is made per RPC on the SO_PEERCRED credentials that
// ipc.ServerCredentials recorded, not by an ipc.Listener.
func peerCheck(allow func(ipc.Peer) error) []grpc.ServerOption {
	check := func(ctx context.Context) error {
		p, ok := ipc.PeerFromContext(ctx)
		if !ok {
			return status.Error(codes.PermissionDenied, "checkerd: peer credentials unknown")
		}
		if err := allow(p); err != nil {
			return status.Errorf(codes.PermissionDenied, "checkerd: %v", err)
		}
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
