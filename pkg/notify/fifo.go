package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
)

// fifo is one open notify FIFO and its reader script.
type fifo struct {
	plan    FIFOPlan
	fd      int
	created bool

	// The reader script, when configured: stopped by cancel, done when it
	// has returned.
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	exited bool
}

// openFIFO does what keepalived's fifo_open (lib/notify.c) does: create
// the FIFO if missing, mode 0644 and chown to the configured user/group,
// and open it O_RDWR|O_NONBLOCK|O_NOFOLLOW, so that a FIFO nobody reads
// never blocks a write (a full pipe drops the line with EAGAIN, which
// keepalived ignores too).
func openFIFO(p FIFOPlan) (*fifo, error) {
	f := &fifo{plan: p, fd: -1}
	err := syscall.Mkfifo(p.Path, 0o644)
	switch {
	case err == nil:
		f.created = true
		// mkfifo is subject to the umask; keepalived's 0644 is meant.
		if err := os.Chmod(p.Path, 0o644); err != nil {
			_ = os.Remove(p.Path)
			return nil, fmt.Errorf("%s %s: %w", p.Kind, p.Path, err)
		}
		if err := chownFIFO(p); err != nil {
			_ = os.Remove(p.Path)
			return nil, fmt.Errorf("%s %s: %w", p.Kind, p.Path, err)
		}
	case errors.Is(err, syscall.EEXIST):
	default:
		return nil, fmt.Errorf("%s: unable to create notify fifo %s: %w", p.Kind, p.Path, err)
	}
	fd, err := syscall.Open(p.Path, syscall.O_RDWR|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if f.created {
			_ = os.Remove(p.Path)
		}
		return nil, fmt.Errorf("%s: unable to open notify fifo %s: %w", p.Kind, p.Path, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("%s: %s is not a FIFO", p.Kind, p.Path)
	}
	f.fd = fd
	return f, nil
}

func chownFIFO(p FIFOPlan) error {
	uid, gid := -1, -1
	if p.User != "" {
		u, err := user.Lookup(p.User)
		if err != nil {
			return fmt.Errorf("user %s: %w", p.User, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		if p.Group == "" {
			gid, _ = strconv.Atoi(u.Gid)
		}
	}
	if p.Group != "" {
		g, err := user.LookupGroup(p.Group)
		if err != nil {
			return fmt.Errorf("group %s: %w", p.Group, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	return os.Lchown(p.Path, uid, gid)
}

// write writes one line with a single write(2); errors (EAGAIN on a full
// pipe) are returned for logging and otherwise ignored, as keepalived
// does.
func (f *fifo) write(line string) error {
	_, err := syscall.Write(f.fd, []byte(line))
	return err
}

// startReader runs notify_fifo_script with the FIFO path as its last
// argument, with no timeout, until stop. keepalived does not restart a
// reader that exits (it logs "notify fifo script terminated"); vrrpkit
// restarts it on the next Apply, as keepalived's reload does.
func (f *fifo) startReader(log *slog.Logger, r Runner, security bool) {
	s := f.plan.Script
	if s == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.done = make(chan struct{})
	cmd := scriptrun.Command{
		Name:     f.plan.Kind + "_script",
		Args:     append(slices.Clone(s.Args), f.plan.Path),
		User:     s.User,
		Group:    s.Group,
		Security: security,
	}
	go func() {
		defer close(f.done)
		res := r.Run(ctx, cmd)
		f.mu.Lock()
		f.exited = true
		f.mu.Unlock()
		if ctx.Err() == nil {
			log.Warn("notify fifo script terminated", "fifo", f.plan.Path, "script", cmd.Args[0],
				"exit_status", res.ExitStatus, "signal", int(res.Signal), "error", errString(res.Err))
		}
	}()
}

func (f *fifo) readerExited() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exited
}

// close stops the reader and closes the FIFO. Like keepalived's
// fifo_close it unlinks a FIFO it created first, so that a reader that
// loops reopening it cannot reopen this one.
func (f *fifo) close(ctx context.Context) error {
	if f.created {
		_ = os.Remove(f.plan.Path)
	}
	if f.fd >= 0 {
		_ = syscall.Close(f.fd)
		f.fd = -1
	}
	if f.cancel != nil {
		f.cancel()
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("%s %s: reader script did not stop: %w", f.plan.Kind, f.plan.Path, ctx.Err())
		}
	}
	return nil
}

func sameFIFO(a, b FIFOPlan) bool {
	if a.Kind != b.Kind || a.Path != b.Path || a.User != b.User || a.Group != b.Group || (a.Script == nil) != (b.Script == nil) {
		return false
	}
	if a.Script == nil {
		return true
	}
	return slices.Equal(a.Script.Args, b.Script.Args) && a.Script.User == b.Script.User && a.Script.Group == b.Script.Group
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
