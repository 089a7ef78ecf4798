package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	sdd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/fanout"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/notify"
	"github.com/vrrpkit/vrrpkit/pkg/plan"
	"github.com/vrrpkit/vrrpkit/pkg/resume"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	"github.com/vrrpkit/vrrpkit/pkg/snapshot"
	"github.com/vrrpkit/vrrpkit/pkg/supervise"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Child names, the keys of daemon.children.
const childVrrpd = "vrrpd"

// daemon is the supervisor at run time: it keeps the accepted
// configuration, runs the children and pushes the configuration to every
// vrrpd it starts.
type daemon struct {
	log    *slog.Logger
	opts   *options
	dir    rundir.Dir
	notify func(state string) // sd_notify(3); a no-op outside systemd
	// statusGroup may use the read-only RPCs (controlAccess); nil: none.
	statusGroup *ipc.Group

	// resume is fed by the follower of the running vrrpd's event stream.
	resume resume.Record
	// scripts runs every script; notifier turns vrrpd's events into
	// notify scripts, FIFO lines and mail.
	scripts  *scripts
	notifier *notify.Dispatcher

	mu      sync.Mutex
	current *pb.ConfigSnapshot
	gen     uint64
	applied uint64        // generation vrrpd last acknowledged
	ready   bool          // READY=1 sent
	started chan struct{} // a new vrrpd process is up: push to it
	// checkerStarted: a new checkerd is up: push to it.
	checkerStarted chan struct{}
	checker        checkerIdentity // zero with --checkerd none
	// reloads are Supervisor.Reload calls, served by pushLoop like SIGHUP so
	// that reloads never overlap.
	reloads chan reloadRequest
	// watch feeds vrrpctl watch (watch.go).
	watch *fanout.Hub[*pb.WatchEvent]

	// children by name (childVrrpd, childCheckerd).
	children map[string]*childInfo

	// vrrpd's resume state. resumeSet is the record taken when the last
	// vrrpd exited; it goes into every push until one succeeds for the
	// current vrrpd (resumePending), so a reload racing a restart does not
	// lose it. stopFollow ends the current follower.
	resumeSet     []string
	resumePending bool
	run           uint64 // vrrpd processes started so far
	stopFollow    context.CancelFunc
	followDone    chan struct{}
	following     chan struct{} // closed once the follower has its first event

	// For status.
	startedAt     time.Time
	loadedAt      time.Time
	reloadFailure *pb.ReloadFailure
}

// fastRedial replaces gRPC's default reconnect backoff (1 s to start):
// a restarted vrrpd must get its configuration within a fraction of the
// backups' Master_Down_Interval, and the socket is local.
var fastRedial = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// runDaemon runs until SIGTERM or SIGINT; then the children step down and
// the supervisor exits 0.
func runDaemon(o *options, cfg *config.Config, log *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	hup := make(chan struct{}, 1)
	go func() { // ends with ctx; signal.Stop above only stops delivery
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case hup <- struct{}{}:
				default:
				}
			}
		}
	}()
	return serve(ctx, o, cfg, log, hup)
}

