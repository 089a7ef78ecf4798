//go:build linux

package vrrpnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Protocol is the IP protocol number assigned to VRRP (RFC 5798 §5.1.1.4,
// §5.1.2.3).
const Protocol = 112

// TTL is the IPv4 TTL and IPv6 hop limit every advertisement is sent with
// and, per RFC 5798 §7.1, must arrive with (RFC 5798 §5.1.1.3, §5.1.2.3).
const TTL = 255

// TOS is the IPv4 type of service and IPv6 traffic class of sent
// advertisements: precedence 6, internetwork control, as keepalived sets
// (IPTOS_PREC_INTERNETCONTROL).
const TOS = 0xc0

// MaxMessageLen is the longest valid VRRP message: VRRPv3 over IPv6 with 255
// addresses (RFC 5798 §5.2). [Conn.WriteTo] sends nothing longer.
const MaxMessageLen = 8 + 255*16

// ReadBufferSize is a read buffer size that holds any valid VRRP packet,
// with the IPv4 header (at most 60 bytes) a raw IPv4 socket returns in front
// of it. A longer packet is reported as [ErrTruncated].
const ReadBufferSize = 60 + MaxMessageLen

// DefaultReceiveBuffer is the SO_RCVBUF requested when
// [Config.ReceiveBuffer] is zero. The kernel doubles the value for its
// bookkeeping (socket(7)). 1 MiB holds some thousand adverts: 255 VRIDs at
// 10 adverts a second for several hundred milliseconds of stall.
const DefaultReceiveBuffer = 1 << 20

// ErrTruncated is returned by [Conn.ReadFrom] for a packet longer than the
// buffer: the part that fit is in the Message, which should be counted as a
// length error and dropped. The Conn stays usable.
var ErrTruncated = errors.New("vrrpnet: received packet longer than the read buffer")

// ErrMalformed is returned by [Conn.ReadFrom] when the IPv4 header the
// kernel returned is inconsistent (a bad version, header length or total
// length), or an IPv6 packet came without its source address. The packet
// should be dropped; the Conn stays usable.
var ErrMalformed = errors.New("vrrpnet: received packet with a malformed IP header")

// DefaultGroup returns the VRRP multicast group of the family: 224.0.0.18
// (RFC 5798 §5.1.1.2) for 4, ff02::12 (RFC 5798 §5.1.2.2) for 6, and the
// zero Addr for any other value.
func DefaultGroup(family int) netip.Addr {
	switch family {
	case 4:
		return netip.AddrFrom4([4]byte{224, 0, 0, 18})
	case 6:
		return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
	}
	return netip.Addr{}
}

// Config says which socket [Listen] opens.
type Config struct {
	// Interface is the name of the interface the socket is bound to
	// (SO_BINDTODEVICE), joins the group on, and sends through.
	Interface string
	// Family is 4 or 6.
	Family int
	// Group is the multicast group to join; the zero Addr means
	// DefaultGroup(Family). It must be a multicast address of Family.
	// Ignored when Unicast is set.
	Group netip.Addr
	// Unicast opens the socket without joining any group, for keepalived's
	// unicast_peer mode: the socket then receives only adverts sent to a
	// unicast address of the interface (Local, if set).
	Unicast bool
	// Local, in unicast mode, is the address to bind(2) the socket to,
	// keepalived's unicast_src_ip: only adverts sent to it are received.
	// It must be assigned to the interface (bind fails with
	// EADDRNOTAVAIL otherwise, keepalived's "src address not configured"
	// fault). The zero Addr leaves the socket unbound: it receives adverts
	// to any of the host's addresses on the interface, and ReadFrom drops
	// the multicast ones Linux hands an unbound raw IPv6 socket. Ignored
	// in multicast mode, where the socket is bound to the group.
	Local netip.Addr
	// ReceiveBuffer is the SO_RCVBUF size to request, 0 for
	// DefaultReceiveBuffer. SO_RCVBUFFORCE is tried first, so that with
	// CAP_NET_ADMIN net.core.rmem_max does not cap it.
	ReceiveBuffer int
}

// Message is one received VRRP packet. Payload aliases the buffer given to
// [Conn.ReadFrom] and is only valid until the next read into that buffer.
type Message struct {
	// Payload is the VRRP message: the IP payload, without the IPv4
	// header, ready for vrrp.Parse.
	Payload []byte
	// Src and Dst are the IP header's addresses, without a zone (IfIndex
	// is the link of an IPv6 link-local Src).
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or the IPv6 hop limit the packet arrived with;
	// RFC 5798 §7.1 requires 255 ([TTL]).
	TTL uint8
	// IfIndex is the index of the interface the packet arrived on.
	IfIndex int
	// Received is when the kernel received the packet (SO_TIMESTAMPNS): a
	// wall-clock time without a monotonic reading; zero if not reported.
	Received time.Time
}

// Conn is a raw VRRP socket (IP protocol 112) on one interface and one
// address family. ReadFrom and WriteTo may be called concurrently with each
// other and with Close; concurrent ReadFrom calls, or concurrent WriteTo
// calls, are serialized.
type Conn struct {
	ifname  string
	ifindex int
	family  int
	group   netip.Addr // invalid in unicast mode
	local   netip.Addr // bound address: the group, Local, or invalid
	unicast bool

	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// Receive state, guarded by rmu. rmsg points into the other fields;
	// rfn is c.recv bound once, so that ReadFrom hands the poller the same
	// func value every time and allocates nothing.
	rmu    sync.Mutex
	rmsg   unix.Msghdr
	riov   unix.Iovec
	rname  unix.RawSockaddrInet6 // large enough for either family
	roob   []byte
	rn     int
	rflags int
	rerr   error
	rfn    func(fd uintptr) bool

	// Send state, guarded by wmu. The payload is copied into wbuf so that
	// no pointer to the caller's slice is kept (and it does not escape).
	wmu    sync.Mutex
	wmsg   unix.Msghdr
	wiov   unix.Iovec
	wname4 unix.RawSockaddrInet4
	wname6 unix.RawSockaddrInet6
	woob   []byte
	wbuf   [MaxMessageLen]byte
	wn     int
	werr   error
	wfn    func(fd uintptr) bool
}

// sizeofTimespec is the size of the SO_TIMESTAMPNS payload.
const sizeofTimespec = int(unsafe.Sizeof(unix.Timespec{}))

// Control message sizes (cmsg(3)). The receive buffer has room for both
// cmsgs either family enables, with slack for ones added in the future.
var (
	pktinfo4Space = unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	pktinfo6Space = unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	recvOOBSize   = 2*(pktinfo6Space+unix.CmsgSpace(4)) + unix.CmsgSpace(sizeofTimespec)
)

// Listen opens the VRRP socket on cfg.Interface for cfg.Family and sets it
// up as the package documentation describes. ctx bounds only the setup; the
// returned Conn lives until Close.
//
// In multicast mode the Conn receives adverts sent to its group only, not
// unicast ones; in unicast mode, unicast adverts only (to Local if set).
//
// The socket is tied to the interface index at the time of the call: if the
// interface is deleted, sends fail (ENODEV) and nothing is received; Listen
// again once it is back. Listen needs CAP_NET_RAW.
func Listen(ctx context.Context, cfg Config) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: listen: %w", cfg.Interface, err)
	}
	var domain int
	switch cfg.Family {
	case 4:
		domain = unix.AF_INET
	case 6:
		domain = unix.AF_INET6
	default:
		return nil, fmt.Errorf("vrrpnet: %s: address family %d, want 4 or 6", cfg.Interface, cfg.Family)
	}
	// The socket is bound (bind(2)) to the address it receives for: the
	// group, or in unicast mode Local if set. See bindLocal.
	var group, local netip.Addr
	if !cfg.Unicast {
		group = cfg.Group
		if !group.IsValid() {
			group = DefaultGroup(cfg.Family)
		}
		group = group.WithZone("")
		if !ofFamily(group, cfg.Family) || !group.IsMulticast() {
			return nil, fmt.Errorf("vrrpnet: %s: group %v is not an IPv%d multicast address", cfg.Interface, cfg.Group, cfg.Family)
		}
		local = group
	} else if cfg.Local.IsValid() {
		local = cfg.Local.WithZone("")
		if cfg.Family == 4 {
			local = local.Unmap()
		}
		if !ofFamily(local, cfg.Family) || local.IsMulticast() || local.IsUnspecified() {
			return nil, fmt.Errorf("vrrpnet: %s: local address %v is not an IPv%d unicast address", cfg.Interface, cfg.Local, cfg.Family)
		}
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: %w", cfg.Interface, err)
	}

	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: socket(%s, SOCK_RAW, %d): %w (raw sockets need CAP_NET_RAW)",
			cfg.Interface, domainName(domain), Protocol, err)
	}
	c := &Conn{
		ifname:  ifi.Name,
		ifindex: ifi.Index,
		family:  cfg.Family,
		group:   group,
		local:   local,
		unicast: cfg.Unicast,
	}
	if err := c.setup(fd, cfg); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrpnet: %s: listen: %w", cfg.Interface, err)
	}
	// os.NewFile registers a non-blocking descriptor with the runtime
	// poller, which is what lets Close wake a blocked ReadFrom.
	c.f = os.NewFile(uintptr(fd), fmt.Sprintf("vrrpnet:%s:ipv%d", ifi.Name, cfg.Family))
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("vrrpnet: %s: %w", cfg.Interface, err)
	}
	c.initBuffers()
	return c, nil
}

