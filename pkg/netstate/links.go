package netstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LinkState is what VRRP needs to know about a network interface.
type LinkState struct {
	// Name is the interface name that was asked about.
	Name string
	// Index is the interface index (ifindex); 0 when the interface does
	// not exist. It changes when an interface is deleted and re-created.
	Index int
	// Up is true when the interface is administratively up (IFF_UP) and
	// its operational state (IFLA_OPERSTATE, RFC 2863) is "up" or
	// "unknown" (drivers that do not report one, like loopback and tun).
	Up bool
	// Exists is false when there is no interface of that name.
	Exists bool
	// HardwareAddr is the interface's link-layer address.
	HardwareAddr net.HardwareAddr
}

// String formats s for logs, e.g. "eth0 (index 2) up".
func (s LinkState) String() string {
	switch {
	case !s.Exists:
		return s.Name + " absent"
	case s.Up:
		return fmt.Sprintf("%s (index %d) up", s.Name, s.Index)
	default:
		return fmt.Sprintf("%s (index %d) down", s.Name, s.Index)
	}
}

// Links reads and watches network interfaces in one network namespace.
// It is safe for concurrent use.
type Links struct {
	ns     netns.NsHandle // owned; netns.None() for the caller's namespace
	h      *netlink.Handle
	ownH   bool
	log    *slog.Logger
	rcvBuf int // SO_RCVBUF of watch sockets; tests shrink it to provoke ENOBUFS

	closeOnce sync.Once
}

// defaultRcvBuf is the receive buffer asked for watch sockets. The kernel
// caps it at net.core.rmem_max without error; a larger buffer makes event
// loss (and the resynchronisation that follows, see WatchLinks) rarer.
const defaultRcvBuf = 1 << 20

// NewLinks returns a Links for the calling goroutine's network namespace.
// A nil log discards messages.
func NewLinks(log *slog.Logger) *Links {
	return &Links{ns: netns.None(), h: &netlink.Handle{}, log: orDiscard(log), rcvBuf: defaultRcvBuf}
}

// NewLinksAt returns a Links for the network namespace ns. It keeps its own
// descriptor for ns, so the caller may close ns. Call Close when done.
func NewLinksAt(ns netns.NsHandle, log *slog.Logger) (*Links, error) {
	if !ns.IsOpen() {
		return nil, errors.New("netstate: network namespace handle is not open")
	}
	own, err := dupNetns(ns)
	if err != nil {
		return nil, fmt.Errorf("netstate: %w", err)
	}
	h, err := newHandleAt(own)
	if err != nil {
		own.Close()
		return nil, fmt.Errorf("netstate: open rtnetlink socket: %w", err)
	}
	return &Links{ns: own, h: h, ownH: true, log: orDiscard(log), rcvBuf: defaultRcvBuf}, nil
}

// Close releases the sockets and namespace descriptor of l. Call it only
// after every WatchLinks call on l has returned. Close is idempotent.
func (l *Links) Close() error {
	var err error
	l.closeOnce.Do(func() {
		if l.ownH {
			l.h.Close()
		}
		if l.ns.IsOpen() {
			err = l.ns.Close()
		}
	})
	return err
}

// LinkByName returns the state of the interface called name (an
// alternative name works too). An interface that does not exist is not an
// error: the result has Exists false.
func (l *Links) LinkByName(name string) (LinkState, error) {
	link, err := linkByName(l.h, name)
	if errors.Is(err, ErrLinkNotFound) {
		return LinkState{Name: name}, nil
	}
	if err != nil {
		return LinkState{Name: name}, fmt.Errorf("netstate: link %s: %w", name, err)
	}
	return stateOf(name, link), nil
}

// WatchLinks reports the state of the interfaces called names to fn: once
// per name, in the order given, with the current state, and after that each
// time an interface starts or stops existing, goes up or down, or is
// replaced by a new interface of the same name (then fn sees it absent
// before it sees the new one). Other changes (addresses, MTU, bridge ports,
// statistics, other interfaces) do not call fn. An interface renamed away
// from a watched name is absent under that name.
//
// Events come from an RTNLGRP_LINK subscription (rtnetlink(7)), in the
// style of tailscale's netmon: one goroutine turns kernel messages into
// diffs. When the kernel drops messages because the socket buffer overflowed
// (ENOBUFS), or the subscription fails otherwise, WatchLinks subscribes
// again (with backoff while that fails), re-reads every watched interface
// and reports what changed meanwhile. A flap that began and ended inside the
// lost window is not seen, and messages queued between the new subscription
// and the re-read may replay a flap the re-read already reflected; either
// way the last state reported is the kernel's.
//
// fn is called from the goroutine that called WatchLinks, one call at a
// time; it should return promptly, as events queue up while it runs.
// WatchLinks blocks until ctx is cancelled and then returns nil, after all
// goroutines it started have ended and without calling fn again. It returns
// an error without calling fn if it cannot start watching.
func (l *Links) WatchLinks(ctx context.Context, names []string, fn func(LinkState)) error {
	if len(names) == 0 {
		return errors.New("netstate: watch links: no interface names")
	}
	if slices.Contains(names, "") {
		return errors.New("netstate: watch links: empty interface name")
	}
	names = dedup(slices.Clone(names))
	if ctx.Err() != nil {
		return nil
	}

	sub, err := l.subscribe()
	if err != nil {
		return fmt.Errorf("netstate: watch links: subscribe: %w", err)
	}
	defer func() {
		if sub != nil {
			sub.stop()
		}
	}()

	w := &linkWatch{names: names, last: make(map[string]LinkState, len(names)), fn: fn, log: l.log}
	states, err := l.read(names)
	if err != nil {
		return fmt.Errorf("netstate: watch links: %w", err)
	}
	for _, st := range states {
		w.last[st.Name] = st
		w.emit(st)
	}

	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-sub.ch:
			if ok {
				if ctx.Err() != nil {
					return nil
				}
				w.update(u)
				continue
			}
			// The receive loop ended: events may have been lost.
			l.log.Warn("link watch: subscription ended; resynchronising", "err", sub.fatalErr())
			sub.stop()
			if sub = l.resubscribe(ctx, w); sub == nil {
				return nil // cancelled
			}
		}
	}
}