// serve is the daemon until ctx ends; each value on hup is a reload.
func serve(ctx context.Context, o *options, cfg *config.Config, log *slog.Logger, hup <-chan struct{}) int {
	dir := rundir.Dir(o.runDir)
	var checker checkerIdentity
	if o.checkerdPath != "none" {
		var err error
		if checker, err = resolveChecker(o.checkerUser); err != nil {
			log.Error("checkerd", "err", err)
			return 1
		}
	}
	statusGroup, err := lookupStatusGroup(o.statusGroup) // control.go
	if err != nil {
		log.Error("--status-group", "err", err)
		return 1
	}
	// 0750 root:<checker's group>: checkerd may reach the sockets meant for
	// it (each checks its peer with SO_PEERCRED), nobody else may even look.
	// With a status group, runDirMode opens the directory for traversal.
	if err := os.MkdirAll(o.runDir, 0o750); err != nil {
		log.Error("creating the run directory", "dir", o.runDir, "err", err)
		return 1
	}
	if err := os.Chown(o.runDir, 0, int(checker.gid)); err != nil {
		log.Error("securing the run directory", "dir", o.runDir, "err", err)
		return 1
	}
	if err := os.Chmod(o.runDir, runDirMode(statusGroup)); err != nil {
		log.Error("securing the run directory", "dir", o.runDir, "err", err)
		return 1
	}
	// Without --vrrpd, vrrpd is this very binary (see main).
	vrrpdPath, vrrpdArgv0 := o.vrrpdPath, ""
	if vrrpdPath == "" {
		self, err := os.Executable()
		if err != nil {
			log.Error("finding this program's executable to run vrrpd", "err", err)
			return 1
		}
		vrrpdPath, vrrpdArgv0 = self, childVrrpd
	}
	now := time.Now()
	d := &daemon{
		log: log, opts: o, dir: dir, gen: 1, statusGroup: statusGroup, started: make(chan struct{}, 1), checkerStarted: make(chan struct{}, 1),
		reloads:   make(chan reloadRequest),
		watch:     fanout.New[*pb.WatchEvent](watchBuffer),
		startedAt: now, loadedAt: now,
		children: map[string]*childInfo{},
		notify: func(state string) {
			// NOTIFY_SOCKET is left set: children get an environment of
			// their own (supervise.Spec.Env), and NotifyAccess=main makes
			// systemd ignore anything else anyway.
			if _, err := sdd.SdNotify(false, state); err != nil {
				log.Warn("sd_notify", "err", err)
			}
		},
	}
	d.current = snapshot.Build(cfg, o.file, d.gen)
	d.scripts = &scripts{log: log, runner: &scriptrun.Runner{Log: log}}
	d.scripts.load(cfg, d.current, d.gen)
	d.notifier = notify.New(notify.Options{Log: log, Runner: d.scripts})
	if err := d.notifier.Apply(cfg, d.gen); err != nil {
		log.Error("notify", "err", err)
	}
	// A fresh start has nothing to resume: like keepalived, vrrpd then waits
	// for the network before it takes MASTER. Only a vrrpd that dies under
	// this supervisor leaves a resume set (see childEvent).

	allowTimerRealtime(log)
	specs := []supervise.Spec{{
		Name:        childVrrpd,
		Path:        vrrpdPath,
		Argv0:       vrrpdArgv0,
		Args:        []string{"-run-dir", o.runDir, "-log-level", o.logLevel},
		Env:         childEnv(os.LookupEnv),
		AmbientCaps: []uintptr{unix.CAP_NET_RAW, unix.CAP_NET_ADMIN},
		Output:      os.Stderr,
	}}
	if o.checkerdPath != "none" {
		checkerdPath, checkerdArgv0 := o.checkerdPath, ""
		if checkerdPath == "" {
			self, err := os.Executable()
			if err != nil {
				log.Error("finding this program's executable to run checkerd", "err", err)
				return 1
			}
			checkerdPath, checkerdArgv0 = self, childCheckerd
		}
		ln, err := listenChecker(dir.Checkerd())
		if err != nil {
			log.Error("checkerd", "err", err)
			return 1
		}
		defer ln.Close()
		specs = append(specs, supervise.Spec{
			Name:  childCheckerd,
			Path:  checkerdPath,
			Argv0: checkerdArgv0,
			Args:  []string{"-run-dir", o.runDir, "-log-level", o.logLevel},
			// LISTEN_FDS without LISTEN_PID: the pid is not known before the
			// fork, and fd 3 is only ever set up by this supervisor.
			Env:        append(childEnv(os.LookupEnv), "LISTEN_FDS=1", "LISTEN_FDNAMES="+childCheckerd),
			ExtraFiles: []*os.File{ln},
			Credential: checker.credential(),
			NoNewPrivs: true,
			Output:     os.Stderr,
		})
		log.Info("checkerd runs unprivileged", "user", checker.name, "uid", checker.uid, "gid", checker.gid)
		allowCheckerPing(cfg, checker.gid, log, check.PingGroupRange)
		d.checker = checker
	}
	// global_defs startup_script runs to completion before anything starts,
	// shutdown_script after everything stopped (keepalived's
	// run_startup_script / run_shutdown_script; 10 s timeouts by default).
	d.runGlobalScript(ctx, "startup_script", cfg.GlobalDefs.StartupScript, cfg.GlobalDefs.StartupScriptTimeout.Std())
	defer d.runGlobalScript(context.Background(), "shutdown_script", cfg.GlobalDefs.ShutdownScript, cfg.GlobalDefs.ShutdownScriptTimeout.Std())
	var kids []*supervise.Child
	for _, spec := range specs {
		d.children[spec.Name] = &childInfo{}
		c, err := supervise.New(spec, supervise.Options{Logger: log, OnEvent: d.childEvent})
		if err != nil {
			log.Error("child", "name", spec.Name, "err", err)
			return 1
		}
		kids = append(kids, c)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer d.startDumps(ctx)() // dump.go: SIGUSR1/SIGUSR2, pid files
	var wg sync.WaitGroup
	defer d.watch.Close()
	if _, err := d.startMetrics(ctx, &wg); err != nil { // metrics.go
		log.Error("--metrics-listen", "addr", o.metricsListen, "err", err)
		return 1
	}
	if o.checkerdPath != "none" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.followHealth(ctx) // watch.go
		}()
	}
	// Also without checkerd: vrrpd asks for quorum_up / quorum_down. It
	// serves until the children have exited, not just until SIGTERM: a
	// stopping vrrpd runs omega's quorum_down (pkg/vrrpd quorum.go).
	scriptsCtx, stopScripts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopScripts()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.serveScripts(scriptsCtx, checker); err != nil && scriptsCtx.Err() == nil {
			log.Error("script runner socket; checkerd cannot run vrrp_script or MISC_CHECK, nor vrrpd quorum_up / quorum_down", "err", err)
		}
	}()
	wg.Add(3)
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
	go func() {
		defer wg.Done()
		d.watchdog(ctx)
	}()
	errs := make([]error, len(kids))
	var kwg sync.WaitGroup
	for i, c := range kids {
		kwg.Add(1)
		go func() {
			defer kwg.Done()
			errs[i] = c.Run(ctx)
		}()
	}
	kwg.Wait()
	stop()
	stopScripts()
	wg.Wait()
	d.stopFollower()
	// The children are gone, and with them every event: let the last
	// notify_stop scripts and mails finish.
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := d.notifier.Close(cctx); err != nil {
		log.Warn("notify scripts still running at exit", "err", err)
	}
	cancel()
	failed := false
	for i, err := range errs {
		if err != nil && err != context.Canceled {
			log.Error("child", "name", specs[i].Name, "err", err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	log.Info("supervisor stopped")
	return 0
}

// watchdog sends WATCHDOG=1 every WatchdogSec/2 while ctx lasts, if
// systemd asked for it: sd_watchdog_enabled(3) reads WATCHDOG_USEC (and
// WATCHDOG_PID, which must be ours), and sd_notify(3) recommends pinging at
// half the interval.
//
// A ping says the service works, not merely that this goroutine runs: once
// READY=1 has been sent, each tick first asks vrrpd for its Status, and the
// ping is skipped while vrrpd has not answered one within the last
// interval. A vrrpd that is hung (or down longer than the interval, its
// restarts failing) then makes systemd act on the watchdog (WatchdogSec,
// Restart=on-failure) instead of the unit looking healthy. Before READY=1
// the pings go unconditionally: systemd's start timeout covers start-up.
func (d *daemon) watchdog(ctx context.Context) {
	interval, err := sdd.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog settings", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	// A probe may take a quarter of the interval, so that pings stay at
	// most 3/4 of it apart (5 s at most: a local Status takes
	// milliseconds).
	probe := min(interval/4, 5*time.Second)
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	answered := time.Now()
	skipping := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		ready := d.ready
		d.mu.Unlock()
		if ready {
			err := d.vrrpdAnswers(ctx, probe)
			if err == nil {
				answered = time.Now()
			}
			if silent := time.Since(answered); silent > interval {
				if !skipping {
					d.log.Error("not pinging the systemd watchdog: vrrpd does not answer Status", "for", silent.Round(time.Millisecond), "err", err)
				}
				skipping = true
				continue
			}
			if skipping {
				d.log.Info("vrrpd answers again; pinging the systemd watchdog")
			}
			skipping = false
		}
		d.notify(sdd.SdNotifyWatchdog)
	}
}

// vrrpdAnswers asks vrrpd for its Status, within timeout.
func (d *daemon) vrrpdAnswers(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := ipc.Dial(ctx, d.dir.Vrrpd(), fastRedial)
	if err != nil {
		return err
	}
	defer conn.Close()
	// vrrpd.Engine.Status takes the engine's lock: an engine stuck holding
	// it shows here, not only a dead process.
	_, err = pb.NewVrrpdClient(conn).Status(ctx, &pb.StatusRequest{})
	return err
}

// statusLine is systemd's STATUS=: one cheap line, e.g. "generation 1
// applied; vrrpd pid 123; 2 instances: 1 MASTER, 1 BACKUP".
func (d *daemon) statusLine() string {
	d.mu.Lock()
	var b strings.Builder
	if d.applied > 0 {
		fmt.Fprintf(&b, "generation %d applied", d.applied)
	} else {
		fmt.Fprintf(&b, "generation %d not applied yet", d.gen)
	}
	for _, name := range d.childNames() {
		c := d.children[name]
		if c.running {
			fmt.Fprintf(&b, "; %s pid %d", name, c.pid)
		} else {
			fmt.Fprintf(&b, "; %s not running", name)
		}
	}
	// A refused reload stays on the line until a file is accepted, as in
	// vrrpctl status.
	var refused string
	if f := d.reloadFailure; f != nil && len(f.GetErrors()) > 0 {
		refused = "; last reload refused: " + f.GetErrors()[0]
		if n := len(f.GetErrors()) - 1; n > 0 {
			refused += fmt.Sprintf(" (and %d more)", n)
		}
	}
	d.mu.Unlock()
	b.WriteString("; ")
	b.WriteString(d.resume.Summary())
	b.WriteString(refused)
	return b.String()
}

func (d *daemon) sendStatus() { d.notify("STATUS=" + d.statusLine()) }

// childNames returns the children's names in a stable order. d.mu held.
func (d *daemon) childNames() []string {
	names := make([]string, 0, len(d.children))
	for name := range d.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// pushLoop sends the running configuration to each new vrrpd, and turns
// SIGHUP into a validated reload: a refused file keeps the running
// generation.
func (d *daemon) pushLoop(ctx context.Context, hup <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			// sd_notify(3): STOPPING=1 as the service begins to shut down;
			// the children step down after this.
			d.notify(sdd.SdNotifyStopping)
			return
		case <-d.started:
			d.push(ctx)
		case <-d.checkerStarted:
			d.pushChecker(ctx)
		case <-hup:
			d.reloadNotified(ctx, false)
		case r := <-d.reloads:
			r.reply <- d.reloadNotified(ctx, r.dryRun)
		}
	}
}

