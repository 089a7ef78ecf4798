package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Connector makes the connects of TCP_CHECK the way keepalived does
// (check_tcp.c tcp_connect_thread, layer4.c tcp_bind_connect and
// tcp_socket_state): a non-blocking socket, connect(2), one epoll set for
// every connect in progress, SO_ERROR when the socket is writable, close.
// A connect costs five system calls (socket, connect, epoll_ctl, getsockopt,
// close) and no allocation in the steady state, against about ten calls
// (TCP_NODELAY and keep-alive options, getpeername, getsockname, epoll_ctl
// twice) and thirty allocations through net.Dialer.
//
// It also decides a race the way keepalived does: keepalived's thread loop
// (scheduler.c thread_fetch_next_queue) handles the ready sockets that
// epoll_wait returned before it expires timers, so a connect that completed
// is a success even when its timeout is due by the time the loop runs. Go's
// net.Dialer fires the deadline timer first when the process runs late,
// and reports a timeout for a connection that had completed; this
// Connector, before timing a connect out, asks the socket itself (poll(2),
// no wait) whether it has completed.
//
// One goroutine, started by NewConnector and stopped by Close, runs the
// epoll loop. It waits in Go's own poller, the epoll set being a pollable
// file (os.File, SyscallConn), with the file's read deadline as its
// timer: no thread blocked in epoll_wait (which the runtime would hand
// its P away from, and wake again, at every wait), and no system call to
// wake it for a nearer deadline. Its methods are safe for concurrent use.
type Connector struct {
	ep   int
	file *os.File // ep in Go's poller
	raw  syscall.RawConn

	mu         sync.Mutex
	closed     bool
	sleepUntil int64              // the loop's read deadline (mono ns); noDeadline: none
	pending    map[int32]*connect // by fd
	heap       []*connect         // by deadline
	seq        uint32
	done       chan struct{}
	pool       sync.Pool
}

// connect is one connect in progress.
type connect struct {
	fd       int32
	seq      uint32 // tells a reused fd number from the one an event was for
	deadline int64  // monotonic ns since base; noDeadline: none
	idx      int    // in heap; -1 when out
	res      chan error
	cb       func(error) // instead of res (Pool's attempts)
	err      error       // for cb
}

const noDeadline = int64(1<<63 - 1)

// base is the origin of the Connector's monotonic clock.
var base = time.Now()

func mono() int64 { return int64(time.Since(base)) }

// NewConnector starts the epoll loop.
func NewConnector() (*Connector, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("TCP_CHECK connector: epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it in Go's poller.
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("TCP_CHECK connector: epoll fd O_NONBLOCK: %w", err)
	}
	f := os.NewFile(uintptr(ep), "TCP_CHECK epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("TCP_CHECK connector: %w", err)
	}
	c := &Connector{ep: ep, file: f, raw: raw, pending: map[int32]*connect{}, done: make(chan struct{}), sleepUntil: noDeadline}
	c.pool.New = func() any { return &connect{res: make(chan error, 1), idx: -1} }
	go c.loop()
	return c, nil
}

// Close ends every connect in progress (as canceled) and stops the loop.
func (c *Connector) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var cbs []*connect
	for _, p := range c.pending {
		if c.finishLocked(p, context.Canceled) {
			cbs = append(cbs, p)
		}
	}
	c.file.SetReadDeadline(time.Unix(1, 0)) // past: wakes the loop
	c.mu.Unlock()
	for _, p := range cbs {
		c.callback(p)
	}
	<-c.done
	c.file.Close()
}

// wakeLocked makes the loop wake by deadline (mono ns). c.mu is held.
func (c *Connector) wakeLocked(deadline int64) {
	if deadline >= c.sleepUntil {
		return
	}
	c.sleepUntil = deadline
	c.file.SetReadDeadline(base.Add(time.Duration(deadline)))
}

var errClosed = errors.New("checker stopping")

