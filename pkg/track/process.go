package track

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// maxComm is the longest comm the kernel keeps (TASK_COMM_LEN 16, less
// the NUL).
const maxComm = 15

// ProcSource lists processes: the real /proc (ProcFS) or a fake in tests.
type ProcSource interface {
	// PIDs lists the processes (thread group leaders).
	PIDs() ([]int, error)
	// Stat returns the comm and the state letter of /proc/PID/stat.
	Stat(pid int) (comm string, state byte, err error)
	// Cmdline returns the start of /proc/PID/cmdline, at most max bytes:
	// the arguments, each NUL-terminated.
	Cmdline(pid int, max int) ([]byte, error)
}

// ProcFS is a proc filesystem mounted at the named directory.
type ProcFS string

func (p ProcFS) PIDs() ([]int, error) {
	d, err := os.Open(string(p))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '1' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (p ProcFS) Stat(pid int) (string, byte, error) {
	// The comm and state come first: 128 bytes hold them whatever the pid
	// (keepalived's read_procs reads as much). Plain syscalls: os.Open
	// would try to register each file with the runtime poller.
	var buf [128]byte
	n, err := readSmall(filepath.Join(string(p), strconv.Itoa(pid), "stat"), buf[:])
	if err != nil {
		return "", 0, err
	}
	return parseStat(buf[:n])
}

// readSmall reads up to len(buf) bytes from the start of path.
func readSmall(path string, buf []byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: path, Err: err}
		}
		return n, nil
	}
}

// parseStat reads "PID (COMM) S ..." (proc(5)). COMM may hold ')' itself,
// so the last one ends it.
func parseStat(b []byte) (string, byte, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open || closing+2 >= len(b) {
		return "", 0, fmt.Errorf("malformed stat %q", b)
	}
	return string(b[open+1 : closing]), b[closing+2], nil
}