// reloadNotified is reload between RELOADING=1 and READY=1 (sd_notify(3)):
// systemd shows the unit "reloading" meanwhile and, with Type=notify-reload
// (systemd 253+), holds `systemctl reload` until READY=1; MONOTONIC_USEC=
// is what ties the two to this reload there (systemd.service(5),
// Type=notify-reload). READY=1 follows a refused file too, with a STATUS=
// saying so: the service runs on, with the generation it had. A dry run is
// no reload, and before the first READY=1 (generation 1 not applied yet) a
// READY=1 here would report a start-up that has not completed: both go
// without.
func (d *daemon) reloadNotified(ctx context.Context, dryRun bool) *pb.ReloadResponse {
	d.mu.Lock()
	ready := d.ready
	d.mu.Unlock()
	if dryRun || !ready {
		return d.reload(ctx, dryRun)
	}
	var now unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
	d.notify(fmt.Sprintf("%s\nMONOTONIC_USEC=%d\nSTATUS=reloading %s", sdd.SdNotifyReloading, now.Nano()/1000, d.opts.file))
	resp := d.reload(ctx, false)
	d.notify(sdd.SdNotifyReady + "\nSTATUS=" + d.statusLine())
	return resp
}

// reload re-reads the file and, unless dryRun, applies it as the next
// generation. A refused file keeps the running generation and is recorded
// for status; a dry run changes nothing at all, not even that record.
func (d *daemon) reload(ctx context.Context, dryRun bool) *pb.ReloadResponse {
	cfg, diags := config.Parse(d.opts.file, config.Options{ConfigID: d.opts.configID, Host: config.OSHost{}})
	resp := &pb.ReloadResponse{DryRun: dryRun}
	for _, diag := range diags {
		if !dryRun {
			d.log.Warn("config", "finding", diag.String())
		}
		if diag.Severity == config.Error {
			resp.Errors = append(resp.Errors, diag.String())
		} else {
			resp.Warnings = append(resp.Warnings, diag.String())
		}
	}
	d.mu.Lock()
	running, gen := d.current, d.gen
	d.mu.Unlock()
	resp.Generation = gen
	if diags.HasErrors() || cfg == nil {
		if dryRun {
			return resp
		}
		d.log.Error("reload refused; keeping the running configuration", "generation", gen, "errors", len(diags.Errors()))
		d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Reload{Reload: resp}})
		f := &pb.ReloadFailure{At: timestamppb.Now(), Errors: resp.Errors}
		d.mu.Lock()
		d.reloadFailure = f
		d.mu.Unlock()
		return resp
	}
	if !dryRun {
		defer func() { d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Reload{Reload: resp}}) }()
	}
	next := snapshot.Build(cfg, d.opts.file, gen+1)
	// Before the plan and before anyone sees next, and outside d.mu (user
	// lookups, a stat of every script): prepare disables the MISC_CHECKs
	// that cannot run, so the plan shown is the one applied.
	loaded := d.scripts.prepare(cfg, next, gen+1)
	resp.Accepted, resp.Generation = true, gen+1
	resp.Plan = plan.Make(running, next).Proto()
	if dryRun {
		return resp
	}
	d.scripts.commit(loaded)
	d.mu.Lock()
	d.reloadFailure = nil
	d.loadedAt = time.Now()
	d.gen++
	d.current = next
	d.mu.Unlock()
	if _, ok := d.children[childCheckerd]; ok {
		allowCheckerPing(cfg, d.checker.gid, d.log, check.PingGroupRange)
	}
	// Before vrrpd hears of the generation: removed instances' notify_deleted
	// and new instances' scripts follow the new file.
	if err := d.notifier.Apply(cfg, gen+1); err != nil {
		d.log.Error("notify", "err", err)
	}
	d.log.Info("reload accepted", "generation", gen+1)
	d.push(ctx)
	if _, ok := d.children[childCheckerd]; ok {
		d.pushChecker(ctx)
	}
	return resp
}

