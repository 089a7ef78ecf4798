// Package checkerd is the checkerd process: its flags, signals and gRPC
// socket around package track. cmd/checkerd is its main.
//
// checkerd decides health and never touches the kernel (design.md). The
// supervisor starts it as an unprivileged user with no capabilities, so
// nothing here needs root: it cannot write to the run directory, so the
// supervisor creates the listening socket <run-dir>/checkerd.sock and passes
// it as fd 3 with LISTEN_FDS=1 (sd_listen_fds(3)'s convention); it never
// forks, so vrrp_scripts run through the supervisor's ScriptRunner on
// <run-dir>/scripts.sock. Without LISTEN_FDS (tests, manual runs) it
// listens on <run-dir>/checkerd.sock itself.
//
// LISTEN_PID: systemd sets it to the pid of the process the fds are for,
// and go-systemd's activation package ignores the fds unless it matches.
// The supervisor is a Go program: exec.Cmd cannot set an environment
// variable after fork, so it cannot know the pid to put there. checkerd
// therefore accepts LISTEN_FDS without LISTEN_PID, and ignores the fds only
// when LISTEN_PID is set and names another process (then they were meant
// for someone else, e.g. leaked from a parent's environment).
//
// Only uid 0 may call it (the supervisor applies configs, vrrpd follows
// Health): every RPC is checked against the caller's SO_PEERCRED uid.
//
// On SIGTERM or SIGINT it stops serving and exits 0.
package checkerd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/procmem"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	"github.com/vrrpkit/vrrpkit/pkg/track"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Main is checkerd's main without the process: it parses args, runs until
// SIGTERM or SIGINT, and returns the exit status. version is printed by
// -version and logged.
func Main(args []string, stdout, stderr io.Writer, version string) int {
	fs := flag.NewFlagSet("checkerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runDir := fs.String("run-dir", rundir.Default, "directory of the control sockets")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	procInterval := fs.Duration("proc-interval", time.Second, "how often /proc is scanned for vrrp_track_process")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "checkerd", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "checkerd: -log-level: %v\n", err)
		return 2
	}
	if *procInterval <= 0 {
		fmt.Fprintf(stderr, "checkerd: -proc-interval %v: want > 0\n", *procInterval)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// A smaller heap target than Go's default: procmem.Daemon has the figures.
	log.Debug("gc", "settings", procmem.Apply(procmem.Daemon(), os.LookupEnv).String())
	// One P: procmem.CheckerProcs has the figures.
	log.Debug("gomaxprocs", "procs", procmem.ApplyProcs(procmem.CheckerProcs(), os.LookupEnv))
	// stderr is a pipe to the supervisor; a log line written after it died
	// must not kill checkerd with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	// Reloads are the supervisor's: it parses and pushes. keepalived's users
	// send SIGHUP to every keepalived process (killall -HUP keepalived); the
	// same habit here (pkill -HUP supervisor matches the children, which run
	// the same binary) must not kill a child with SIGHUP's default action.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := Serve(ctx, Options{RunDir: *runDir, ProcInterval: *procInterval, Version: version, Log: log,
		Getenv: os.Getenv, Unsetenv: os.Unsetenv})
	if err != nil {
		log.Error("checkerd stopped", "err", err)
		return 1
	}
	return 0
}

// Options configure Serve.
type Options struct {
	RunDir string
	// ProcInterval: track.Options.ProcInterval.
	ProcInterval time.Duration
	Version      string
	Log          *slog.Logger
	// Getenv and Unsetenv read and clear LISTEN_FDS / LISTEN_PID; nil: no
	// inherited listener.
	Getenv   func(string) string
	Unsetenv func(string) error
	// AllowUIDs may call the service; nil: uid 0 only.
	AllowUIDs []uint32
	// Runner overrides the ScriptRunner client (tests).
	Runner track.ScriptRunner
}

// Serve runs checkerd until ctx ends.
func Serve(ctx context.Context, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	uids := o.AllowUIDs
	if uids == nil {
		uids = []uint32{0}
	}
	allow := ipc.AllowUIDs(uids...)
	ln, how, err := listener(o, allow, log)
	if err != nil {
		return err
	}
	runner := o.Runner
	if runner == nil {
		c, err := NewScriptRunnerClient(filepath.Join(o.RunDir, ScriptsSocket))
		if err != nil {
			ln.Close()
			return err
		}
		defer c.Close()
		runner = c
	}
	set := track.NewSet(track.Options{Runner: runner, ProcInterval: o.ProcInterval, RunsAs: runsAs(), Log: log})
	srv := ipc.NewServer(peerCheck(allow)...)
	scripts, _ := runner.(kindRunner) // MISC_CHECK too, when the runner can
	api := newServer(set, log, scripts)
	pb.RegisterCheckerdServer(srv, api)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	log.Info("checkerd running", "socket", ln.Addr().String(), "listener", how, "user", runsAs(), "version", o.Version)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srvDone:
	}
	// Ending the set and the real-server checks ends every Health stream;
	// then stop serving.
	set.Close()
	api.Close()
	srv.Stop()
	if serveErr == nil {
		<-srvDone
	} else {
		return fmt.Errorf("serving %s: %w", ln.Addr(), serveErr)
	}
	log.Info("checkerd stopped")
	return nil
}

// listener returns the inherited listener (fd 3) if LISTEN_FDS=1 says so,
// else listens on <run-dir>/checkerd.sock. how says which, for the log.
func listener(o Options, allow func(ipc.Peer) error, log *slog.Logger) (net.Listener, string, error) {
	if o.Getenv != nil && o.Getenv("LISTEN_FDS") != "" {
		ln, err := inherited(o.Getenv, log)
		if o.Unsetenv != nil {
			for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} {
				o.Unsetenv(k)
			}
		}
		if err != nil {
			return nil, "", err
		}
		if ln != nil {
			return ln, "inherited fd 3", nil
		}
	}
	path := rundir.Dir(o.RunDir).Checkerd()
	ln, err := ipc.ListenConfig{Mode: 0o600, Allow: allow, Logger: log}.Listen(path)
	if err != nil {
		return nil, "", fmt.Errorf("checkerd socket: %w", err)
	}
	return ln, "own socket", nil
}

// listenFD is sd_listen_fds(3)'s SD_LISTEN_FDS_START.
const listenFD = 3

// inherited returns fd 3 as a Unix stream listener (nil if the fds are
// another process's: see the package doc on LISTEN_PID).
func inherited(getenv func(string) string, log *slog.Logger) (net.Listener, error) {
	if p := getenv("LISTEN_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != os.Getpid() {
			log.Warn("LISTEN_FDS is for another process (LISTEN_PID); listening on the run directory instead", "listen_pid", p)
			return nil, nil
		}
	}
	if n := getenv("LISTEN_FDS"); n != "1" {
		return nil, fmt.Errorf("LISTEN_FDS=%q: want 1 (the checkerd socket as fd %d)", n, listenFD)
	}
	syscall.CloseOnExec(listenFD)
	f := os.NewFile(listenFD, "checkerd.sock (inherited)")
	ln, err := net.FileListener(f)
	f.Close() // FileListener holds its own dup
	if err != nil {
		return nil, fmt.Errorf("inherited fd %d: %w", listenFD, err)
	}
	if _, ok := ln.(*net.UnixListener); !ok {
		ln.Close()
		return nil, fmt.Errorf("inherited fd %d is a %T, want a Unix stream socket", listenFD, ln)
	}
	return ln, nil
}

// runsAs names checkerd's user, for the log hints of unreadable files.
func runsAs() string {
	uid := os.Getuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}