func (p ProcFS) Cmdline(pid int, max int) ([]byte, error) {
	buf := make([]byte, max)
	n, err := readSmall(filepath.Join(string(p), strconv.Itoa(pid), "cmdline"), buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// procMatcher is the matching rule of one vrrp_track_process
// (core/track_process.c check_process and check_params).
type procMatcher struct {
	name string
	// full: compare argv[0] instead of comm. `process NAME ARGS...` forces
	// it (vrrp_tprocess_process_handler).
	full bool
	// match: "", "exact", "partial" or "initial"; args given without
	// param_match mean exact.
	match  string
	params []byte // the configured arguments, each NUL-terminated
}

func newProcMatcher(c *pb.VrrpTrackProcess) procMatcher {
	p := c.GetProcess()
	m := procMatcher{full: c.GetFullCommand(), match: c.GetParamMatch()}
	if len(p) > 0 {
		m.name = p[0]
	}
	if len(p) > 1 {
		for _, a := range p[1:] {
			m.params = append(append(m.params, a...), 0)
		}
		if m.match == "" {
			m.match = "exact"
		}
		m.full = true
	}
	return m
}

// needsCmdline reports whether matching needs /proc/PID/cmdline.
func (m procMatcher) needsCmdline() bool { return m.full || m.match != "" }

// cmdlineBytes is how much of a cmdline matching needs: the name, the
// arguments, and one byte more, so that exact matching sees a longer
// command line as different. Reading /proc/PID/cmdline reads the process's
// memory (it may be swapped out), so read no more (check_process reads
// vrrp_max_process_name_len + 2 likewise).
// Matching comm with param_match (no arguments configured, so only
// "exact": none) needs the whole argv[0], of unknown length: a page.
func (m procMatcher) cmdlineBytes() int {
	if !m.full {
		return 4096
	}
	return len(m.name) + 1 + len(m.params) + 1
}

// matches applies the rule to one process. cmdline is nil unless
// needsCmdline.
func (m procMatcher) matches(comm string, cmdline []byte) bool {
	var argv0 []byte
	rest := []byte(nil)
	if cmdline != nil {
		argv0 = cmdline
		if i := bytes.IndexByte(cmdline, 0); i >= 0 {
			argv0, rest = cmdline[:i], cmdline[i+1:]
		}
	}
	if m.full {
		if string(argv0) != m.name {
			return false
		}
	} else if comm != m.name {
		return false
	}
	return m.paramsMatch(rest)
}

// paramsMatch is check_params: rest is the process's arguments after
// argv[0], each NUL-terminated.
func (m procMatcher) paramsMatch(rest []byte) bool {
	switch m.match {
	case "":
		return true
	case "exact":
		return bytes.Equal(rest, m.params)
	}
	if len(rest) < len(m.params) {
		return false
	}
	if len(m.params) == 0 {
		return true
	}
	if m.match == "partial" {
		return bytes.HasPrefix(rest, m.params)
	}
	// initial: the last configured argument may be the start of the
	// process's one.
	return len(m.params) == 1 || bytes.HasPrefix(rest, m.params[:len(m.params)-1])
}

// quorumFilter holds a change of a process count's verdict back for
// delay_up / delay_down, as keepalived's fork and terminate timers
// (process_gained_quorum_timer_thread, process_lost_quorum_timer_thread): a
// change reverted before its delay runs out is never reported.
type quorumFilter struct {
	reported State
	pending  bool
	target   State
	deadline time.Time
}

// observe takes the verdict of a scan at now and reports whether the
// reported state changed; wake, if not zero, is when to look again.
func (f *quorumFilter) observe(now time.Time, obs State, delayUp, delayDown time.Duration) (changed bool, wake time.Time) {
	if f.reported == StateInit {
		// The first scan is reported at once (init_track_processes).
		f.reported = obs
		return true, time.Time{}
	}
	if obs == f.reported {
		f.pending = false
		return false, time.Time{}
	}
	if !f.pending || f.target != obs {
		d := delayDown
		if obs == StateUp {
			d = delayUp
		}
		f.pending, f.target, f.deadline = true, obs, now.Add(d)
	}
	if !now.Before(f.deadline) {
		f.reported, f.pending = obs, false
		return true, time.Time{}
	}
	return false, f.deadline
}

// procTracker is one vrrp_track_process.
type procTracker struct {
	key                Key
	m                  procMatcher
	quorum, quorumMax  int
	delayUp, delayDown time.Duration
	report             func(Result)
	filter             quorumFilter
}

func newProcTracker(k Key, c *pb.VrrpTrackProcess, report func(Result)) *procTracker {
	return &procTracker{key: k, m: newProcMatcher(c), quorum: int(c.GetQuorum()), quorumMax: int(c.GetQuorumMax()),
		delayUp: c.GetDelayUp().AsDuration(), delayDown: c.GetDelayDown().AsDuration(), report: report}
}

// verdict says whether count processes make quorum: quorum <= count <=
// quorum_max, quorum_max 0 meaning no maximum. quorum 0 with quorum_max 0 is
// keepalived's "quorum_max 0": up only while none runs
// (vrrp_tprocess_quorum_max_handler).
func (pt *procTracker) verdict(count int) State {
	var up bool
	switch {
	case pt.quorum == 0 && pt.quorumMax == 0:
		up = count == 0
	case pt.quorumMax == 0:
		up = count >= pt.quorum
	default:
		up = count >= pt.quorum && count <= pt.quorumMax
	}
	if up {
		return StateUp
	}
	return StateDown
}

func (pt *procTracker) describe(count int) string {
	qmax := "any"
	if pt.quorumMax > 0 || pt.quorum == 0 {
		qmax = strconv.Itoa(pt.quorumMax)
	}
	return fmt.Sprintf("%d matching processes (quorum %d..%s)", count, pt.quorum, qmax)
}

// procScanner scans /proc for every process tracker of a Set.
type procScanner struct {
	s     *Set
	wakeC chan struct{}

	scanMu sync.Mutex // one scan at a time

	mu       sync.Mutex
	trackers map[*procTracker]struct{}
	failing  bool // the last scan could not list /proc (logged)
}

func newProcScanner(s *Set) *procScanner {
	return &procScanner{s: s, wakeC: make(chan struct{}, 1), trackers: map[*procTracker]struct{}{}}
}

func (ps *procScanner) add(pt *procTracker) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.trackers[pt] = struct{}{}
}

func (ps *procScanner) remove(pt *procTracker) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.trackers, pt)
}