// push dials vrrpd's socket (it appears shortly after the process starts)
// and applies the current snapshot, retrying what may pass (vrrpd not up
// yet) but not what vrrpd refused.
func (d *daemon) push(ctx context.Context) {
	d.mu.Lock()
	snap := proto.Clone(d.current).(*pb.ConfigSnapshot)
	if d.resumePending {
		snap.ResumeMaster = slices.Clone(d.resumeSet)
	}
	run := d.run
	if run > 1 && snap.GetGlobal() != nil {
		// lvs_flush is for the first vrrpd only: a restarted one keeps the
		// kernel's IPVS table (proto GlobalDefs.lvs_flush).
		snap.Global.LvsFlush = false
	}
	// Follow the new vrrpd's events before it gets its configuration, so
	// that its first transitions (INIT -> BACKUP: notify_backup) are seen.
	if d.stopFollow == nil && d.children[childVrrpd].running {
		d.startFollowerLocked(ctx)
	}
	following := d.following
	d.mu.Unlock()
	// Both dial the new vrrpd's socket as it appears: a push that won the
	// race would apply before the subscription exists, and its first
	// transitions would arrive folded into the stream's opening snapshot
	// (no notify_backup, no transition counted). Wait for the follower,
	// briefly (it subscribes within milliseconds of the socket appearing):
	// a follower that cannot subscribe must not hold the push.
	if following != nil {
		select {
		case <-following:
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
			d.log.Warn("pushing the configuration before vrrpd's event stream is followed: its first transitions may be missed")
		}
	}
	var resp *pb.ApplyConfigResponse
	err := retryPush(ctx, func() (err error) {
		resp, err = d.pushOnce(ctx, snap)
		return err
	})
	switch {
	case err == nil:
		d.noteApplied(ctx, run, snap, resp)
	case ctx.Err() != nil:
	case status.Code(err) == codes.InvalidArgument:
		d.log.Error("vrrpd refused the configuration as invalid; not retrying (a bug: the supervisor validated it); fix the config and reload",
			"generation", snap.GetGeneration(), "err", status.Convert(err).Message())
		d.notify("STATUS=vrrpd refused generation " + fmt.Sprint(snap.GetGeneration()) + " as invalid: " + status.Convert(err).Message())
	case status.Code(err) == codes.FailedPrecondition:
		d.log.Error("vrrpd runs a newer generation than this supervisor's; not retrying (another supervisor on the same run directory?)",
			"generation", snap.GetGeneration(), "err", status.Convert(err).Message())
	default:
		d.log.Error("pushing the configuration to vrrpd", "generation", snap.GetGeneration(), "err", err)
	}
}

