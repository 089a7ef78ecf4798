package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Proc is a long-running command in a lab namespace, started by
// [Host.Start], [Host.Keepalived] or a capture. It runs in its own process
// group with stdout and stderr in a log file; the lab kills the group at
// cleanup if the test has not.
type Proc struct {
	where string // host name, or "switch"
	line  string // command line, for messages
	log   string
	cmd   *exec.Cmd
	done  chan struct{} // closed once the process has been reaped
	err   error         // cmd.Wait's result; read only after done is closed
}

// Start starts a command in the host's namespace (`ip netns exec`, which
// execs it: Pid is the command's pid) in a new process group, with stdout
// and stderr appended to a log file in the lab's directory ([Proc.Log]). It
// fails the test if the command cannot be started.
func (h *Host) Start(name string, args ...string) *Proc {
	h.lab.t.Helper()
	p, err := h.lab.start(h.name, h.netns, name, args...)
	if err != nil {
		h.lab.t.Fatalf("netlab: host %s: %v", h.name, err)
	}
	return p
}

// start starts name in namespace netns; where names the host for messages.
func (l *Lab) start(where, netns, name string, args ...string) (*Proc, error) {
	line := shellJoin(name, args)
	logPath := l.file(where, filepath.Base(name), "log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", line, err)
	}
	defer logf.Close() // the child has its own copy

	// Not CommandContext: the process lives until Kill or the lab's cleanup.
	cmd := exec.Command("ip", append([]string{"netns", "exec", netns, name}, args...)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Pdeathsig: if the test binary dies without cleaning up (a test timeout,
	// SIGKILL) its processes die too; Sweep removes the namespaces later.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("%s: lab already cleaned up", line)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", line, err)
	}
	p := &Proc{where: where, line: line, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// String describes the process: its command line, host and pid.
func (p *Proc) String() string {
	return fmt.Sprintf("%q on %s (pid %d)", p.line, p.where, p.Pid())
}

// Pid returns the process id, which is also its process group id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Log returns the path of the file holding the process's stdout and stderr.
func (p *Proc) Log() string { return p.log }

// Output returns what the process has written to its log so far.
func (p *Proc) Output() (string, error) {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return "", fmt.Errorf("netlab: %s: %w", p, err)
	}
	return string(b), nil
}

// Signal sends sig to the process (not to its group). Signalling a process
// that has exited is not an error.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("netlab: %s: signal %v: %w", p, sig, err)
	}
	return nil
}

// Kill sends SIGKILL to the process's whole group and waits up to 5s for the
// process to be gone.
func (p *Proc) Kill() error {
	p.killGroup()
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("netlab: %s: still running 5s after SIGKILL", p)
	}
}

// killGroup sends SIGKILL to the process group. The group id cannot be
// reused while any member is alive, and members that outlive the leader are
// exactly what this is for.
func (p *Proc) killGroup() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
}

// Done returns a channel that is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to timeout for the process to exit. It returns nil if it
// exited with status 0, an error carrying the exit status and the end of
// the log otherwise, and an error if it is still running after timeout.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return fmt.Errorf("netlab: %s: still running after %v", p, timeout)
	}
	if p.err != nil {
		return fmt.Errorf("netlab: %s: %w; last lines of its log:\n%s", p, p.err, tail(p.log, 20))
	}
	return nil
}

// exitStatus describes cmd.Wait's result for messages.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// WaitLog waits up to timeout for substr to appear in the process's log.
// It fails early if the process exits without logging it.
func (p *Proc) WaitLog(substr string, timeout time.Duration) error {
	return p.WaitLogN(substr, 1, timeout)
}

// WaitLogN waits up to timeout for substr to appear at least n times in the
// process's log (to wait for a second "Entering MASTER STATE", say). It
// fails early if the process exits first.
func (p *Proc) WaitLogN(substr string, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		// Check exit before reading, so a final log line is not missed.
		exited := false
		select {
		case <-p.done:
			exited = true
		default:
		}
		out, err := p.Output()
		if err != nil {
			return err
		}
		got := strings.Count(out, substr)
		if got >= n {
			return nil
		}
		if exited {
			return fmt.Errorf("netlab: %s exited (%v) after logging %q %d of %d times; last lines of its log:\n%s",
				p, p.err, substr, got, n, tail(p.log, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netlab: %s: logged %q %d of %d times in %v; last lines of its log:\n%s",
				p, substr, got, n, timeout, tail(p.log, 20))
		case <-p.done:
		case <-tick.C:
		}
	}
}

// Keepalived writes conf to a file and starts keepalived in the host's
// namespace, VRRP subsystem only, in the foreground, logging to its
// stderr (so to [Proc.Log]) and not to syslog:
//
//	keepalived -n -l -D -G --vrrp -f FILE -p PIDFILE -r VRRPPIDFILE -c CHECKERSPIDFILE
//
// The pid files are unique to this call, so several keepalived run side by
// side. keepalived's VRRP child is in the same process group, so
// [Proc.Kill] stops both; [Proc.Signal] with SIGTERM stops it gracefully
// (priority 0 adverts, VIPs removed). The test is skipped if keepalived is
// not installed.
func (h *Host) Keepalived(conf string) *Proc {
	t := h.lab.t
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("netlab: keepalived is not installed")
	}
	base := h.lab.file(h.name, "keepalived")
	if err := os.WriteFile(base+".conf", []byte(conf), 0o644); err != nil {
		t.Fatalf("netlab: host %s: keepalived config: %v", h.name, err)
	}
	return h.Start("keepalived", "-n", "-l", "-D", "-G", "--vrrp",
		"-f", base+".conf",
		"-p", base+".pid",
		"-r", base+".vrrp.pid",
		"-c", base+".checkers.pid",
	)
}