// start begins a connect to sa (a *unix.RawSockaddrInet4 or 6, salen
// bytes) by deadline (mono ns; noDeadline: none). pending false: it ended
// at once with err. Else the outcome goes to cb (called from the loop, or
// from abort or Close, never with c.mu held) or, with cb nil, to p.res.
func (c *Connector) start(family int, sa unsafe.Pointer, salen uintptr, deadline int64, cb func(error)) (p *connect, seq uint32, err error, pending bool) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, err, false
	}
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), salen)
	switch e {
	case 0:
		unix.Close(fd)
		return nil, 0, nil, false
	case unix.EINPROGRESS:
	default:
		unix.Close(fd)
		return nil, 0, e, false
	}
	p = c.pool.Get().(*connect)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		unix.Close(fd)
		c.pool.Put(p)
		return nil, 0, errClosed, false
	}
	c.seq++
	p.fd, p.seq, p.deadline, p.cb = int32(fd), c.seq, deadline, cb
	ev := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd), Pad: int32(p.seq)}
	if err := unix.EpollCtl(c.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.mu.Unlock()
		unix.Close(fd)
		p.cb = nil
		c.pool.Put(p)
		return nil, 0, err, false
	}
	c.pending[p.fd] = p
	c.push(p)
	c.wakeLocked(deadline) // the loop may sleep until a later deadline, or for ever
	seq = p.seq
	c.mu.Unlock()
	return p, seq, nil, true
}

// abort ends connect p (if it is still the seq'th: p is reused) as
// canceled.
func (c *Connector) abort(p *connect, seq uint32) {
	c.mu.Lock()
	cb := false
	if c.pending[p.fd] == p && p.seq == seq {
		cb = c.finishLocked(p, context.Canceled)
	}
	c.mu.Unlock()
	if cb {
		c.callback(p)
	}
}

// callback hands a finished connect's outcome to its cb; p goes back to
// the pool first (it may be reused at once).
func (c *Connector) callback(p *connect) {
	cb, err := p.cb, p.err
	p.cb, p.err = nil, nil
	c.pool.Put(p)
	cb(err)
}

// dial is start, waiting for the outcome unless ctx is canceled first.
// A deadline of ctx that passes is not the outcome: the loop decides by
// its own deadline, no later than ctx's (see monoDeadline).
func (c *Connector) dial(ctx context.Context, family int, sa unsafe.Pointer, salen uintptr, deadline int64) error {
	p, seq, err, pending := c.start(family, sa, salen, deadline, nil)
	if !pending {
		return err
	}
	select {
	case err = <-p.res:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.abort(p, seq)
		}
		err = <-p.res
	}
	c.pool.Put(p)
	return err
}

// finishLocked ends p with err: out of the set, the socket closed, the
// result to its waiter; true: to its cb, which the caller calls (callback)
// once c.mu is released. c.mu is held.
func (c *Connector) finishLocked(p *connect, err error) (cb bool) {
	delete(c.pending, p.fd)
	c.remove(p)
	unix.Close(int(p.fd)) // also leaves the epoll set
	if p.cb != nil {
		p.err = err
		return true
	}
	p.res <- err
	return false
}

