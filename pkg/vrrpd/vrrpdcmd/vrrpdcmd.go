// Package vrrpdcmd is the vrrpd process: its flags, signals and gRPC
// socket around the engine of package vrrpd. cmd/vrrpd is its main, and the
// supervisor's binary runs it too when started as "vrrpd", so that the
// supervisor and vrrpd share one binary's pages (see cmd/supervisor).
//
// On SIGTERM or SIGINT every master steps down: it sends an advert with
// priority 0 (RFC 5798 §6.4.3) and removes the addresses it added.
package vrrpdcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/procmem"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpd"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Main is vrrpd's main without the process: it parses args, runs until
// SIGTERM or SIGINT, and returns the exit status. version is printed by
// -version and logged.
func Main(args []string, stdout, stderr io.Writer, version string) int {
	fs := flag.NewFlagSet("vrrpd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runDir := fs.String("run-dir", rundir.Default, "directory of the control sockets")
	rtPrio := fs.Int("rt-priority", defaultRTPriority, "SCHED_FIFO priority of the timer thread (0: normal scheduling; needs RLIMIT_RTPRIO or CAP_SYS_NICE)")
	checkerdSock := fs.String("checkerd-socket", "", `checkerd's socket, whose health stream moves priorities (default <run-dir>/checkerd.sock; "none": do not follow checkerd)`)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "vrrpd", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vrrpd: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// A smaller heap target than Go's default: procmem.Daemon has the figures.
	log.Debug("gc", "settings", procmem.Apply(procmem.Daemon(), os.LookupEnv).String())
	// stderr is a pipe to the supervisor. If the supervisor dies, vrrpd gets
	// SIGTERM and steps down; a log line written meanwhile must not kill it
	// with SIGPIPE before its VIPs are removed.
	signal.Ignore(syscall.SIGPIPE)
	// Reloads are the supervisor's: it parses and pushes. keepalived's users
	// send SIGHUP to every keepalived process (killall -HUP keepalived); the
	// same habit here (pkill -HUP supervisor matches the children, which run
	// the same binary) must not kill a child with SIGHUP's default action.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *rtPrio < 0 || *rtPrio > 99 {
		fmt.Fprintf(stderr, "vrrpd: -rt-priority %d: want 0..99\n", *rtPrio)
		return 2
	}
	dir := rundir.Dir(*runDir)
	health := *checkerdSock
	switch health {
	case "":
		health = dir.Checkerd()
	case "none":
		health = ""
	}
	if err := serve(ctx, dir, health, *rtPrio, version, log); err != nil {
		log.Error("vrrpd stopped", "err", err)
		return 1
	}
	return 0
}

// defaultRTPriority is the timer thread's SCHED_FIFO priority unless told
// otherwise: low, so that it preempts every normal process (a CPU hog must
// not delay a takeover) and yields to any real-time work of the host's.
const defaultRTPriority = 10

// serve runs the engine and its control socket until ctx ends, following
// checkerd's health stream on the socket health ("" none).
func serve(ctx context.Context, dir rundir.Dir, health string, rtPrio int, version string, log *slog.Logger) error {
	o := vrrpd.Options{Log: log, Clock: vrrpd.SystemClock{RTPriority: rtPrio, Log: log}}
	if health != "" {
		// A restarted vrrpd must not re-add, for a moment, a real server
		// checkerd knows is down: IPVS waits for checkerd's health first.
		o.LVSHealthWait = vrrpd.DefaultLVSHealthWait
	}
	e := vrrpd.New(o)
	// Only root (the supervisor) may push configuration or read status.
	ln, err := ipc.ListenConfig{Mode: 0o600, Allow: ipc.AllowUIDs(0, uint32(os.Getuid())), Logger: log}.Listen(dir.Vrrpd())
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	srv := ipc.NewServer()
	pb.RegisterVrrpdServer(srv, vrrpd.NewServer(e))
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()

	engineDone := make(chan error, 1)
	go func() { engineDone <- e.Run(ctx) }()
	followCtx, stopFollow := context.WithCancel(ctx)
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		if health != "" {
			(&vrrpd.HealthFollower{Path: health, Sink: e, Logger: log}).Run(followCtx)
		}
	}()
	log.Info("vrrpd running", "socket", dir.Vrrpd(), "version", version)
	// Step down first (priority 0, VIPs removed), then stop serving.
	err = <-engineDone
	stopFollow()
	<-followDone
	srv.Stop()
	<-srvDone
	if err != nil {
		return err
	}
	log.Info("vrrpd stopped")
	return nil
}
