package netstate

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrLinkNotFound is wrapped by errors about a network interface that does
// not exist (ENODEV from rtnetlink(7)).
var ErrLinkNotFound = errors.New("link not found")

// maxLabelLen is IFNAMSIZ-1: the kernel keeps IPv4 labels in an IFNAMSIZ
// buffer, NUL included.
const maxLabelLen = unix.IFNAMSIZ - 1

// Address is one interface address, described like the arguments of
// "ip address add" (see ip-address(8)).
type Address struct {
	// Prefix is the local address and its prefix length, as in
	// "192.0.2.10/24". The address is kept as given, not masked. When Peer
	// is set, Prefix must be a host prefix (/32 or /128): ip-address(8)
	// associates the prefix length with the peer, not the local address.
	Prefix netip.Prefix

	// Dev is the interface name.
	Dev string

	// Label is the IPv4 address label (IFA_LABEL), e.g. "eth0:1". Labels
	// exist only for IPv4; setting one on an IPv6 address is an error.
	// The kernel limits labels to 15 bytes.
	Label string

	// Scope is the address scope (IFA_SCOPE): "global", "site", "link",
	// "host", "nowhere" (the names of /etc/iproute2/rt_scopes) or a number
	// from 0 to 255. "" means global. The kernel derives the scope of IPv6
	// addresses from the address itself and ignores this value for them.
	Scope string

	// Broadcast is the IPv4 broadcast address (IFA_BROADCAST). When it is
	// not set no broadcast address is configured, as with "ip address add"
	// without "brd" and as keepalived does; it is not derived from the
	// prefix. Setting it on an IPv6 address is an error.
	Broadcast netip.Addr

	// NoDAD disables IPv6 duplicate address detection (IFA_F_NODAD), so
	// the address is usable at once instead of staying "tentative". Like
	// keepalived, vrrpkit always sets it for IPv6 addresses: [Addresses.Add]
	// forces it on for IPv6 and ignores it for IPv4, where it has no
	// meaning.
	NoDAD bool

	// Peer is the address of the remote end of a point-to-point link
	// (IFA_ADDRESS), with its prefix length ("ip address add A peer P/N").
	Peer netip.Prefix
}

// String formats a in the syntax of "ip address add", e.g.
// "192.0.2.10/24 dev eth0 brd 192.0.2.255 scope link label eth0:1".
func (a Address) String() string {
	var b strings.Builder
	b.WriteString(a.ident())
	if a.Broadcast.IsValid() {
		b.WriteString(" brd ")
		b.WriteString(a.Broadcast.String())
	}
	if a.Scope != "" {
		b.WriteString(" scope ")
		b.WriteString(a.Scope)
	}
	if a.Label != "" {
		b.WriteString(" label ")
		b.WriteString(a.Label)
	}
	if a.NoDAD {
		b.WriteString(" nodad")
	}
	return b.String()
}

// ident is the part of a that identifies it in errors and logs:
// "192.0.2.10/24 dev eth0" or "192.0.2.1 peer 192.0.2.2/32 dev ppp0".
func (a Address) ident() string {
	var b strings.Builder
	if a.Peer.IsValid() {
		b.WriteString(a.Prefix.Addr().String())
		b.WriteString(" peer ")
		b.WriteString(a.Peer.String())
	} else {
		b.WriteString(a.Prefix.String())
	}
	b.WriteString(" dev ")
	if a.Dev == "" {
		b.WriteString(`""`)
	} else {
		b.WriteString(a.Dev)
	}
	return b.String()
}

