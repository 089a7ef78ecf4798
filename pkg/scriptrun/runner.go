package scriptrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH a script gets, and the one a bare command name is
// looked up in: systemd's default PATH, which is what keepalived's scripts
// see when systemd starts keepalived (keepalived passes its own environment
// on; vrrpkit passes only this).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Runner runs scripts. The zero value is usable: scripts run as the
// caller's own user with the environment PATH=DefaultPath. A Runner is safe
// for concurrent use; runs are independent of one another.
//
// How a script runs (keepalived's system_call_script and set_script_env,
// lib/notify.c):
//   - Args are exec'd directly, never through a shell, except for
//     keepalived's "</path" special case, which runs as /bin/sh -c.
//   - As the script's uid and gid, with setgroups([gid]) (keepalived's
//     setgroups(1, &gid)), or the user's groups with InitGroups. A script
//     as root keeps root's capabilities; one as another user has none, as
//     the kernel clears them when a root process changes uid.
//   - Environment: only Env (default PATH=DefaultPath). Working directory /.
//   - stdin, stdout and stderr are /dev/null (keepalived's set_std_fd), so
//     no pipe can keep a run alive after the script exits, and a daemon a
//     notify script started never gets SIGPIPE.
//   - Its own process group (setpgid); at Timeout, or when ctx ends, the
//     whole group is sent SIGKILL. What the script leaves behind after a
//     normal exit (a daemon a notify script started) is left alone, as
//     keepalived does.
//   - The script gets SIGTERM if the supervisor dies (keepalived's
//     PR_SET_PDEATHSIG). Linux ties that to the thread that forked (Go
//     issue 27505): a goroutine of the supervisor that exits while holding
//     runtime.LockOSThread ends its thread and would SIGTERM the scripts
//     forked on it, so the supervisor must not do that.
//   - RLIMIT_RTPRIO is 0 (see resetRTPrio).
type Runner struct {
	// Log receives keepalived's warnings about scripts (each distinct one
	// once per Runner). Nil: slog.Default().
	Log *slog.Logger
	// DefaultUser and DefaultGroup are global_defs script_user and
	// script_group (or ResolveDefaultUser's answer) for a Command that
	// names no user. DefaultUser "" is the supervisor's own user.
	DefaultUser, DefaultGroup string
	// InitGroups gives a script its user's supplementary groups too.
	// keepalived does not (setgroups(1, &gid)); off by default.
	InitGroups bool
	// Env is the script's whole environment; nil is PATH=DefaultPath. The
	// PATH in it is the one bare command names are looked up in.
	Env []string
	// KillGrace, when positive, makes a timeout send SIGTERM to the
	// process group first and SIGKILL KillGrace later, as keepalived does
	// for vrrp_script (2 s, vrrp_scheduler.c). Zero: SIGKILL at once.
	KillGrace time.Duration

	// Test seams. Nil: os/user, time.Now.
	LookupUser  func(name string) (*user.User, error)
	LookupGroup func(name string) (*user.Group, error)
	Now         func() time.Time

	// resetResource is the rlimit start resets, RLIMIT_RTPRIO when 0: a
	// test without CAP_SYS_RESOURCE cannot raise RLIMIT_RTPRIO to see it
	// reset, but can lower another limit and see that reset.
	resetResource int

	mu     sync.Mutex
	warned map[string]bool
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) env() []string {
	if r.Env != nil {
		return r.Env
	}
	return []string{"PATH=" + DefaultPath}
}

func (r *Runner) searchPath() string {
	env := r.env()
	for i := len(env) - 1; i >= 0; i-- {
		if len(env[i]) >= 5 && env[i][:5] == "PATH=" {
			return env[i][5:]
		}
	}
	return DefaultPath
}

// warnOnce logs msg the first time this Runner sees it: the checks run at
// every Run, keepalived's once per configuration load.
func (r *Runner) warnOnce(cmd Command, msg string) {
	r.mu.Lock()
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	seen := r.warned[msg]
	r.warned[msg] = true
	r.mu.Unlock()
	if !seen {
		r.log().Warn(msg, "script", cmd.Name)
	}
}