// ofFamily reports whether a is an address of family 4 or 6; an
// IPv4-mapped IPv6 address is neither.
func ofFamily(a netip.Addr, family int) bool {
	if family == 4 {
		return a.Is4()
	}
	return a.Is6() && !a.Is4In6()
}

func domainName(domain int) string {
	if domain == unix.AF_INET6 {
		return "AF_INET6"
	}
	return "AF_INET"
}

// sockopt is one integer socket option, named for error messages.
type sockopt struct {
	level, opt, value int
	name              string
}

// setup applies the socket options. Each failure names the option.
func (c *Conn) setup(fd int, cfg Config) error {
	// socket(7): SO_BINDTODEVICE first, so that the join below and the
	// packets queued from now on are the interface's.
	if err := unix.BindToDevice(fd, c.ifname); err != nil {
		return c.optErr("SO_BINDTODEVICE", err)
	}
	rcvbuf := cfg.ReceiveBuffer
	if rcvbuf <= 0 {
		rcvbuf = DefaultReceiveBuffer
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		// Without CAP_NET_ADMIN: ask, and take what rmem_max allows.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return c.optErr("SO_RCVBUF", err)
		}
	}
	// socket(7) SO_TIMESTAMPNS: the kernel's time of arrival, so that a
	// backup's Master_Down_Timer runs from when the advert arrived, not from
	// when a goroutine got round to reading it.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return c.optErr("SO_TIMESTAMPNS", err)
	}
	var opts []sockopt
	if c.family == 4 {
		opts = []sockopt{
			// ip(7): IP_MULTICAST_ALL defaults to 1, which delivers
			// every group joined by any socket to this one.
			{unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL"},
			{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP"},
			{unix.IPPROTO_IP, unix.IP_TTL, TTL, "IP_TTL"},
			{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, TTL, "IP_MULTICAST_TTL"},
			{unix.IPPROTO_IP, unix.IP_TOS, TOS, "IP_TOS"},
			// For the arrival interface; TTL and addresses come
			// from the IP header a raw IPv4 socket returns (raw(7)).
			{unix.IPPROTO_IP, unix.IP_PKTINFO, 1, "IP_PKTINFO"},
		}
	} else {
		opts = []sockopt{
			// ipv6(7): the IPv6 twin of IP_MULTICAST_ALL (Linux 4.20).
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL"},
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP"},
			{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, TTL, "IPV6_UNICAST_HOPS"},
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, TTL, "IPV6_MULTICAST_HOPS"},
			{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, TOS, "IPV6_TCLASS"},
			{unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT"},
			{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"},
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, c.ifindex, "IPV6_MULTICAST_IF"},
			// IPV6_CHECKSUM is left off (-1, its default for
			// protocols other than ICMPv6, RFC 3542 §3.1): package
			// vrrp computes the VRRPv3 checksum, pseudo-header
			// included, so the kernel must not touch it.
		}
	}
	for _, o := range opts {
		err := unix.SetsockoptInt(fd, o.level, o.opt, o.value)
		if err != nil && o.opt == unix.IPV6_MULTICAST_ALL && o.level == unix.IPPROTO_IPV6 && errors.Is(err, unix.ENOPROTOOPT) {
			// Linux before 4.20: ReadFrom drops other groups.
			continue
		}
		if err != nil {
			return c.optErr(o.name, err)
		}
	}
	if c.family == 4 {
		mreq := &unix.IPMreqn{Ifindex: int32(c.ifindex)}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
			return c.optErr("IP_MULTICAST_IF", err)
		}
		if c.group.IsValid() {
			mreq.Multiaddr = c.group.As4()
			if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
				return c.optErr(fmt.Sprintf("IP_ADD_MEMBERSHIP %v", c.group), err)
			}
		}
	} else if c.group.IsValid() {
		mreq := &unix.IPv6Mreq{Multiaddr: c.group.As16(), Interface: uint32(c.ifindex)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
			return c.optErr(fmt.Sprintf("IPV6_JOIN_GROUP %v", c.group), err)
		}
	}
	if err := c.bindLocal(fd); err != nil {
		return err
	}
	// A raw socket receives from the moment socket(2) returns, so packets
	// of any interface and group may have been queued before the options
	// above applied: drop them.
	return c.drain(fd)
}