// soError is the socket's pending error, the outcome of its connect.
func soError(fd int32) error {
	v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

// errTimeout is a connect that did not complete by its deadline.
var errTimeout = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (c *Connector) loop() {
	defer close(c.done)
	evs := make([]unix.EpollEvent, 256)
	var cbs []*connect
	var n int
	// drained: the last epoll_wait left nothing behind (fewer events than
	// evs holds), so the next wait may park at once: Go's poller has the
	// set edge-triggered, and an event the set gets after that epoll_wait
	// is an edge it records for the next wait. Saves an epoll_wait per
	// wake-up; were an edge missed, the connect would be decided at its
	// deadline, by the socket's own state (poll), as completed.
	drained := false
	wait := func(fd uintptr) bool {
		if drained {
			drained = false
			return false
		}
		var err error
		n, err = unix.EpollWait(int(fd), evs, 0)
		if err != nil {
			n = 0 // EINTR
		}
		return n > 0 // false: Go's poller waits for the set to be readable
	}
	for {
		for i, p := range cbs {
			c.callback(p)
			cbs[i] = nil
		}
		cbs = cbs[:0]
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		next := noDeadline
		if len(c.heap) > 0 {
			next = c.heap[0].deadline
		}
		if next != c.sleepUntil {
			c.sleepUntil = next
			d := time.Time{}
			if next != noDeadline {
				d = base.Add(time.Duration(next))
			}
			c.file.SetReadDeadline(d)
		}
		c.mu.Unlock()
		// Returns with events, or at the deadline (an error, n 0).
		n = 0
		c.raw.Read(wait)
		drained = n > 0 && n < len(evs)
		c.mu.Lock()
		// Ready sockets first, then timeouts (see the type's comment).
		for _, ev := range evs[:n] {
			p := c.pending[ev.Fd]
			if p == nil || p.seq != uint32(ev.Pad) {
				continue // canceled meanwhile; the fd number may be another's now
			}
			// Writable with no error or hang-up: connected (connect(2),
			// EINPROGRESS), without asking SO_ERROR.
			var err error
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 || ev.Events&unix.EPOLLOUT == 0 {
				if err = soError(p.fd); err == nil {
					err = syscall.ECONNRESET
				}
			}
			if c.finishLocked(p, err) {
				cbs = append(cbs, p)
			}
		}
		now := mono()
		for len(c.heap) > 0 && c.heap[0].deadline <= now {
			p := c.heap[0]
			err := error(errTimeout)
			// Completed since epoll_wait returned, or while the loop ran late.
			pfd := []unix.PollFd{{Fd: p.fd, Events: unix.POLLOUT}}
			if k, perr := unix.Poll(pfd, 0); perr == nil && k == 1 {
				err = soError(p.fd)
				if err == nil && pfd[0].Revents&unix.POLLOUT == 0 {
					err = syscall.ECONNRESET
				}
			}
			if c.finishLocked(p, err) {
				cbs = append(cbs, p)
			}
		}
		c.mu.Unlock()
	}
}

// The deadline heap (container/heap without its interface boxing).

func (c *Connector) push(p *connect) {
	p.idx = len(c.heap)
	c.heap = append(c.heap, p)
	c.up(p.idx)
}

func (c *Connector) remove(p *connect) {
	i := p.idx
	if i < 0 {
		return
	}
	last := len(c.heap) - 1
	if i != last {
		c.swap(i, last)
	}
	c.heap[last] = nil
	c.heap = c.heap[:last]
	p.idx = -1
	if i != last {
		c.down(i)
		c.up(i)
	}
}

func (c *Connector) swap(i, j int) {
	c.heap[i], c.heap[j] = c.heap[j], c.heap[i]
	c.heap[i].idx, c.heap[j].idx = i, j
}

func (c *Connector) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if c.heap[parent].deadline <= c.heap[i].deadline {
			return
		}
		c.swap(i, parent)
		i = parent
	}
}

func (c *Connector) down(i int) {
	n := len(c.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && c.heap[r].deadline < c.heap[l].deadline {
			m = r
		}
		if c.heap[i].deadline <= c.heap[m].deadline {
			return
		}
		c.swap(i, m)
		i = m
	}
}

// sockaddr is a's raw address for connect(2) (no zone).
type sockaddr struct {
	family int
	raw    [unsafe.Sizeof(unix.RawSockaddrInet6{})]byte
	len    uintptr
}

func sockaddrOf(a netip.AddrPort) (sa sockaddr) {
	ip := a.Addr().Unmap()
	port := a.Port()
	if ip.Is4() {
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		r.Family, r.Addr = unix.AF_INET, ip.As4()
		pb := (*[2]byte)(unsafe.Pointer(&r.Port))
		pb[0], pb[1] = byte(port>>8), byte(port)
		sa.family, sa.len = unix.AF_INET, unsafe.Sizeof(*r)
		return sa
	}
	r := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
	r.Family, r.Addr = unix.AF_INET6, ip.As16()
	pb := (*[2]byte)(unsafe.Pointer(&r.Port))
	pb[0], pb[1] = byte(port>>8), byte(port)
	sa.family, sa.len = unix.AF_INET6, unsafe.Sizeof(*r)
	return sa
}

// connectTo connects to a (no zone) within deadline (mono ns).
func (c *Connector) connectTo(ctx context.Context, a netip.AddrPort, deadline int64) error {
	sa := sockaddrOf(a)
	return c.dial(ctx, sa.family, unsafe.Pointer(&sa.raw), sa.len, deadline)
}

// startTo is start for a.
func (c *Connector) startTo(a netip.AddrPort, deadline int64, cb func(error)) (*connect, uint32, error, bool) {
	sa := sockaddrOf(a)
	return c.start(sa.family, unsafe.Pointer(&sa.raw), sa.len, deadline, cb)
}

// monoDeadline is the earlier of ctx's deadline and now+timeout (0: none)
// on the Connector's clock.
func monoDeadline(ctx context.Context, timeout time.Duration) int64 {
	now := mono()
	d := noDeadline
	if timeout > 0 {
		d = now + int64(timeout)
	}
	if t, ok := ctx.Deadline(); ok {
		d = min(d, now+int64(time.Until(t)))
	}
	return d
}
