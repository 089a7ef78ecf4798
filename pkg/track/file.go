package track

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// trackFileMax is how much of a track file keepalived reads
// (process_track_file: a 128-byte buffer, NUL-terminated).
const trackFileMax = 127

// ParseValue reads b as keepalived's process_track_file does with
// strtol(buf, NULL, 0): leading white space, an optional sign, then a
// decimal, 0x-hex or 0-octal number; whatever follows is ignored. found is
// false when there is no number (strtol then gives 0). ok is false when the
// number is out of range (beyond a C long, or outside
// [INT32_MIN, INT32_MAX+1]): keepalived logs "Invalid number" and ignores
// the read.
func ParseValue(b []byte) (v int64, found, ok bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(b) && b[i] == '0' {
		base = 8
		if i+2 < len(b) && (b[i+1] == 'x' || b[i+1] == 'X') && digitVal(b[i+2]) < 16 {
			base = 16
			i += 2
		}
	}
	var u uint64
	overflow := false
	start := i
	for ; i < len(b); i++ {
		d := digitVal(b[i])
		if d >= base {
			break
		}
		if u > (math.MaxUint64-d)/base {
			overflow = true
		} else {
			u = u*base + d
		}
	}
	if i == start {
		return 0, false, true
	}
	// strtol saturates at LONG_MIN/LONG_MAX with ERANGE.
	if overflow || (!neg && u > math.MaxInt64) || (neg && u > 1<<63) {
		return 0, true, false
	}
	v = int64(u)
	if neg {
		v = -v
	}
	if v < math.MinInt32 || v > math.MaxInt32+1 {
		return v, true, false
	}
	return v, true, true
}

func digitVal(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c >= 'a' && c <= 'z':
		return uint64(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return uint64(c-'A') + 10
	}
	return 255
}

// fileTracker watches one vrrp_track_file.
type fileTracker struct {
	key    Key
	cfg    *pb.VrrpTrackFile
	set    *Set
	report func(Result)
	gen    uint64
	log    *slog.Logger

	path       string // as configured: what is read
	dir, base  string // what inotify watches (the resolved directory)
	last       Result
	unreadable bool // logged already

	changed chan struct{} // poked by the inotify watch
	w       *dirWatch     // nil if inotify_init1 failed
}

func newFileTracker(k Key, c *pb.VrrpTrackFile, s *Set, report func(Result), gen uint64) *fileTracker {
	ft := &fileTracker{key: k, cfg: c, set: s, report: report, gen: gen, path: c.GetPath(),
		log: s.log.With("vrrp_track_file", k.Name, "file", c.GetPath())}
	ft.last = Result{Key: k, State: StateDown, Detail: "not read yet"}
	// init_track_files resolves the path so that inotify watches the
	// directory that really holds the file.
	p, err := filepath.Abs(ft.path)
	if err != nil {
		p = ft.path
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	} else if d, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		p = filepath.Join(d, filepath.Base(p))
	}
	ft.dir, ft.base = filepath.Dir(p), filepath.Base(p)
	return ft
}

// initFile creates the file as init_file asks (track_file_end_handler):
// only if it is missing, or with overwrite also when it exists, except on a
// reload. checkerd cannot tell a reload from a start except by generation:
// generation 1 is the supervisor's first config, i.e. keepalived's start.
func (ft *fileTracker) initFile() {
	if !ft.cfg.GetInitFile() {
		return
	}
	fi, err := os.Stat(ft.path)
	if err == nil {
		if !ft.cfg.GetInitOverwrite() || ft.gen > 1 {
			return
		}
		if !fi.Mode().IsRegular() {
			ft.log.Warn("Cannot initialise track file - it is not a regular file")
			return
		}
	}
	data := fmt.Appendf(nil, "%d\n", ft.cfg.GetInitValue())
	if err := os.WriteFile(ft.path, data, 0o644); err != nil {
		ft.log.Warn("Unable to initialise track file", "err", err, "hint", ft.userHint("write"))
	}
}

func (ft *fileTracker) userHint(what string) string {
	who := ft.set.opts.RunsAs
	if who == "" {
		who = fmt.Sprintf("uid %d", os.Getuid())
	}
	return fmt.Sprintf("checkerd runs as %s with no capabilities; the file and its directories must let that user %s it", who, what)
}

// start creates the file if init_file says so, starts watching it, then
// reads it and returns the result, without reporting it. Watching before
// the first read means no change in between goes unseen.
func (ft *fileTracker) start() Result {
	ft.initFile()
	ft.changed = make(chan struct{}, 1)
	poke := func() {
		select {
		case ft.changed <- struct{}{}:
		default:
		}
	}
	w, err := newDirWatch(ft.dir, ft.base, poke)
	if err != nil {
		ft.log.Warn("cannot watch the track file's directory; re-reading it periodically only", "dir", ft.dir, "err", err)
	}
	ft.w = w
	r := ft.read()
	ft.last = r
	return r
}

