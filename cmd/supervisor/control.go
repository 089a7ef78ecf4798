package main

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// childInfo is what the supervisor knows of one child, for status.
type childInfo struct {
	pid       int
	running   bool
	restarts  uint32
	startedAt time.Time
	lastExit  string
	// generation the child acknowledged last (checkerd; vrrpd's comes from
	// its own status).
	generation uint64
}

// control is the supervisor's gRPC face: a thin adapter over the daemon.
type control struct {
	pb.UnimplementedSupervisorServer
	d *daemon
}

// serveControl serves vrrpctl on the run directory's control socket until
// ctx ends. Status is root only for now; the status group comes with its
// config.
func (d *daemon) serveControl(ctx context.Context) error {
	ln, err := ipc.ListenConfig{Mode: 0o600, Allow: ipc.AllowUIDs(0), Logger: d.log}.Listen(d.dir.Control())
	if err != nil {
		return err
	}
	srv := ipc.NewServer()
	pb.RegisterSupervisorServer(srv, &control{d: d})
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // owned by serveControl: ends when Serve has returned
		select {
		case <-ctx.Done():
			srv.Stop()
		case <-stopped:
		}
	}()
	return srv.Serve(ln)
}

func (c *control) Status(ctx context.Context, req *pb.SupervisorStatusRequest) (*pb.SupervisorStatusResponse, error) {
	d := c.d
	d.mu.Lock()
	resp := &pb.SupervisorStatusResponse{
		Generation:     d.gen,
		ConfigPath:     d.opts.file,
		ConfigLoadedAt: timestamppb.New(d.loadedAt),
		StartedAt:      timestamppb.New(d.startedAt),
		Version:        version,
	}
	if d.reloadFailure != nil {
		resp.LastReloadFailure = d.reloadFailure
	}
	var vrrpd *pb.ChildStatus
	for _, name := range d.childNames() { // sorted: a stable order for readers
		ci := d.children[name]
		child := &pb.ChildStatus{Name: name, Running: ci.running, Restarts: ci.restarts, LastExit: ci.lastExit, Generation: ci.generation}
		if ci.running {
			child.Pid = int32(ci.pid)
			child.StartedAt = timestamppb.New(ci.startedAt)
		}
		if name == childVrrpd {
			vrrpd = child
		}
		resp.Children = append(resp.Children, child)
	}
	d.mu.Unlock()

	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := ipc.Dial(sctx, d.dir.Vrrpd(), fastRedial)
	if err == nil {
		defer conn.Close()
		if st, err := pb.NewVrrpdClient(conn).Status(sctx, &pb.StatusRequest{Instances: req.GetInstances()}); err == nil {
			if vrrpd != nil {
				vrrpd.Generation = st.GetGeneration()
			}
			resp.Instances = st.GetInstances()
			resp.VirtualServers = st.GetVirtualServers()
		}
	}
	return resp, nil
}

// reloadRequest is one Supervisor.Reload call on its way to pushLoop.
type reloadRequest struct {
	dryRun bool
	reply  chan *pb.ReloadResponse
}

// Reload: as SIGHUP, or only its plan with dry_run.
func (c *control) Reload(ctx context.Context, req *pb.ReloadRequest) (*pb.ReloadResponse, error) {
	r := reloadRequest{dryRun: req.GetDryRun(), reply: make(chan *pb.ReloadResponse, 1)}
	select {
	case c.d.reloads <- r:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	select {
	case resp := <-r.reply:
		return resp, nil
	case <-ctx.Done():
		// The reload goes on; only its caller stopped waiting.
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// Ipvs relays vrrpd's reading of the kernel's IPVS table. vrrpd's own
// error (UNAVAILABLE without IPVS) is passed on as it is.
func (c *control) Ipvs(ctx context.Context, req *pb.IpvsRequest) (*pb.IpvsResponse, error) {
	// A dump of thousands of destinations takes a while: the caller's
	// deadline bounds it, else 10 s.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	conn, err := ipc.Dial(dctx, c.d.dir.Vrrpd(), fastRedial)
	cancel()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "vrrpd is not reachable at %s: %v", c.d.dir.Vrrpd(), err)
	}
	defer conn.Close()
	return pb.NewVrrpdClient(conn).Ipvs(ctx, req)
}