// Run runs cmd to completion, its timeout or the end of ctx, and reports how
// it ended. It never panics and never returns before the script has exited
// and been reaped (the processes it left in its group are not waited for,
// unless they were killed with it).
func (r *Runner) Run(ctx context.Context, cmd Command) Result {
	p, err := r.prepare(cmd)
	if err != nil {
		r.warnOnce(cmd, err.Error())
		return Result{ExitStatus: -1, Err: err}
	}
	for _, w := range p.warnings {
		r.warnOnce(cmd, w)
	}
	if !cmd.Security {
		// keepalived reports this when loading a configuration with scripts
		// (vrrp.c, check_vrrp_script_security).
		r.warnOnce(Command{}, "SECURITY VIOLATION - scripts are being executed but script_security not enabled.")
	}
	return r.exec(ctx, cmd, p)
}

// Check runs the checks Run makes before it forks (the script's user,
// path search, access, the x bit, enable_script_security) and returns
// what would stop it, a *StartError; nil when cmd would start. keepalived
// makes them when it loads a configuration and disables what fails
// (lib/notify.c check_script_secure).
func (r *Runner) Check(cmd Command) error {
	_, err := r.prepare(cmd)
	return err
}

func (r *Runner) exec(ctx context.Context, cmd Command, p plan) Result {
	cred := &syscall.Credential{Uid: p.id.uid, Gid: p.id.gid, Groups: p.id.groups}
	if os.Geteuid() != 0 && p.id.uid == uint32(os.Geteuid()) && p.id.gid == uint32(os.Getegid()) {
		// Not root and running as ourselves: setgroups(2) would fail
		// (EPERM) and changes nothing we may change.
		cred = nil
	}
	mk := func() *exec.Cmd {
		return &exec.Cmd{
			Path: p.path,
			Args: p.argv,
			Env:  r.env(),
			Dir:  "/",
			// Stdin, Stdout, Stderr nil: /dev/null, and no copying goroutines
			// for Wait to wait on.
			SysProcAttr: &syscall.SysProcAttr{
				Setpgid:    true,
				Pdeathsig:  syscall.SIGTERM,
				Credential: cred,
			},
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{ExitStatus: -1, Err: startErr(ErrExec, "script %s not started: %v", p.path, err)}
	}
	start := r.now()
	c, err := r.start(mk)
	if err != nil {
		e := startErr(ErrExec, "Error exec-ing command '%s', error %d: %v", p.path, errno(err), unwrapErrno(err))
		if errors.Is(err, unix.EACCES) {
			e.(*StartError).Kind = ErrNotExecutable
		} else if errors.Is(err, unix.ENOENT) {
			e.(*StartError).Kind = ErrNotFound
		}
		r.warnOnce(cmd, e.Error())
		return Result{ExitStatus: -1, Err: e}
	}
	pid := c.Process.Pid

	// Learn of the exit without reaping, so the process group id stays
	// ours (the leader is at worst a zombie) until we are done killing it.
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				return
			}
		}
	}()

	var timeout <-chan time.Time
	if cmd.Timeout > 0 {
		t := time.NewTimer(cmd.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	res := Result{ExitStatus: -1}
	select {
	case <-exited:
	case <-timeout:
		res.TimedOut = true
		grace := r.KillGrace
		if cmd.KillGrace > 0 {
			grace = cmd.KillGrace
		}
		terminate(pid, exited, grace)
	case <-ctx.Done():
		res.Err = startErr(ErrExec, "script %s killed: %v", p.path, ctx.Err())
		killGroup(pid, unix.SIGKILL)
	}
	<-exited
	err = c.Wait()
	res.Duration = r.now().Sub(start)
	var ws syscall.WaitStatus
	ok := false
	if c.ProcessState != nil {
		ws, ok = c.ProcessState.Sys().(syscall.WaitStatus)
	}
	switch {
	case !ok:
		res.Err = startErr(ErrExec, "script %s: wait: %v", p.path, err)
	case ws.Exited():
		res.ExitStatus = ws.ExitStatus()
	case ws.Signaled():
		res.Signal = ws.Signal()
	}
	return res
}

// terminate ends a script that outlived its timeout: its whole group gets
// SIGKILL, after a SIGTERM and grace if that is set. The group gets
// SIGKILL even when the leader obeyed SIGTERM, for the children it left
// (keepalived's vrrp_script_child_thread does the same).
func terminate(pid int, exited <-chan struct{}, grace time.Duration) {
	if grace > 0 {
		killGroup(pid, unix.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-exited:
		case <-t.C:
		}
		t.Stop()
	}
	killGroup(pid, unix.SIGKILL)
}

func killGroup(pgid int, sig unix.Signal) {
	// ESRCH: the group is already empty; nothing else can fail for root.
	_ = unix.Kill(-pgid, sig)
}

func unwrapErrno(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

// start starts c with RLIMIT_RTPRIO 0 in the script.
//
// The supervisor may hold a raised RLIMIT_RTPRIO for vrrpd, and rlimits are
// inherited across fork and exec; Go gives no hook between fork and exec to
// lower it (SysProcAttr has no rlimits). So when ours is not 0, the child
// is started traced (PTRACE_TRACEME, SysProcAttr.Ptrace): the kernel stops
// it right after execve succeeds, before the script's first instruction;
// we set its limit with prlimit(2) and detach. ptrace needs the same OS
// thread from fork to detach, hence LockOSThread. If ptrace is refused
// (Yama ptrace_scope 3, a seccomp filter), the script is started untraced
// and its limit lowered at once, which leaves it a few instructions with
// the inherited limit; that is logged once. When our own limit is 0 there
// is nothing to reset and no tracing.
//
// Tracing costs nothing visible to the script: it is detached before its
// first instruction. One side effect: a set-uid Args[0] would exec without
// its set-uid bit (the kernel ignores it under ptrace); set-uid programs
// it runs later are unaffected.
func (r *Runner) start(mk func() *exec.Cmd) (*exec.Cmd, error) {
	c := mk()
	res := r.resetResource
	if res == 0 {
		res = unix.RLIMIT_RTPRIO
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(res, &lim); err == nil && lim.Cur == 0 && lim.Max == 0 {
		return c, c.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c.SysProcAttr.Ptrace = true
	zero := unix.Rlimit{}
	if err := c.Start(); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return c, err
		}
		r.warnOnce(Command{}, fmt.Sprintf("scriptrun: ptrace refused (%v): RLIMIT_RTPRIO of scripts is lowered just after they start", err))
		c = mk() // an exec.Cmd is not reusable
		if err := c.Start(); err != nil {
			return c, err
		}
		_ = unix.Prlimit(c.Process.Pid, res, &zero, nil)
		return c, nil
	}
	pid := c.Process.Pid
	var info unix.Siginfo
	for {
		// The exec stop (or an exit, if it was killed meanwhile); WNOWAIT
		// leaves an exit for Wait to reap.
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err := unix.Prlimit(pid, res, &zero, nil); err != nil && !errors.Is(err, unix.ESRCH) {
		// Without CAP_SYS_RESOURCE root may not set the limits of a
		// process of another uid. A raised RTPRIO limit is a lesser harm
		// than a notify script that does not run.
		r.warnOnce(Command{}, fmt.Sprintf("scriptrun: cannot reset RLIMIT_RTPRIO of scripts run as other users (%v); they inherit %d/%d", err, lim.Cur, lim.Max))
	}
	if err := unix.PtraceDetach(pid); err != nil && !errors.Is(err, unix.ESRCH) {
		killGroup(pid, unix.SIGKILL)
		_ = c.Wait()
		return c, fmt.Errorf("ptrace detach: %w", err)
	}
	return c, nil
}