// drain discards whatever the socket has queued (MSG_DONTWAIT).
func (c *Conn) drain(fd int) error {
	var b [1]byte
	for {
		_, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch {
		case err == nil || errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			return nil
		default:
			return fmt.Errorf("vrrpnet: %s: drain receive queue: %w", c.ifname, err)
		}
	}
}

// bindLocal binds the socket to c.local, if set, so that the kernel hands
// it only packets sent to that address (raw(7): a raw socket "can be bound
// to a specific local address"; unbound, it receives "all packets with the
// specified IP protocol"). keepalived binds its receive sockets the same
// way. For IPv6 it is the filter that counts: Linux consults the joined
// groups and IPV6_MULTICAST_ALL only for a bound raw IPv6 socket
// (raw_v6_match), and gives an unbound one every protocol-112 packet the
// host accepts, whatever its multicast destination. In multicast mode the
// bind also keeps unicast adverts out, as in keepalived.
func (c *Conn) bindLocal(fd int) error {
	if !c.local.IsValid() {
		return nil
	}
	var sa unix.Sockaddr
	if c.family == 4 {
		sa = &unix.SockaddrInet4{Addr: c.local.As4()}
	} else {
		// The scope is needed for link-local and link-scope multicast
		// addresses, and ignored for others (ipv6(7)).
		sa = &unix.SockaddrInet6{Addr: c.local.As16(), ZoneId: uint32(c.ifindex)}
	}
	if err := unix.Bind(fd, sa); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("vrrpnet: %s: bind %v: %w (the address is not assigned to the interface)", c.ifname, c.local, err)
		}
		return fmt.Errorf("vrrpnet: %s: bind %v: %w", c.ifname, c.local, err)
	}
	return nil
}

