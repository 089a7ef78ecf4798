package supervise

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec says what to run and with which privileges.
type Spec struct {
	// Name identifies the child in events, logs and errors ("vrrpd").
	Name string
	// Path is the absolute path of the executable.
	Path string
	// Argv0 is the child's argv[0]; empty means Path. A multi-call binary
	// tells from it which program to be.
	Argv0 string
	// Args are the arguments after argv[0].
	Args []string
	// Env is the child's whole environment. Nil means an empty environment:
	// the supervisor's own environment is never passed on implicitly.
	Env []string
	// AmbientCaps are the capabilities the child keeps, e.g.
	// unix.CAP_NET_RAW and unix.CAP_NET_ADMIN; it ends with exactly these in
	// its inheritable, permitted, effective, ambient and bounding sets, and
	// every other capability is gone for good. Empty: no capabilities.
	AmbientCaps []uintptr
	// Credential, if not nil, is the uid, gid and supplementary groups the
	// child runs as. Nil: the supervisor's.
	Credential *syscall.Credential
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS (prctl(2)): execve never grants
	// privileges again (setuid bits and file capabilities are ignored).
	NoNewPrivs bool
	// ExtraFiles are passed to every process of the child as fds 3, 4, ...
	// (exec.Cmd.ExtraFiles): e.g. a listening socket the supervisor created
	// in a directory the child cannot write to. The Child does not close
	// them; the caller owns them and keeps them open while Run runs.
	ExtraFiles []*os.File
	// Output receives the child's stdout and stderr, one Write per line
	// (the trailing newline included; lines over 64 KiB are split). Writes
	// come from one goroutine per running child; a Writer shared by several
	// Childs must be safe for concurrent use. A Write that blocks
	// eventually blocks the child on a full pipe. Nil: /dev/null.
	Output io.Writer
}

// Options says how to supervise. The zero value is the vrrpkit default.
type Options struct {
	// Backoff is the restart policy; the zero value means DefaultBackoff().
	Backoff Backoff
	// StopTimeout bounds the graceful stop Run does when its context is
	// cancelled: SIGTERM, then after StopTimeout SIGKILL to the process group.
	// Zero means 10 s.
	StopTimeout time.Duration
	// OutputDrain is how long output is still copied after the child exited
	// (a process it left behind may hold its stdout). Zero means 1 s.
	OutputDrain time.Duration
	// OnEvent, if not nil, is called for every Event, in order, from the
	// goroutine that called Run. It must not block for long and must not
	// call Stop.
	OnEvent func(Event)
	// Logger receives the supervisor's own records about the child. Nil
	// discards them.
	Logger *slog.Logger
	// Now and Rand replace time.Now and rand.Float64 (uptime and jitter) in
	// tests.
	Now  func() time.Time
	Rand func() float64
}

// EventKind tells what happened to a child.
type EventKind int

// Event kinds.
const (
	// Started: the child is running as PID.
	Started EventKind = iota + 1
	// Exited: the child exited (State, Uptime), or could not be started (Err).
	Exited
	// Restarting: the child will be started again After this long.
	Restarting
)

