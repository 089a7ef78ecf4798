package vrrpd

import (
	"context"
	"net/netip"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netstate"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpnet"
)

// The engine's view of the kernel: small interfaces, defined here where
// they are used, so that tests drive the whole engine (loop, receive path,
// apply, status, events) without root. cmd/vrrpd wires in the real ones
// (pkg/netstate, pkg/vrrpnet, SystemClock).

// Addresses adds and removes the virtual addresses (netstate.Addresses).
type Addresses interface {
	Add(ctx context.Context, a netstate.Address) error
	// Remove removes an address this process added or adopted, and no other.
	Remove(ctx context.Context, a netstate.Address) error
	// Has reports whether the address is on its interface now.
	Has(a netstate.Address) (bool, error)
	// Adopt records an address found on the interface as this process's,
	// so that Remove takes it away later (a restarted vrrpd resuming).
	Adopt(a netstate.Address)
}

// Links reports interfaces and their changes (netstate.Links).
type Links interface {
	LinkByName(name string) (netstate.LinkState, error)
	// WatchLinks calls fn with the state of each named link now and after
	// every change, until ctx ends.
	WatchLinks(ctx context.Context, names []string, fn func(netstate.LinkState)) error
}

// Conn is one VRRP socket (vrrpnet.Conn). ReadFrom returns an error that
// wraps net.ErrClosed once Close was called; vrrpnet.ErrTruncated and
// vrrpnet.ErrMalformed for one bad packet.
type Conn interface {
	ReadFrom(buf []byte) (vrrpnet.Message, error)
	WriteTo(payload []byte, src, dst netip.Addr) error
	// Pending reports whether a packet is waiting to be read.
	Pending() bool
	IfIndex() int
	// Group is the multicast group adverts are sent to.
	Group() netip.Addr
	Close() error
}

// Announcer sends gratuitous ARP and unsolicited NA (vrrpnet.Announcer).
type Announcer interface {
	GratuitousARP(ip netip.Addr) error
	UnsolicitedNA(ip netip.Addr) error
	Close() error
}

// Network opens the sockets.
type Network interface {
	Listen(ctx context.Context, cfg vrrpnet.Config) (Conn, error)
	OpenAnnouncer(ctx context.Context, cfg vrrpnet.AnnouncerConfig) (Announcer, error)
	// PrimaryAddr is the interface's first address of the family: the
	// source of adverts (RFC 5798 §5.1.1.1, §5.1.2.1).
	PrimaryAddr(iface string, family int) (netip.Addr, error)
}

// Clock is the engine's time. Every deadline is a time.Time from Now.
type Clock interface {
	Now() time.Time
	// NewSleeper returns the sleeper of the engine's loop. It is called
	// once, on the loop's goroutine, which it may lock to its OS thread.
	NewSleeper() (Sleeper, error)
}

// Sleeper is how the engine's loop waits for its next deadline.
type Sleeper interface {
	// Sleep returns at deadline (never: the zero time), or earlier once
	// Wake is called. A Wake that comes while the loop is not sleeping
	// makes the next Sleep return at once, so no wake-up is lost. precise
	// asks for the deadline to be met as closely as the machine allows, at
	// some CPU cost: the engine asks for it only when the deadline is a
	// backup's Master_Down_Timer, whose lateness is the takeover's.
	Sleep(deadline time.Time, precise bool)
	// Wake may be called from any goroutine.
	Wake()
	Close() error
}

// OSNetwork is the Network of the running system.
type OSNetwork struct{}

func (OSNetwork) Listen(ctx context.Context, cfg vrrpnet.Config) (Conn, error) {
	c, err := vrrpnet.Listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (OSNetwork) OpenAnnouncer(ctx context.Context, cfg vrrpnet.AnnouncerConfig) (Announcer, error) {
	a, err := vrrpnet.OpenAnnouncer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (OSNetwork) PrimaryAddr(iface string, family int) (netip.Addr, error) {
	return vrrpnet.PrimaryAddr(iface, family)
}
