package netstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addresses adds and removes interface addresses (VIPs) in one network
// namespace and remembers which ones it added: only those are ever removed.
// It is safe for concurrent use; operations are serialized.
//
// The record lives in memory only. A restarted vrrpd rebuilds it with
// [Addresses.Adopt] from what its supervisor remembers.
type Addresses struct {
	h   *netlink.Handle
	log *slog.Logger

	mu    sync.Mutex
	owned map[addrKey]Address
}

// New returns an address manager that works through h, or through
// rtnetlink sockets in the calling goroutine's network namespace when h is
// nil. The caller keeps ownership of h. A nil log discards messages.
func New(h *netlink.Handle, log *slog.Logger) *Addresses {
	if h == nil {
		// The zero Handle opens a socket per request in the current
		// namespace, like the netlink package-level functions.
		h = &netlink.Handle{}
	}
	return &Addresses{h: h, log: orDiscard(log), owned: make(map[addrKey]Address)}
}

// Add adds a to its interface, like "ip address add" (ip-address(8)), and
// records it as added by vrrpkit. IPv6 addresses get IFA_F_NODAD. IPv4
// addresses get a broadcast address only if a.Broadcast is set.
//
// An address that is already present (EEXIST from rtnetlink(7): same local
// address, and for IPv4 the same prefix length and peer) is not an error.
// It is not recorded, so it will never be removed, unless this manager had
// added it itself earlier, in which case it stays recorded.
//
// ctx is checked before the request is sent; a netlink request itself is
// not interruptible.
func (m *Addresses) Add(ctx context.Context, a Address) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: add %s: %w", a.ident(), err)
	}
	a, err := a.normalize()
	if err != nil {
		return fmt.Errorf("netstate: add %s: %w", a.ident(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	link, err := m.link(a.Dev)
	if err != nil {
		return fmt.Errorf("netstate: add %s: %w", a.ident(), err)
	}
	k := keyOf(a)
	err = m.h.AddrAdd(link, toNetlink(a, link.Attrs().Index, false))
	switch {
	case err == nil:
		m.owned[k] = a
		m.log.Info("added address", "address", a.String())
		return nil
	case errors.Is(err, unix.EEXIST):
		if _, ours := m.owned[k]; ours {
			m.log.Debug("address already present; added by us earlier", "address", a.String())
		} else {
			m.log.Debug("address already present; not ours, it will not be removed", "address", a.String())
		}
		return nil
	default:
		return fmt.Errorf("netstate: add %s: %w", a.ident(), err)
	}
}

// Remove removes a from its interface, like "ip address del", if this
// manager added (or adopted) it, and forgets it. Otherwise it does nothing:
// addresses that vrrpkit did not add are never removed. An address that has
// already disappeared, with its interface or otherwise (EADDRNOTAVAIL,
// ENODEV), is forgotten without error.
//
// The address is matched as the kernel matches it (see [Addresses.Add]);
// label, scope and broadcast address of a need not be given.
func (m *Addresses) Remove(ctx context.Context, a Address) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("netstate: remove %s: %w", a.ident(), err)
	}
	a, err := a.normalize()
	if err != nil {
		return fmt.Errorf("netstate: remove %s: %w", a.ident(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	k := keyOf(a)
	rec, ours := m.owned[k]
	if !ours {
		m.log.Debug("not removing address that vrrpkit did not add", "address", a.String())
		return nil
	}
	link, err := m.link(rec.Dev)
	if errors.Is(err, ErrLinkNotFound) {
		delete(m.owned, k)
		m.log.Debug("address gone with its interface", "address", rec.String())
		return nil
	}
	if err != nil {
		return fmt.Errorf("netstate: remove %s: %w", rec.ident(), err)
	}
	err = m.h.AddrDel(link, toNetlink(rec, link.Attrs().Index, true))
	switch {
	case err == nil:
		delete(m.owned, k)
		m.log.Info("removed address", "address", rec.String())
		return nil
	case errors.Is(err, unix.EADDRNOTAVAIL), errors.Is(err, unix.ENODEV):
		delete(m.owned, k)
		m.log.Debug("address already gone", "address", rec.String())
		return nil
	default:
		return fmt.Errorf("netstate: remove %s: %w", rec.ident(), err)
	}
}

// Adopt records a as added by vrrpkit without touching the kernel, so that
// [Addresses.Remove] will remove it. A restarted vrrpd adopts the VIPs it
// finds still configured when its supervisor's record says it was master.
// An invalid address is logged and ignored.
func (m *Addresses) Adopt(a Address) {
	a, err := a.normalize()
	if err != nil {
		m.log.Error("cannot adopt address", "address", a.ident(), "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owned[keyOf(a)] = a
	m.log.Debug("adopted address", "address", a.String())
}

// Owned returns the addresses this manager added or adopted and has not
// removed, sorted by interface and address.
func (m *Addresses) Owned() []Address {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Address, 0, len(m.owned))
	for _, a := range m.owned {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Address) int {
		return cmp.Or(
			cmp.Compare(x.Dev, y.Dev),
			x.Prefix.Addr().Compare(y.Prefix.Addr()),
			cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits()),
			x.Peer.Addr().Compare(y.Peer.Addr()),
			cmp.Compare(x.Peer.Bits(), y.Peer.Bits()),
		)
	})
	return out
}

// Has reports whether a is configured on its interface, reading the kernel
// ("ip address show dev DEV"). It matches addresses as the kernel does (see
// [Addresses.Add]), whoever added them. A missing interface is an error
// wrapping [ErrLinkNotFound].
func (m *Addresses) Has(a Address) (bool, error) {
	a, err := a.normalize()
	if err != nil {
		return false, fmt.Errorf("netstate: look up %s: %w", a.ident(), err)
	}
	link, err := m.link(a.Dev)
	if err != nil {
		return false, fmt.Errorf("netstate: look up %s: %w", a.ident(), err)
	}
	family := netlink.FAMILY_V6
	if a.Prefix.Addr().Is4() {
		family = netlink.FAMILY_V4
	}
	var list []netlink.Addr
	for range dumpRetries {
		list, err = m.h.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("netstate: look up %s: list addresses: %w", a.ident(), err)
	}
	for _, n := range list {
		if matches(a, n) {
			return true, nil
		}
	}
	return false, nil
}

// link looks up an interface by name.
func (m *Addresses) link(name string) (netlink.Link, error) {
	return linkByName(m.h, name)
}

// dumpRetries bounds the retries of an rtnetlink dump that the kernel
// reports as interrupted (NLM_F_DUMP_INTR) because the table changed under it.
const dumpRetries = 5

func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, ErrLinkNotFound
		}
		return nil, fmt.Errorf("look up interface: %w", err)
	}
	return l, nil
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