func (k EventKind) String() string {
	switch k {
	case Started:
		return "started"
	case Exited:
		return "exited"
	case Restarting:
		return "restarting"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports a change in a child's life.
type Event struct {
	Kind EventKind
	Name string    // Spec.Name
	Time time.Time // from Options.Now
	PID  int       // Started, Exited (0 if it never started)
	// Exited: how the child ended (nil if it never started) and for how long
	// it had been up.
	State  *os.ProcessState
	Uptime time.Duration
	// Exited: why the child could not be started or waited for.
	Err error
	// Restarting: the wait before the next start.
	After time.Duration
}

func (e Event) String() string {
	switch e.Kind {
	case Started:
		return fmt.Sprintf("%s: started, pid %d", e.Name, e.PID)
	case Exited:
		if e.Err != nil {
			return fmt.Sprintf("%s: start failed: %v", e.Name, e.Err)
		}
		return fmt.Sprintf("%s: pid %d %v after %v", e.Name, e.PID, e.State, e.Uptime)
	case Restarting:
		return fmt.Sprintf("%s: restarting in %v", e.Name, e.After)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Kind)
}

// Child supervises one child process. Create it with New, run it with Run,
// end it with Stop or by cancelling Run's context.
type Child struct {
	spec Spec
	opts Options
	keep CapSet

	stopCh chan struct{} // closed by the first Stop

	mu       sync.Mutex
	stopping bool
	cur      *process      // the running child, nil between runs
	runDone  chan struct{} // made by Run, closed when it returns
}

// New checks spec and opts and returns a Child that is not yet running.
func New(spec Spec, opts Options) (*Child, error) {
	if spec.Name == "" {
		return nil, errors.New("supervise: Spec.Name is empty")
	}
	if !filepath.IsAbs(spec.Path) {
		return nil, fmt.Errorf("supervise: %s: Path %q is not absolute", spec.Name, spec.Path)
	}
	for _, c := range spec.AmbientCaps {
		if c > 63 {
			return nil, fmt.Errorf("supervise: %s: capability %d out of range", spec.Name, c)
		}
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff()
	}
	if err := opts.Backoff.Validate(); err != nil {
		return nil, fmt.Errorf("supervise: %s: %w", spec.Name, err)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.OutputDrain <= 0 {
		opts.OutputDrain = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	spec.Args = append([]string(nil), spec.Args...)
	spec.Env = append([]string{}, spec.Env...) // non-nil: empty, not inherited
	spec.AmbientCaps = append([]uintptr(nil), spec.AmbientCaps...)
	if spec.Credential != nil {
		cred := *spec.Credential
		cred.Groups = append([]uint32(nil), cred.Groups...)
		spec.Credential = &cred
	}
	return &Child{
		spec:   spec,
		opts:   opts,
		keep:   CapSetOf(spec.AmbientCaps...),
		stopCh: make(chan struct{}),
	}, nil
}

// PID returns the pid of the running child, or 0.
func (c *Child) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.pid
}

// Run starts the child and restarts it whenever it exits, until Stop is
// called (Run returns nil once the child is gone) or ctx is cancelled (Run
// stops the child as Stop would, with Options.StopTimeout, and returns
// ctx.Err()). Run may be called once. Every goroutine and OS thread Run
// started has ended when it returns.
func (c *Child) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.runDone != nil {
		c.mu.Unlock()
		return fmt.Errorf("supervise: %s: Run called twice", c.spec.Name)
	}
	c.runDone = make(chan struct{})
	c.mu.Unlock()
	defer close(c.runDone)

	log := c.opts.Logger.With("child", c.spec.Name)
	restarts := newRestarts(c.opts.Backoff, c.opts.Rand)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.mu.Lock()
		if c.stopping {
			c.mu.Unlock()
			return nil
		}
		// Under c.mu, so Stop sees either this child or c.stopping first.
		p, err := c.spawn()
		c.cur = p
		c.mu.Unlock()

		var uptime time.Duration
		if err != nil {
			log.Error("cannot start child", "err", err)
			c.emit(Event{Kind: Exited, Err: err})
		} else {
			log.Info("child started", "pid", p.pid)
			c.emit(Event{Kind: Started, PID: p.pid})
			var cancelled error
			select {
			case <-p.done:
			case <-ctx.Done():
				cancelled = ctx.Err()
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.StopTimeout)
				if err := c.terminate(stopCtx, p); err != nil {
					log.Warn("child killed", "pid", p.pid, "err", err)
				}
				cancel()
			}
			uptime = p.exitedAt.Sub(p.startedAt)
			c.mu.Lock()
			c.cur = nil
			stopping := c.stopping
			c.mu.Unlock()
			ev := Event{Kind: Exited, PID: p.pid, State: p.state, Uptime: uptime, Err: p.waitErr}
			if cancelled != nil || stopping {
				log.Info("child stopped", "pid", p.pid, "status", p.state)
				c.emit(ev)
				return cancelled
			}
			log.Warn("child exited", "pid", p.pid, "status", p.state, "uptime", uptime)
			c.emit(ev)
		}

		delay := restarts.next(uptime)
		log.Info("restarting child", "after", delay)
		c.emit(Event{Kind: Restarting, After: delay})
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-c.stopCh:
				t.Stop()
				return nil
			}
		}
	}
}

// Stop stops the child for good: no more restarts; the child (alone) gets
// SIGTERM and, if it is still there when ctx is done, its whole process
// group gets SIGKILL. Stop returns when the child has been reaped and Run
// (if it was called) has returned. The error, wrapping ctx.Err(), is non-nil
// if the child had to be killed.
// Stop may be called more than once and before Run (Run then returns nil
// without starting anything).
func (c *Child) Stop(ctx context.Context) error {
	c.mu.Lock()
	if !c.stopping {
		c.stopping = true
		close(c.stopCh)
	}
	p, runDone := c.cur, c.runDone
	c.mu.Unlock()

	var err error
	if p != nil {
		err = c.terminate(ctx, p)
	}
	if runDone != nil {
		<-runDone
	}
	return err
}

// terminate sends p SIGTERM, waits until it exits or ctx is done, in which
// case it SIGKILLs p's process group and waits for p to be reaped.
func (c *Child) terminate(ctx context.Context, p *process) error {
	p.signal(unix.SIGTERM, false)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	p.signal(unix.SIGKILL, true)
	<-p.done
	return fmt.Errorf("supervise: %s: pid %d still running after SIGTERM (%w); SIGKILLed its process group",
		c.spec.Name, p.pid, ctx.Err())
}

