package main

import (
	"context"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// controlSocket is where vrrpctl reaches the supervisor.
const controlSocket = "control.sock"

// childInfo is what the supervisor knows of vrrpd, for status.
type childInfo struct {
	pid       int
	running   bool
	restarts  uint32
	startedAt time.Time
	lastExit  string
}

// control is the supervisor's gRPC face: a thin adapter over the daemon.
type control struct {
	pb.UnimplementedSupervisorServer
	d *daemon
}

// serveControl serves vrrpctl on <run-dir>/control.sock until ctx ends.
// Status is root only for now; the status group comes with its config.
func (d *daemon) serveControl(ctx context.Context) error {
	ln, err := ipc.ListenConfig{Mode: 0o600, Allow: ipc.AllowUIDs(0), Logger: d.log}.Listen(filepath.Join(d.opts.runDir, controlSocket))
	if err != nil {
		return err
	}
	srv := ipc.NewServer()
	pb.RegisterSupervisorServer(srv, &control{d: d})
	go func() {
		<-ctx.Done()
		srv.Stop()
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
	ci := d.vrrpd
	d.mu.Unlock()
	child := &pb.ChildStatus{Name: "vrrpd", Running: ci.running, Restarts: ci.restarts, LastExit: ci.lastExit}
	if ci.running {
		child.Pid = int32(ci.pid)
		child.StartedAt = timestamppb.New(ci.startedAt)
	}
	resp.Children = append(resp.Children, child)

	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := ipc.Dial(sctx, filepath.Join(d.opts.runDir, vrrpdSocket), fastRedial)
	if err == nil {
		defer conn.Close()
		if st, err := pb.NewVrrpdClient(conn).Status(sctx, &pb.StatusRequest{Instances: req.GetInstances()}); err == nil {
			child.Generation = st.GetGeneration()
			resp.Instances = st.GetInstances()
		}
	}
	return resp, nil
}