func (ft *fileTracker) read() Result {
	r := Result{Key: ft.key, State: StateDown}
	// O_NONBLOCK as keepalived: a FIFO in its place must not hang us.
	f, err := os.OpenFile(ft.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	var n int
	buf := make([]byte, trackFileMax)
	if err == nil {
		n, err = io.ReadFull(f, buf)
		f.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Detail = "missing (reads as 0)"
		ft.unreadable = false
		return r
	case errors.Is(err, fs.ErrPermission):
		r.Detail = "not readable by checkerd (reads as 0)"
		if !ft.unreadable {
			ft.log.Warn("track file is not readable by checkerd; it counts as 0", "err", err, "hint", ft.userHint("read"))
			ft.unreadable = true
		}
		return r
	case err != nil:
		r.Detail = fmt.Sprintf("unreadable (reads as 0): %v", err)
		if !ft.unreadable {
			ft.log.Warn("track file is unreadable; it counts as 0", "err", err)
			ft.unreadable = true
		}
		return r
	}
	if ft.unreadable {
		ft.log.Info("track file is readable again")
		ft.unreadable = false
	}
	if n == 0 {
		r.Detail = "empty (reads as 0)"
		return r
	}
	v, found, ok := ParseValue(buf[:n])
	if !ok {
		ft.log.Info("Invalid number read from track file - ignoring", "value", v)
		keep := ft.last
		keep.Detail = fmt.Sprintf("invalid number %d ignored; value stays %d", v, keep.Value)
		return keep
	}
	if !found {
		r.Detail = "no number (reads as 0)"
		return r
	}
	r.State, r.Value, r.Detail = StateUp, v, fmt.Sprintf("value %d", v)
	return r
}

// inotifyMask: keepalived's IN_CLOSE_WRITE | IN_DELETE | IN_MOVE, plus
// IN_CREATE (a symlink made in place) and IN_ATTRIB (a chmod that makes
// the file readable or not: checkerd is not root).
const inotifyMask = unix.IN_CLOSE_WRITE | unix.IN_DELETE | unix.IN_MOVE | unix.IN_CREATE | unix.IN_ATTRIB |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// run watches the file until ctx ends. start must have been called.
func (ft *fileTracker) run(ctx context.Context) {
	w := ft.w
	var wg sync.WaitGroup
	if w != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.read()
		}()
		defer func() {
			w.close()
			wg.Wait()
		}()
	}
	clk := ft.set.opts.Clock
	recheck := clk.NewTimer(ft.set.opts.FileRecheck)
	defer func() { recheck.Stop() }()
	reread := func() {
		r := ft.read()
		if !r.same(ft.last) {
			ft.log.Info("track file changed", "state", r.State, "value", r.Value, "detail", r.Detail)
		}
		ft.last = r
		ft.report(r)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ft.changed:
			reread()
		case <-recheck.C():
			recheck = clk.NewTimer(ft.set.opts.FileRecheck)
			// The directory may have been replaced or created since.
			if w != nil {
				if err := w.rewatch(); err != nil {
					ft.log.Debug("re-adding inotify watch", "dir", ft.dir, "err", err)
				}
			}
			reread()
		}
	}
}

// dirWatch is an inotify watch on one directory that pokes on events for
// one name in it.
type dirWatch struct {
	f         *os.File
	dir, base string
	poke      func()
}

func newDirWatch(dir, base string, poke func()) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	// A non-blocking fd: the os.File uses the runtime poller, so Close
	// ends a pending Read.
	w := &dirWatch{f: os.NewFile(uintptr(fd), "inotify"), dir: dir, base: base, poke: poke}
	if err := w.rewatch(); err != nil {
		// Keep the fd: a later rewatch may succeed once the directory exists.
		return w, err
	}
	return w, nil
}

func (w *dirWatch) rewatch() error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var addErr error
	if err := rc.Control(func(fd uintptr) {
		_, addErr = unix.InotifyAddWatch(int(fd), w.dir, inotifyMask)
	}); err != nil {
		return err
	}
	if addErr != nil {
		return fmt.Errorf("inotify_add_watch %s: %w", w.dir, addErr)
	}
	return nil
}

func (w *dirWatch) close() { w.f.Close() }

// read delivers events until the watch is closed.
func (w *dirWatch) read() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameStart := off + unix.SizeofInotifyEvent
			nameEnd := min(nameStart+int(ev.Len), n)
			name := string(bytes.TrimRight(buf[nameStart:nameEnd], "\x00"))
			off = nameEnd
			switch {
			case ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED|unix.IN_Q_OVERFLOW) != 0:
				// The directory went, or events were lost: re-read.
				w.poke()
			case ev.Mask&unix.IN_ISDIR != 0:
			case name == w.base:
				w.poke()
			}
		}
	}
}