// wake makes run scan now.
func (ps *procScanner) wake() {
	select {
	case ps.wakeC <- struct{}{}:
	default:
	}
}

// run scans every ProcInterval, and at the end of a pending delay, while
// there are trackers.
func (ps *procScanner) run(ctx context.Context) {
	clk := ps.s.opts.Clock
	var timer Timer
	var timerC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-ps.wakeC:
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
		}
		timer, timerC = nil, nil
		n, wake := ps.scan()
		if n == 0 {
			continue
		}
		d := ps.s.opts.ProcInterval
		if !wake.IsZero() {
			d = min(d, max(wake.Sub(clk.Now()), 0))
		}
		timer = clk.NewTimer(d)
		timerC = timer.C()
	}
}

// scan counts each tracker's processes, reports, and returns how many
// trackers there are and the earliest pending delay's end.
func (ps *procScanner) scan() (int, time.Time) {
	ps.scanMu.Lock()
	defer ps.scanMu.Unlock()
	ps.mu.Lock()
	list := make([]*procTracker, 0, len(ps.trackers))
	for pt := range ps.trackers {
		list = append(list, pt)
	}
	ps.mu.Unlock()
	if len(list) == 0 {
		return 0, time.Time{}
	}
	needComm := false
	cmdMax := 0
	for _, pt := range list {
		if !pt.m.full {
			needComm = true
		}
		if pt.m.needsCmdline() {
			cmdMax = max(cmdMax, pt.m.cmdlineBytes())
		}
	}
	src := ps.s.opts.Proc
	counts := make([]int, len(list))
	pids, err := src.PIDs()
	if err != nil {
		// Nothing is known: keep every result as it is.
		if !ps.failing {
			ps.s.log.Warn("cannot list processes; vrrp_track_process results stay as they were", "err", err)
			ps.failing = true
		}
		return len(list), time.Time{}
	}
	ps.failing = false
	for _, pid := range pids {
		var comm string
		if needComm {
			c, state, err := src.Stat(pid)
			if err != nil {
				continue // gone meanwhile
			}
			if state == 'Z' {
				continue // a zombie is no longer running (read_procs)
			}
			comm = c
		}
		var cmdline []byte
		cmdRead := false
		for i, pt := range list {
			if !pt.m.full && comm != pt.m.name {
				continue // comm decides first: cmdline only when it might match
			}
			if pt.m.needsCmdline() && !cmdRead {
				cmdRead = true
				cmdline, err = src.Cmdline(pid, cmdMax)
				if err != nil || len(cmdline) == 0 {
					cmdline = nil // gone, a zombie, or a kernel thread
				}
			}
			if pt.m.needsCmdline() && cmdline == nil {
				continue
			}
			if pt.m.matches(comm, cmdline) {
				counts[i]++
			}
		}
	}
	now := ps.s.opts.Clock.Now()
	var earliest time.Time
	var reports []func()
	for i, pt := range list {
		changed, wake := pt.filter.observe(now, pt.verdict(counts[i]), pt.delayUp, pt.delayDown)
		if !wake.IsZero() && (earliest.IsZero() || wake.Before(earliest)) {
			earliest = wake
		}
		// The count is in Detail, not Value: a count that changes within
		// the same verdict is not a transition.
		r := Result{Key: pt.key, State: pt.filter.reported, Detail: pt.describe(counts[i])}
		if changed {
			ps.s.log.Info("track process quorum", "vrrp_track_process", pt.key.Name, "state", r.State, "detail", r.Detail)
		}
		rep := pt.report
		reports = append(reports, func() { rep(r) })
	}
	for _, f := range reports {
		f()
	}
	return len(list), earliest
}