func (c *Conn) optErr(opt string, err error) error {
	return fmt.Errorf("vrrpnet: %s: setsockopt %s: %w", c.ifname, opt, err)
}

// initBuffers preallocates the msghdrs and binds the poller callbacks.
func (c *Conn) initBuffers() {
	// make gives 8-byte aligned memory, as cmsg headers need.
	c.roob = make([]byte, recvOOBSize)
	c.rmsg.Name = (*byte)(unsafe.Pointer(&c.rname))
	c.rmsg.Iov = &c.riov
	c.rmsg.SetIovlen(1)
	c.rmsg.Control = &c.roob[0]
	c.rfn = c.recv

	c.wiov.Base = &c.wbuf[0]
	c.wmsg.Iov = &c.wiov
	c.wmsg.SetIovlen(1)
	if c.family == 4 {
		c.woob = make([]byte, pktinfo4Space)
		c.wname4.Family = unix.AF_INET
		c.wmsg.Name = (*byte)(unsafe.Pointer(&c.wname4))
		c.wmsg.Namelen = unix.SizeofSockaddrInet4
		putCmsgHeader(c.woob, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
	} else {
		c.woob = make([]byte, pktinfo6Space)
		c.wname6.Family = unix.AF_INET6
		c.wmsg.Name = (*byte)(unsafe.Pointer(&c.wname6))
		c.wmsg.Namelen = unix.SizeofSockaddrInet6
		putCmsgHeader(c.woob, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	}
	c.wmsg.Control = &c.woob[0]
	c.wmsg.SetControllen(len(c.woob))
	c.wfn = c.send
}

// Interface returns the name of the interface the Conn is bound to.
func (c *Conn) Interface() string { return c.ifname }

// IfIndex returns the index of the interface the Conn is bound to.
func (c *Conn) IfIndex() int { return c.ifindex }

// Family returns 4 or 6.
func (c *Conn) Family() int { return c.family }

// Group returns the joined multicast group, or the zero Addr in unicast
// mode.
func (c *Conn) Group() netip.Addr { return c.group }

// Pending reports whether a packet is queued in the socket, not yet read
// (SIOCINQ, raw(7)). vrrpd asks before it lets a backup's down timer fire:
// a process that was stalled must first read the adverts that arrived in
// time.
func (c *Conn) Pending() bool {
	n := 0
	_ = c.rc.Control(func(fd uintptr) {
		v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err == nil {
			n = v
		}
	})
	return n > 0
}

// SetReadDeadline sets the deadline for ReadFrom, as net.Conn does; a read
// past it fails with an error that wraps os.ErrDeadlineExceeded.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if err := c.f.SetReadDeadline(t); err != nil {
		return fmt.Errorf("vrrpnet: %s: set read deadline: %w", c.ifname, err)
	}
	return nil
}

