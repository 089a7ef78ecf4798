package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/snapshot"
	"github.com/vrrpkit/vrrpkit/pkg/supervise"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// vrrpdSocket is vrrpd's control socket in the run directory.
const vrrpdSocket = "vrrpd.sock"

// daemon is the supervisor at run time: it keeps the accepted
// configuration, runs vrrpd and pushes the configuration to every vrrpd it
// starts.
type daemon struct {
	log  *slog.Logger
	opts *options

	mu      sync.Mutex
	current *pb.ConfigSnapshot
	gen     uint64
	started chan struct{} // a new vrrpd process is up: push to it

	// For status.
	startedAt     time.Time
	loadedAt      time.Time
	reloadFailure *pb.ReloadFailure
	vrrpd         childInfo
}

// fastRedial replaces gRPC's default reconnect backoff (1 s to start):
// a restarted vrrpd must get its configuration within a fraction of the
// backups' Master_Down_Interval, and the socket is local.
var fastRedial = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// mastersFile is vrrpd's record of the instances it is master of (see
// cmd/vrrpd MastersFile): rewritten by vrrpd on every change of that set,
// read here when a new vrrpd starts, so that it resumes them.
const mastersFile = "vrrpd.masters"

// runDaemon runs until SIGTERM or SIGINT; then vrrpd steps down and the
// supervisor exits 0.
func runDaemon(o *options, cfg *config.Config, log *slog.Logger) int {
	if err := os.MkdirAll(o.runDir, 0o700); err != nil {
		log.Error("creating the run directory", "dir", o.runDir, "err", err)
		return 1
	}
	if err := os.Chmod(o.runDir, 0o700); err != nil {
		log.Error("securing the run directory", "dir", o.runDir, "err", err)
		return 1
	}
	vrrpd := o.vrrpdPath
	if vrrpd == "" {
		self, err := os.Executable()
		if err != nil {
			log.Error("finding vrrpd", "err", err)
			return 1
		}
		vrrpd = filepath.Join(filepath.Dir(self), "vrrpd")
	}
	now := time.Now()
	d := &daemon{log: log, opts: o, gen: 1, started: make(chan struct{}, 1), startedAt: now, loadedAt: now}
	d.current = snapshot.Build(cfg, o.file, d.gen)
	// A record left by an earlier run of the service is not a crashed
	// vrrpd's: a fresh start waits for the network like keepalived does.
	_ = os.Remove(filepath.Join(o.runDir, mastersFile))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	child, err := supervise.New(supervise.Spec{
		Name:        "vrrpd",
		Path:        vrrpd,
		Args:        []string{"-run-dir", o.runDir, "-log-level", o.logLevel},
		Env:         []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		AmbientCaps: []uintptr{unix.CAP_NET_RAW, unix.CAP_NET_ADMIN},
		Output:      os.Stderr,
	}, supervise.Options{
		Logger: log,
		OnEvent: func(ev supervise.Event) {
			log.Info("child", "event", ev.String())
			d.noteChild(ev)
			if ev.Kind == supervise.Started {
				select {
				case d.started <- struct{}{}:
				default:
				}
			}
		},
	})
	if err != nil {
		log.Error("vrrpd", "err", err)
		return 1
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.pushLoop(ctx, hup)
	}()
	go func() {
		defer wg.Done()
		if err := d.serveControl(ctx); err != nil && ctx.Err() == nil {
			log.Error("control socket; vrrpctl will not reach this supervisor", "err", err)
		}
	}()
	runErr := child.Run(ctx)
	stop()
	wg.Wait()
	if runErr != nil && ctx.Err() == nil {
		log.Error("vrrpd", "err", runErr)
		return 1
	}
	log.Info("supervisor stopped")
	return 0
}

// pushLoop sends the running configuration to each new vrrpd, and turns
// SIGHUP into a validated reload: a refused file keeps the running
// generation.
func (d *daemon) pushLoop(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.started:
			d.push(ctx)
		case <-hup:
			d.reload(ctx)
		}
	}
}

func (d *daemon) reload(ctx context.Context) {
	cfg, diags := config.Parse(d.opts.file, config.Options{ConfigID: d.opts.configID, Host: config.OSHost{}})
	for _, diag := range diags {
		d.log.Warn("config", "finding", diag.String())
	}
	if diags.HasErrors() || cfg == nil {
		d.log.Error("reload refused; keeping the running configuration", "generation", d.gen, "errors", len(diags.Errors()))
		f := &pb.ReloadFailure{At: timestamppb.Now()}
		for _, e := range diags.Errors() {
			f.Errors = append(f.Errors, e.String())
		}
		d.mu.Lock()
		d.reloadFailure = f
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	d.reloadFailure = nil
	d.loadedAt = time.Now()
	d.gen++
	d.current = snapshot.Build(cfg, d.opts.file, d.gen)
	d.mu.Unlock()
	d.log.Info("reload accepted", "generation", d.gen)
	d.push(ctx)
}

// push dials vrrpd's socket (it appears shortly after the process starts)
// and applies the current snapshot.
func (d *daemon) push(ctx context.Context) {
	d.mu.Lock()
	snap := proto.Clone(d.current).(*pb.ConfigSnapshot)
	d.mu.Unlock()
	snap.ResumeMaster = d.readMasters()
	path := filepath.Join(d.opts.runDir, vrrpdSocket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := d.pushOnce(ctx, path, snap); err == nil {
			return
		} else if ctx.Err() != nil {
			return
		} else if time.Now().After(deadline) {
			d.log.Error("pushing the configuration to vrrpd", "generation", snap.GetGeneration(), "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond): // vrrpd is starting: its socket appears within milliseconds
		}
	}
}

func (d *daemon) pushOnce(ctx context.Context, path string, snap *pb.ConfigSnapshot) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := ipc.Dial(dctx, path, fastRedial)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := pb.NewVrrpdClient(conn).ApplyConfig(dctx, snap)
	if err != nil {
		return fmt.Errorf("ApplyConfig: %w", err)
	}
	d.log.Info("configuration applied", "generation", resp.GetGeneration(),
		"added", len(resp.GetAdded()), "changed", len(resp.GetChanged()), "removed", len(resp.GetRemoved()))
	return nil
}

// noteChild keeps what status says about vrrpd.
func (d *daemon) noteChild(ev supervise.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch ev.Kind {
	case supervise.Started:
		if !d.vrrpd.startedAt.IsZero() {
			d.vrrpd.restarts++
		}
		d.vrrpd.pid, d.vrrpd.running, d.vrrpd.startedAt = ev.PID, true, ev.Time
	case supervise.Exited:
		d.vrrpd.running = false
		switch {
		case ev.State != nil:
			d.vrrpd.lastExit = ev.State.String()
		case ev.Err != nil:
			d.vrrpd.lastExit = ev.Err.Error()
		}
	}
}

// readMasters reads what the previous vrrpd recorded as its masters.
func (d *daemon) readMasters() []string {
	b, err := os.ReadFile(filepath.Join(d.opts.runDir, mastersFile))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}
