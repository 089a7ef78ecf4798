package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
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

// controlAccess is who may call each Supervisor RPC: the one table both
// the accept check and the per-RPC interceptor read (ipc.Policy).
// GroupRead methods only read and are open to --status-group; everything
// else, and any method not listed here, is root only (design.md,
// "Processes": read-only status is open to the configured group, changes
// are root only). TestControlAccessComplete makes each new RPC take a side.
var controlAccess = map[string]ipc.Access{
	"Status": ipc.GroupRead,
	"Watch":  ipc.GroupRead,
	"Ipvs":   ipc.GroupRead,
	// keepalived's dump files over the socket: root only, as keepalived's
	// own files are 0600 root, for keepalived.data prints auth_pass.
	"Dump":   ipc.RootOnly,
	"Reload": ipc.RootOnly,
}

// controlPolicy is controlAccess for group (nil: root only).
func controlPolicy(group *ipc.Group) *ipc.Policy {
	return &ipc.Policy{Service: pb.Supervisor_ServiceDesc.ServiceName, Methods: controlAccess, Group: group}
}

// lookupStatusGroup resolves --status-group; "" is none.
func lookupStatusGroup(name string) (*ipc.Group, error) {
	if name == "" {
		return nil, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("group %s: gid %q: %w", name, g.Gid, err)
	}
	if gid == 0 {
		// 0 would mean "leave the socket's group" to ipc.ListenConfig, and
		// root's group needs no option.
		return nil, fmt.Errorf("group %s is gid 0; root already has access", name)
	}
	return &ipc.Group{Name: g.Name, GID: uint32(gid)}, nil
}

// runDirMode is the run directory's mode. Its group is checkerd's, so a
// status group cannot be given it: with one, others may traverse it (o+x,
// not list it) to reach control.sock, which the file mode (0660
// root:<status group>) and the accept check guard like every other socket
// in it (vrrpd.sock and checkerd.sock 0600 root, scripts.sock 0660
// root:<checkerd's group>, each checking its peer with SO_PEERCRED).
func runDirMode(group *ipc.Group) os.FileMode {
	if group != nil {
		return 0o751
	}
	return 0o750
}

// serveControl serves vrrpctl on the run directory's control socket until
// ctx ends: 0600 root, or 0660 root:<status group> with --status-group.
func (d *daemon) serveControl(ctx context.Context) error {
	policy := controlPolicy(d.statusGroup)
	lc := ipc.ListenConfig{Mode: 0o600, Allow: policy.AllowConn, Logger: d.log}
	if d.statusGroup != nil {
		lc.Mode, lc.GID = 0o660, d.statusGroup.GID
	}
	ln, err := lc.Listen(d.dir.Control())
	if err != nil {
		return err
	}
	srv := ipc.NewServer(policy.ServerOptions()...)
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