// Close closes the socket, which also leaves the group. A ReadFrom blocked
// in another goroutine returns an error wrapping net.ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return fmt.Errorf("vrrpnet: %s: close: %w", c.ifname, net.ErrClosed)
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("vrrpnet: %s: close: %w", c.ifname, err)
	}
	return nil
}

// ReadFrom blocks until a VRRP packet arrives and returns it, with
// Message.Payload a slice of buf. buf should be [ReadBufferSize] long. In
// steady state ReadFrom allocates nothing.
//
// [ErrTruncated] and [ErrMalformed] concern one packet: the caller counts
// and drops it and reads on. Any other error is the socket's: after Close it
// wraps net.ErrClosed, past a deadline os.ErrDeadlineExceeded.
//
// Nothing is validated beyond the IP header: the TTL, the source and the
// message itself are for the caller and vrrp.Parse (RFC 5798 §7.1). The only
// packets ReadFrom drops itself are multicast ones not for the Conn: any
// multicast on a unicast Conn, another group's on a multicast one. The
// kernel filters them already (see [Listen]) except in two cases this
// backstop covers: an unbound unicast IPv6 socket, and kernels before 4.20,
// which lack IPV6_MULTICAST_ALL.
func (c *Conn) ReadFrom(buf []byte) (Message, error) {
	if len(buf) == 0 {
		return Message{}, fmt.Errorf("vrrpnet: %s: read: empty buffer", c.ifname)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		m, err := c.readOne(buf)
		if err == nil && m.Dst.IsMulticast() && (c.unicast || m.Dst != c.group) {
			continue // see the comment above
		}
		return m, err
	}
}

// readOne is one ReadFrom; c.rmu is held.
func (c *Conn) readOne(buf []byte) (Message, error) {
	c.riov.Base = &buf[0]
	c.riov.SetLen(len(buf))
	err := c.rc.Read(c.rfn)
	c.riov.Base = nil // do not keep the caller's buffer reachable
	if err == nil {
		err = c.rerr
	}
	c.rerr = nil
	if err != nil {
		if c.closed.Load() {
			return Message{}, fmt.Errorf("vrrpnet: %s: read: %w", c.ifname, net.ErrClosed)
		}
		return Message{}, fmt.Errorf("vrrpnet: %s: recvmsg: %w", c.ifname, err)
	}
	m := Message{IfIndex: c.ifindex}
	c.parseCmsgs(c.roob[:c.rmsg.Controllen], &m)
	if c.family == 4 {
		err = parseIPv4(buf[:c.rn], &m)
	} else {
		m.Payload = buf[:c.rn]
		if c.rname.Family == unix.AF_INET6 && c.rmsg.Namelen >= unix.SizeofSockaddrInet6 {
			m.Src = netip.AddrFrom16(c.rname.Addr)
		} else {
			err = ErrMalformed
		}
	}
	if err == nil && c.rflags&unix.MSG_TRUNC != 0 {
		err = ErrTruncated
	}
	return m, err
}

// recv is the poller callback of ReadFrom: one recvmsg(2), false to wait
// for readiness.
func (c *Conn) recv(fd uintptr) bool {
	for {
		c.rmsg.Namelen = unix.SizeofSockaddrInet6
		c.rmsg.SetControllen(len(c.roob))
		c.rmsg.Flags = 0
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&c.rmsg)), 0)
		switch errno {
		case 0:
			c.rn, c.rflags, c.rerr = int(n), int(c.rmsg.Flags), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			c.rn, c.rerr = 0, errno
			return true
		}
	}
}