// resubscribe subscribes again and re-reads the watched interfaces,
// retrying with backoff until it succeeds or ctx is done (then it returns
// nil).
func (l *Links) resubscribe(ctx context.Context, w *linkWatch) *subscription {
	backoff := 50 * time.Millisecond
	for {
		if ctx.Err() != nil {
			return nil
		}
		sub, err := l.subscribe()
		if err == nil {
			var states []LinkState
			states, err = l.read(w.names)
			if err == nil {
				if ctx.Err() != nil {
					sub.stop()
					return nil
				}
				for _, st := range states {
					w.set(st)
				}
				l.log.Info("link watch: resynchronised", "links", len(w.names))
				return sub
			}
			sub.stop()
		}
		l.log.Warn("link watch: cannot resubscribe; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// read returns the current state of each named interface.
func (l *Links) read(names []string) ([]LinkState, error) {
	out := make([]LinkState, 0, len(names))
	for _, n := range names {
		st, err := l.LinkByName(n)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// subscription is one RTNLGRP_LINK subscription: a socket and the
// netlink package's goroutines that read it into ch.
type subscription struct {
	ch       chan netlink.LinkUpdate
	done     chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	stopping bool
	lastErr  error
	log      *slog.Logger
}

func (l *Links) subscribe() (*subscription, error) {
	s := &subscription{
		ch:   make(chan netlink.LinkUpdate, 16),
		done: make(chan struct{}),
		log:  l.log,
	}
	err := inNetns(l.ns, func() error {
		// The socket is created in the calling thread's namespace,
		// which inNetns has set.
		return netlink.LinkSubscribeWithOptions(s.ch, s.done, netlink.LinkSubscribeOptions{
			ErrorCallback:     s.onError,
			ReceiveBufferSize: l.rcvBuf,
		})
	})
	if err != nil {
		close(s.done) // ends the goroutine that closes the socket, if started
		return nil, err
	}
	return s, nil
}

// onError is called by the netlink package's receive goroutine, for errors
// it skips and, last, for the one that ends it (such as ENOBUFS).
func (s *subscription) onError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return // the socket was closed by stop
	}
	s.lastErr = err
	s.log.Debug("link watch: netlink error", "err", err)
}

// fatalErr returns the last error reported; after ch is closed, the one
// that ended the receive loop.
func (s *subscription) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// stop closes the socket and waits for the receive goroutine to end,
// discarding undelivered events. The netlink package closes ch when its
// receive goroutine returns, and that goroutine can block sending on ch, so
// ch is drained.
func (s *subscription) stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		close(s.done)
		for range s.ch {
		}
	})
}

// linkWatch turns link updates into LinkState transitions for a fixed set
// of names.
type linkWatch struct {
	names []string
	last  map[string]LinkState
	fn    func(LinkState)
	log   *slog.Logger
}

func (w *linkWatch) emit(st LinkState) {
	w.log.Debug("link state", "link", st.String())
	w.fn(st)
}

// set records the new state of a watched name and calls fn if it differs
// from the last one in a way that matters.
func (w *linkWatch) set(st LinkState) {
	prev := w.last[st.Name]
	if prev.Exists && st.Exists && prev.Index != st.Index {
		// Replaced without our seeing the deletion (events lost, or
		// a stale update during resynchronisation).
		gone := LinkState{Name: st.Name}
		w.last[st.Name] = gone
		w.emit(gone)
		prev = gone
	}
	w.last[st.Name] = st
	if prev.Exists != st.Exists || prev.Up != st.Up {
		w.emit(st)
	}
}

// update applies one RTM_NEWLINK or RTM_DELLINK notification.
func (w *linkWatch) update(u netlink.LinkUpdate) {
	if u.Family != unix.AF_UNSPEC || u.Link == nil {
		// AF_BRIDGE notifications share RTNLGRP_LINK and describe
		// bridge ports: an RTM_DELLINK there means "left the bridge",
		// not "deleted".
		return
	}
	attrs := u.Link.Attrs()
	idx := int(u.Index)
	switch u.Header.Type {
	case unix.RTM_NEWLINK:
		// A watched interface renamed away is gone under its old name.
		for _, n := range w.names {
			if prev := w.last[n]; prev.Exists && prev.Index == idx && !hasName(attrs, n) {
				w.set(LinkState{Name: n})
			}
		}
		for _, n := range w.names {
			if hasName(attrs, n) {
				w.set(stateOf(n, u.Link))
			}
		}
	case unix.RTM_DELLINK:
		// Match by index: a deletion of an older interface of the same
		// name (a stale event after resynchronisation) is not news.
		for _, n := range w.names {
			if prev := w.last[n]; prev.Exists && prev.Index == idx {
				w.set(LinkState{Name: n})
			}
		}
	}
}

// stateOf describes link under the name it was looked up by.
func stateOf(name string, link netlink.Link) LinkState {
	a := link.Attrs()
	return LinkState{
		Name:         name,
		Index:        a.Index,
		Exists:       true,
		Up:           a.RawFlags&unix.IFF_UP != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown),
		HardwareAddr: slices.Clone(a.HardwareAddr),
	}
}

func hasName(a *netlink.LinkAttrs, name string) bool {
	return a.Name == name || slices.Contains(a.AltNames, name)
}

func dedup(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