// normalize checks a and returns it in the form that is added and recorded:
// NoDAD set for IPv6 and cleared for IPv4.
func (a Address) normalize() (Address, error) {
	if !a.Prefix.IsValid() {
		return a, errors.New("invalid or missing prefix")
	}
	ip := a.Prefix.Addr()
	if ip.Is4In6() {
		return a, errors.New("IPv4-mapped IPv6 address; use the IPv4 form")
	}
	if a.Dev == "" {
		return a, errors.New("no interface given")
	}
	if _, err := parseScope(a.Scope); err != nil {
		return a, err
	}
	if ip.Is4() {
		a.NoDAD = false
		if len(a.Label) > maxLabelLen {
			return a, fmt.Errorf("label %q longer than %d bytes", a.Label, maxLabelLen)
		}
		if a.Broadcast.IsValid() && !a.Broadcast.Is4() {
			return a, fmt.Errorf("broadcast %s is not an IPv4 address", a.Broadcast)
		}
	} else {
		a.NoDAD = true
		if a.Label != "" {
			return a, fmt.Errorf("label %q: labels exist only for IPv4 addresses", a.Label)
		}
		if a.Broadcast.IsValid() {
			return a, errors.New("broadcast: IPv6 has no broadcast addresses")
		}
	}
	if a.Peer.IsValid() {
		if a.Peer.Addr().Is4() != ip.Is4() || a.Peer.Addr().Is4In6() {
			return a, fmt.Errorf("peer %s is not of the same family as %s", a.Peer, ip)
		}
		if a.Prefix.Bits() != ip.BitLen() {
			return a, fmt.Errorf("local address %s has a prefix length and a peer; "+
				"with a peer the prefix length belongs to the peer (ip-address(8))", a.Prefix)
		}
	}
	return a, nil
}

// addrKey identifies an address on an interface the way the kernel does
// when it refuses a duplicate with EEXIST: an IPv4 address by its local
// address, prefix length and peer (devinet.c, find_matching_ifa); an IPv6
// address by its local address alone (addrconf.c, ipv6_add_addr). Labels,
// scopes and broadcast addresses do not take part.
type addrKey struct {
	dev  string
	addr netip.Addr
	bits int
	peer netip.Prefix
}

func keyOf(a Address) addrKey {
	k := addrKey{dev: a.Dev, addr: a.Prefix.Addr()}
	if k.addr.Is4() {
		k.bits = a.Prefix.Bits()
		k.peer = a.Peer
	}
	return k
}

// matches reports whether the kernel address n is the address a (see
// addrKey).
func matches(a Address, n netlink.Addr) bool {
	if n.IPNet == nil {
		return false
	}
	local, ok := netip.AddrFromSlice(n.IP)
	if !ok || local.Unmap() != a.Prefix.Addr() {
		return false
	}
	if a.Prefix.Addr().Is6() {
		return true
	}
	if a.Peer.IsValid() != (n.Peer != nil) {
		return false
	}
	if n.Peer == nil {
		ones, _ := n.Mask.Size()
		return ones == a.Prefix.Bits()
	}
	peer, ok := netip.AddrFromSlice(n.Peer.IP)
	ones, _ := n.Peer.Mask.Size()
	return ok && peer.Unmap() == a.Peer.Addr() && ones == a.Peer.Bits()
}

// toNetlink converts a normalized Address for link index idx.
func toNetlink(a Address, idx int, forDelete bool) *netlink.Addr {
	ip := a.Prefix.Addr()
	n := &netlink.Addr{
		IPNet:     &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), ip.BitLen())},
		LinkIndex: idx,
	}
	if a.Peer.IsValid() {
		n.Peer = &net.IPNet{IP: a.Peer.Addr().AsSlice(), Mask: net.CIDRMask(a.Peer.Bits(), ip.BitLen())}
	}
	if ip.Is4() {
		// netlink.AddrAdd derives a broadcast address when none is
		// given; 0.0.0.0 tells it not to, which is what "ip address add"
		// does and what keepalived does.
		n.Broadcast = net.IPv4zero
	}
	if forDelete {
		// RTM_DELADDR matches the label too when one is sent; the label
		// is not part of the identity we record, so leave it out.
		return n
	}
	n.Label = a.Label
	n.Scope, _ = parseScope(a.Scope) // checked by normalize
	if a.Broadcast.IsValid() {
		n.Broadcast = a.Broadcast.AsSlice()
	}
	if a.NoDAD {
		n.Flags |= unix.IFA_F_NODAD
	}
	return n
}

// parseScope returns the numeric value of an address scope as
// "ip address add ... scope SCOPE" accepts it (rtnetlink(7), rtm_scope).
func parseScope(s string) (int, error) {
	switch s {
	case "", "global", "universe":
		return unix.RT_SCOPE_UNIVERSE, nil
	case "site":
		return unix.RT_SCOPE_SITE, nil
	case "link":
		return unix.RT_SCOPE_LINK, nil
	case "host":
		return unix.RT_SCOPE_HOST, nil
	case "nowhere":
		return unix.RT_SCOPE_NOWHERE, nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("scope %q: want global, site, link, host, nowhere or 0-255", s)
	}
	return int(n), nil
}