// parseCmsgs reads the arrival interface and, for IPv6, the destination and
// hop limit from the control messages (ip(7) IP_PKTINFO, ipv6(7)
// IPV6_PKTINFO and IPV6_HOPLIMIT). It allocates nothing, unlike
// unix.ParseSocketControlMessage.
func (c *Conn) parseCmsgs(b []byte, m *Message) {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(b) {
			return
		}
		data := b[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			m.IfIndex = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			m.Dst = netip.AddrFrom16([16]byte(data[:16]))
			m.IfIndex = int(binary.NativeEndian.Uint32(data[16:]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			m.TTL = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && len(data) >= sizeofTimespec:
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			m.Received = time.Unix(ts.Unix())
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next >= len(b) {
			return
		}
		b = b[next:]
	}
}

// parseIPv4 fills m from the IPv4 header a raw socket returns in front of
// the payload (raw(7)). Linux leaves the total length in network byte order.
func parseIPv4(b []byte, m *Message) error {
	if len(b) < 20 || b[0]>>4 != 4 {
		return ErrMalformed
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || ihl > len(b) || total < ihl {
		return ErrMalformed
	}
	m.TTL = b[8]
	m.Src = netip.AddrFrom4([4]byte(b[12:16]))
	m.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	if total > len(b) {
		m.Payload = b[ihl:]
		return ErrTruncated
	}
	m.Payload = b[ihl:total]
	return nil
}

// WriteTo sends the VRRP message payload from src to dst: src becomes the
// IP source address (ip(7) IP_PKTINFO ipi_spec_dst, ipv6(7) IPV6_PKTINFO)
// and must be assigned to the interface (for IPv6 not tentative); dst is the
// group or a unicast peer. Both must be of the Conn's family (zones are
// ignored: the Conn's interface is the link) and must be the addresses the
// payload was encoded for, since the VRRPv3 checksum covers them (RFC 5798
// §5.2.8). The packet leaves through the Conn's interface with TTL 255 and
// TOS 0xc0. WriteTo copies payload and allocates nothing.
func (c *Conn) WriteTo(payload []byte, src, dst netip.Addr) error {
	if len(payload) == 0 || len(payload) > MaxMessageLen {
		return fmt.Errorf("vrrpnet: %s: send: %d-byte message, want 1 to %d", c.ifname, len(payload), MaxMessageLen)
	}
	if c.family == 4 {
		src, dst = src.Unmap(), dst.Unmap()
		if !src.Is4() || !dst.Is4() {
			return fmt.Errorf("vrrpnet: %s: send: %v -> %v on an IPv4 socket", c.ifname, src, dst)
		}
	} else if !src.Is6() || !dst.Is6() || src.Is4In6() || dst.Is4In6() {
		return fmt.Errorf("vrrpnet: %s: send: %v -> %v on an IPv6 socket", c.ifname, src, dst)
	}
	if src.IsUnspecified() || src.IsMulticast() {
		return fmt.Errorf("vrrpnet: %s: send: source %v is not a unicast address", c.ifname, src)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := copy(c.wbuf[:], payload)
	c.wiov.SetLen(n)
	data := c.woob[unix.CmsgLen(0):]
	if c.family == 4 {
		c.wname4.Addr = dst.As4()
		// struct in_pktinfo: ipi_ifindex, ipi_spec_dst, ipi_addr.
		binary.NativeEndian.PutUint32(data[0:4], uint32(c.ifindex))
		s := src.As4()
		copy(data[4:8], s[:])
		clear(data[8:12])
	} else {
		c.wname6.Addr = dst.As16()
		c.wname6.Scope_id = uint32(c.ifindex)
		// struct in6_pktinfo: ipi6_addr, ipi6_ifindex.
		s := src.As16()
		copy(data[0:16], s[:])
		binary.NativeEndian.PutUint32(data[16:20], uint32(c.ifindex))
	}
	err := c.rc.Write(c.wfn)
	if err == nil {
		err = c.werr
	}
	c.werr = nil
	if err != nil {
		if c.closed.Load() {
			return fmt.Errorf("vrrpnet: %s: send: %w", c.ifname, net.ErrClosed)
		}
		return fmt.Errorf("vrrpnet: %s: sendmsg %v -> %v: %w", c.ifname, src, dst, err)
	}
	if c.wn != n {
		return fmt.Errorf("vrrpnet: %s: sendmsg %v -> %v: sent %d of %d bytes", c.ifname, src, dst, c.wn, n)
	}
	return nil
}

// send is the poller callback of WriteTo: one sendmsg(2), false to wait for
// room in the send buffer.
func (c *Conn) send(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&c.wmsg)), 0)
		switch errno {
		case 0:
			c.wn, c.werr = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			c.wn, c.werr = 0, errno
			return true
		}
	}
}

// putCmsgHeader writes a cmsghdr for a payload of dataLen bytes at the
// start of b, which must be CmsgSpace(dataLen) long and 8-byte aligned.
func putCmsgHeader(b []byte, level, typ int32, dataLen int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(dataLen))
}