func (c *Child) emit(e Event) {
	if c.opts.OnEvent == nil {
		return
	}
	e.Name = c.spec.Name
	e.Time = c.opts.Now()
	c.opts.OnEvent(e)
}

// process is one run of the child: from fork to reaping.
type process struct {
	done chan struct{} // closed when reaped and output drained

	// Set before spawn returns.
	pid       int
	startedAt time.Time

	// Set before done is closed.
	exitedAt time.Time
	state    *os.ProcessState
	waitErr  error

	mu     sync.Mutex
	exited bool // the child is a zombie or gone: its pid may not be signalled
}

// signal sends sig to the child, or to its process group, unless it already
// exited. Until the child is reaped its pid (and so its process group id)
// cannot be reused, and exited is set before reaping, so this never signals a
// stranger.
func (p *process) signal(sig unix.Signal, group bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return
	}
	pid := p.pid
	if group {
		pid = -pid
	}
	_ = unix.Kill(pid, sig) // ESRCH: it is exiting anyway
}

// spawn starts the child from a fresh locked OS thread and returns once it
// runs (or failed to start).
func (c *Child) spawn() (*process, error) {
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go c.runProcess(p, started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("supervise: %s: %w", c.spec.Name, err)
	}
	return p, nil
}

// runProcess owns the OS thread the child is forked from, for the child's
// whole life (see the package doc: Pdeathsig and per-thread credentials). It
// reports on started whether the child runs, then waits for it, reaps it,
// and returns, taking the thread with it.
func (c *Child) runProcess(p *process, started chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread never exits (the runtime wedges it instead), so it
		// would keep the restricted credentials forever. Hold it while
		// another goroutine, which therefore gets another thread, does the
		// work; then give it back untouched.
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.runProcess(p, started)
		}()
		<-done
		runtime.UnlockOSThread()
		return
	}
	// Deliberately no UnlockOSThread: this thread's credentials are changed
	// for good, and its death must coincide with the child's (Pdeathsig).

	childRoot := os.Geteuid() == 0
	if c.spec.Credential != nil {
		childRoot = c.spec.Credential.Uid == 0
	}
	if err := restrictThread(c.keep, childRoot, c.spec.NoNewPrivs); err != nil {
		started <- fmt.Errorf("preparing privileges: %w", err)
		return
	}

	var r, w *os.File
	if c.spec.Output != nil {
		var err error
		if r, w, err = os.Pipe(); err != nil {
			started <- fmt.Errorf("output pipe: %w", err)
			return
		}
	}
	cmd := &exec.Cmd{
		Path:       c.spec.Path,
		Args:       append([]string{cmp.Or(c.spec.Argv0, c.spec.Path)}, c.spec.Args...),
		Env:        c.spec.Env,
		ExtraFiles: c.spec.ExtraFiles,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:     true,
			Pdeathsig:   syscall.SIGTERM,
			AmbientCaps: c.spec.AmbientCaps,
			Credential:  c.spec.Credential,
		},
	}
	if w != nil { // *os.File: passed as fd 1 and 2, no copying goroutine in os/exec
		cmd.Stdout, cmd.Stderr = w, w
	}
	// Uptime counts from just before the fork: never less than the child's
	// own idea of it, however long this thread waits to run after exec.
	p.startedAt = c.opts.Now()
	err := cmd.Start()
	if w != nil {
		w.Close() // the child has its copy
	}
	if err != nil {
		if r != nil {
			r.Close()
		}
		started <- fmt.Errorf("exec %s: %w", c.spec.Path, err)
		return
	}
	p.pid = cmd.Process.Pid

	copied := make(chan struct{})
	if r != nil {
		go func() {
			defer close(copied)
			copyLines(c.spec.Output, r)
		}()
	} else {
		close(copied)
	}
	started <- nil

	// Wait for the exit without reaping, so signal can tell a live (or
	// zombie) child from a reaped one without racing pid reuse.
	waitExitNoReap(p.pid)
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	p.exitedAt = c.opts.Now()
	err = cmd.Wait()
	p.state = cmd.ProcessState
	if p.state == nil {
		p.waitErr = fmt.Errorf("wait: %w", err)
	}

	if r != nil {
		t := time.NewTimer(c.opts.OutputDrain)
		select {
		case <-copied:
		case <-t.C:
			// Something the child left behind holds the pipe open; stop reading.
		}
		t.Stop()
		r.Close() // unblocks copyLines (the pipe is in the netpoller)
		<-copied
	}
	close(p.done)
}

// waitExitNoReap blocks until pid has exited, leaving it a zombie
// (waitid(2) with WNOWAIT).
func waitExitNoReap(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return // on any other error cmd.Wait reports it
		}
	}
}