// retryPush calls once until it succeeds, ctx ends, 10 s pass (a child's
// socket appears within milliseconds of its start), or the child refuses:
// by ApplyConfig's contract (control.proto) nothing was applied then, and
// InvalidArgument (the snapshot's fault) or FailedPrecondition (the child
// runs a newer generation) cannot pass by sending the same bytes again.
// It returns once's last error.
func retryPush(ctx context.Context, once func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	wait := 5 * time.Millisecond
	for {
		err := once()
		if err == nil || ctx.Err() != nil {
			return err
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.FailedPrecondition:
			return err
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

func (d *daemon) pushOnce(ctx context.Context, snap *pb.ConfigSnapshot) (*pb.ApplyConfigResponse, error) {
	path := d.dir.Vrrpd()
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	// vrrpd carries an apply out whole even when this call gives up
	// (Engine.Apply); the bound is for a vrrpd that does not answer, and
	// thousands of instances take a while to start on a loaded machine.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := ipc.Dial(dctx, path, fastRedial)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return pb.NewVrrpdClient(conn).ApplyConfig(dctx, snap)
}

// noteApplied records a successful push: the resume set has been delivered,
// the follower of this vrrpd's events starts if it has not, and systemd
// hears READY=1 the first time (design.md, "Flows" 1: READY=1 once
// generation 1 is applied).
func (d *daemon) noteApplied(ctx context.Context, run uint64, snap *pb.ConfigSnapshot, resp *pb.ApplyConfigResponse) {
	d.log.Info("configuration applied", "generation", resp.GetGeneration(), "resume_master", snap.GetResumeMaster(),
		"added", len(resp.GetAdded()), "changed", len(resp.GetChanged()), "removed", len(resp.GetRemoved()))
	for _, w := range resp.GetWarnings() {
		d.log.Warn("vrrpd", "generation", resp.GetGeneration(), "warning", w)
	}
	d.mu.Lock()
	d.applied = resp.GetGeneration()
	first := !d.ready
	d.ready = true
	// The vrrpd that answered is the current one only if none started
	// since the push began; otherwise the next push is its own.
	current := run == d.run && d.children[childVrrpd].running
	if current {
		d.resumePending = false
	}
	if current && d.stopFollow == nil {
		d.startFollowerLocked(ctx)
	}
	d.mu.Unlock()
	if first {
		d.notify(sdd.SdNotifyReady + "\nSTATUS=" + d.statusLine())
	} else {
		d.sendStatus()
	}
}

// vrrpEvent logs what vrrpd reports (notify scripts will hang off it) and
// keeps STATUS= current.
func (d *daemon) vrrpEvent(ev *pb.VrrpEvent) {
	d.notifier.Event(ev)
	if ev.GetSnapshot() == nil {
		d.publishWatch(&pb.WatchEvent{Event: &pb.WatchEvent_Vrrp{Vrrp: ev}})
	}
	switch e := ev.GetEvent().(type) {
	case *pb.VrrpEvent_Transition:
		tr := e.Transition
		d.log.Info("vrrp transition", "instance", tr.GetInstance(), "from", stateName(tr.GetFrom()), "to", stateName(tr.GetTo()),
			"reason", tr.GetReason(), "priority", tr.GetPriority(), "generation", ev.GetGeneration())
	case *pb.VrrpEvent_Snapshot:
		d.log.Debug("vrrpd event stream", "instances", len(e.Snapshot.GetInstances()), "masters", d.resume.Masters())
	case *pb.VrrpEvent_Address:
		return
	case *pb.VrrpEvent_LowerPriorityMaster:
		lp := e.LowerPriorityMaster
		d.log.Warn("master heard a lower-priority master and answered it (split brain ending)", "instance", lp.GetInstance(),
			"from", lp.GetFrom(), "their_priority", lp.GetTheirPriority(), "priority", lp.GetPriority())
		return
	}
	d.sendStatus()
}

func stateName(s pb.VrrpState) string { return strings.TrimPrefix(s.String(), "VRRP_STATE_") }

// startFollowerLocked starts following the current vrrpd's events. d.mu
// held.
func (d *daemon) startFollowerLocked(ctx context.Context) {
	fctx, cancel := context.WithCancel(ctx)
	done, following := make(chan struct{}), make(chan struct{})
	d.stopFollow, d.followDone, d.following = cancel, done, following
	var first sync.Once
	onEvent := func(ev *pb.VrrpEvent) {
		first.Do(func() { close(following) })
		d.vrrpEvent(ev)
	}
	f := &resume.Follower{Path: d.dir.Vrrpd(), Record: &d.resume, OnEvent: onEvent, Logger: d.log, DialOptions: []grpc.DialOption{fastRedial}}
	go func() {
		defer close(done)
		f.Run(fctx)
	}()
}

// stopFollower ends the follower of vrrpd's events and waits for it.
func (d *daemon) stopFollower() {
	d.mu.Lock()
	cancel, done := d.stopFollow, d.followDone
	d.stopFollow, d.followDone = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// childEvent keeps what status says about a child; for vrrpd it also takes
// the resume record when the process dies and asks for a push when a new
// one starts. It runs on the child's supervise goroutine.
func (d *daemon) childEvent(ev supervise.Event) {
	d.log.Info("child", "event", ev.String())
	d.childPidFile(ev) // dump.go
	d.mu.Lock()
	ci := d.children[ev.Name]
	switch ev.Kind {
	case supervise.Started:
		if !ci.startedAt.IsZero() {
			ci.restarts++
		}
		ci.pid, ci.running, ci.startedAt = ev.PID, true, ev.Time
	case supervise.Exited:
		ci.running = false
		switch {
		case ev.State != nil:
			ci.lastExit = ev.State.String()
		case ev.Err != nil:
			ci.lastExit = ev.Err.Error()
		}
	}
	d.mu.Unlock()
	if ev.Name == childCheckerd && ev.Kind == supervise.Started {
		select {
		case d.checkerStarted <- struct{}{}:
		default:
		}
	}
	if ev.Name == childVrrpd {
		switch ev.Kind {
		case supervise.Started:
			d.mu.Lock()
			d.resumePending = true
			d.run++
			d.mu.Unlock()
			select {
			case d.started <- struct{}{}:
			default:
			}
		case supervise.Exited:
			// Every event the dead vrrpd sent is in the record once its
			// follower is gone.
			d.stopFollower()
			masters := d.resume.Masters()
			d.mu.Lock()
			if d.resumePending {
				// It died before it ran a configuration (its follower saw
				// only an empty snapshot): the set it was given still holds.
				masters = d.resumeSet
			}
			d.resumeSet = masters
			d.mu.Unlock()
			d.log.Info("vrrpd gone; its masters go to the next vrrpd as resume_master", "resume_master", masters)
		}
	}
	if ev.Kind != supervise.Restarting {
		d.sendStatus()
	}
}

// vrrpdRTPriority is the SCHED_FIFO priority vrrpd's timer thread asks for
// (vrrpd -rt-priority; see vrrpd.SystemClock).
const vrrpdRTPriority = 10

// allowTimerRealtime raises RLIMIT_RTPRIO (setrlimit(2)) so that vrrpd,
// which has no CAP_SYS_NICE, may put its timer thread in SCHED_FIFO: a
// CPU-bound process of normal priority then cannot delay a takeover. The
// limit is inherited by every child; it only permits what a process asks
// for, and vrrpd asks for it on one thread.
func allowTimerRealtime(log *slog.Logger) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_RTPRIO, &cur); err == nil && cur.Cur >= vrrpdRTPriority {
		return
	}
	lim := unix.Rlimit{Cur: vrrpdRTPriority, Max: max(cur.Max, vrrpdRTPriority)}
	if err := unix.Setrlimit(unix.RLIMIT_RTPRIO, &lim); err != nil {
		log.Warn("vrrpd's timer thread will run at normal priority: raising RLIMIT_RTPRIO", "err", err)
	}
}

// childEnv is a child's environment: a fixed PATH, and the Go runtime's
// knobs an operator may set on the service (GOGC, GOMEMLIMIT, GODEBUG,
// GOMAXPROCS), so that tuning the unit tunes every process. Nothing else of
// the supervisor's environment reaches the children.
func childEnv(lookup func(string) (string, bool)) []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} {
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// runGlobalScript runs global_defs' startup_script or shutdown_script, if
// set, and logs how it ended; a failure stops nothing, as in keepalived.
func (d *daemon) runGlobalScript(ctx context.Context, keyword string, sc *config.Script, timeout time.Duration) {
	if sc == nil {
		return
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	res := d.scripts.Run(ctx, scriptrun.Command{Name: keyword, Args: sc.Args, User: sc.User, Group: sc.Group, Timeout: timeout})
	switch {
	case res.Err != nil:
		d.log.Error(keyword+" could not run", "err", res.Err)
	case res.TimedOut:
		d.log.Warn(keyword+" timed out and was killed", "timeout", timeout)
	case res.ExitStatus != 0:
		d.log.Warn(keyword+" failed", "exit_status", res.ExitStatus, "signal", res.Signal)
	default:
		d.log.Info(keyword+" done", "duration", res.Duration)
	}
}
