//go:build linux

package vrrpnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Frame layout constants.
const (
	ethHdrLen      = 14
	ethTypeARP     = 0x0806
	ethTypeIPv6    = 0x86dd
	arpLen         = 28 // RFC 826, Ethernet hardware and IPv4 protocol addresses
	arpFrameLen    = ethHdrLen + arpLen
	ipv6HdrLen     = 40
	naLen          = 24 // RFC 4861 §4.4: type, code, checksum, flags, target
	tllaOptLen     = 8  // RFC 4861 §4.6.1 with a 6-byte Ethernet address
	naFrameLen     = ethHdrLen + ipv6HdrLen + naLen + tllaOptLen
	icmpv6NA       = 136 // RFC 4861 §4.4
	ndOptTLLA      = 2   // RFC 4861 §4.6.1, Target Link-Layer Address
	naFlagRouter   = 0x80
	naFlagOverride = 0x20
)

// AnnouncerConfig says which interface [OpenAnnouncer] sends on.
type AnnouncerConfig struct {
	// Interface is the name of the Ethernet interface to send on.
	Interface string
	// HardwareAddr, when set, replaces the interface's MAC address as the
	// Ethernet source, the ARP sender hardware address and the NA target
	// link-layer address: a VRRP virtual MAC (RFC 5798 §7.3) sent through
	// the base interface. It must be 6 bytes.
	HardwareAddr net.HardwareAddr
	// Router sets the Router flag of Neighbor Advertisements (RFC 4861
	// §4.4). keepalived sets it when net.ipv6.conf.<if>.forwarding is on,
	// because a host that sees it clear removes the sender from its
	// default router list (RFC 4861 §7.2.5).
	Router bool
}

// Announcer sends gratuitous ARP requests and unsolicited Neighbor
// Advertisements on one interface through a packet(7) socket. Its methods
// may be called concurrently; each allocates nothing.
type Announcer struct {
	ifname string
	hw     [6]byte
	router bool

	conn   *packet.Conn
	rc     syscall.RawConn
	closed atomic.Bool

	// Guarded by mu: the frame being sent and the outcome; wfn is a.write
	// bound once.
	mu    sync.Mutex
	frame [naFrameLen]byte
	cur   []byte
	wn    int
	werr  error
	wfn   func(fd uintptr) bool
}

// OpenAnnouncer opens a packet socket (packet(7), SOCK_RAW) on
// cfg.Interface. It is bound with protocol 0, so it receives nothing
// (packet(7): "If protocol is set to zero, no packets are received"); the
// frames it writes carry their own Ethernet header, and the kernel takes
// their EtherType from it, as for keepalived's sendto with sll_protocol 0.
// Frames are not padded to the 60-byte Ethernet minimum: the driver pads,
// as for keepalived's. ctx bounds only the setup. OpenAnnouncer needs
// CAP_NET_RAW.
func OpenAnnouncer(ctx context.Context, cfg AnnouncerConfig) (*Announcer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: open announcer: %w", cfg.Interface, err)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: %w", cfg.Interface, err)
	}
	hw := cfg.HardwareAddr
	if hw == nil {
		hw = ifi.HardwareAddr
	}
	if len(hw) != 6 {
		return nil, fmt.Errorf("vrrpnet: %s: hardware address %q is not a 6-byte Ethernet address (only Ethernet is supported)", cfg.Interface, hw)
	}
	conn, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: packet socket: %w (packet sockets need CAP_NET_RAW)", cfg.Interface, err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("vrrpnet: %s: packet socket: %w", cfg.Interface, err)
	}
	a := &Announcer{
		ifname: ifi.Name,
		hw:     [6]byte(hw),
		router: cfg.Router,
		conn:   conn,
		rc:     rc,
	}
	a.wfn = a.write
	return a, nil
}

// Interface returns the name of the interface the Announcer sends on.
func (a *Announcer) Interface() string { return a.ifname }

// HardwareAddr returns the MAC address the Announcer announces.
func (a *Announcer) HardwareAddr() net.HardwareAddr {
	hw := a.hw // a copy: the caller may not change what is sent
	return net.HardwareAddr(hw[:])
}

// Close closes the socket.
func (a *Announcer) Close() error {
	if a.closed.Swap(true) {
		return fmt.Errorf("vrrpnet: %s: close announcer: %w", a.ifname, net.ErrClosed)
	}
	if err := a.conn.Close(); err != nil {
		return fmt.Errorf("vrrpnet: %s: close announcer: %w", a.ifname, err)
	}
	return nil
}

// GratuitousARP broadcasts a gratuitous ARP request for the IPv4 address
// ip, as keepalived does when it takes over a virtual address (RFC 5798
// §6.4.1 (b)): Ethernet destination ff:ff:ff:ff:ff:ff, opcode 1 (request),
// sender and target protocol address ip, sender hardware address the
// Announcer's MAC, target hardware address ff:ff:ff:ff:ff:ff as keepalived
// fills it (RFC 5227 §3 leaves it ignored).
func (a *Announcer) GratuitousARP(ip netip.Addr) error {
	ip = ip.Unmap()
	if !ip.Is4() {
		return fmt.Errorf("vrrpnet: %s: gratuitous ARP for %v: not an IPv4 address", a.ifname, ip)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur = appendGARP(a.frame[:0], a.hw, ip)
	return a.send("gratuitous ARP", ip)
}

// UnsolicitedNA sends an unsolicited Neighbor Advertisement for the IPv6
// address ip to all nodes (RFC 4861 §7.2.6), as keepalived does when it
// takes over a virtual address (RFC 5798 §6.4.2 (b)): from ip itself (the
// address is assigned by then, as keepalived sends it), to ff02::1 at
// 33:33:00:00:00:01 (RFC 2464 §7), hop limit 255, Override set, Solicited
// clear, Router as configured, with a Target Link-Layer Address option
// carrying the Announcer's MAC.
func (a *Announcer) UnsolicitedNA(ip netip.Addr) error {
	if !ip.Is6() || ip.Is4In6() || ip.IsMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("vrrpnet: %s: neighbor advertisement for %v: not an IPv6 unicast address", a.ifname, ip)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur = appendUnsolicitedNA(a.frame[:0], a.hw, ip, a.router)
	return a.send("unsolicited NA", ip)
}

// send writes a.cur through the poller; a.mu is held.
func (a *Announcer) send(what string, ip netip.Addr) error {
	err := a.rc.Write(a.wfn)
	if err == nil {
		err = a.werr
	}
	a.werr = nil
	if err != nil {
		if a.closed.Load() {
			return fmt.Errorf("vrrpnet: %s: %s for %v: %w", a.ifname, what, ip, net.ErrClosed)
		}
		return fmt.Errorf("vrrpnet: %s: %s for %v: %w", a.ifname, what, ip, err)
	}
	if a.wn != len(a.cur) {
		return fmt.Errorf("vrrpnet: %s: %s for %v: sent %d of %d bytes", a.ifname, what, ip, a.wn, len(a.cur))
	}
	return nil
}

// write is the poller callback: one write(2) of a whole frame on the bound
// packet socket, false to wait for room.
func (a *Announcer) write(fd uintptr) bool {
	for {
		n, err := unix.Write(int(fd), a.cur)
		switch err {
		case nil:
			a.wn, a.werr = n, nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			a.wn, a.werr = 0, err
			return true
		}
	}
}

// appendGARP appends an Ethernet frame holding a gratuitous ARP request
// for ip (RFC 826 packet format) and returns the extended slice.
func appendGARP(b []byte, hw [6]byte, ip netip.Addr) []byte {
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ip4 := ip.As4()
	b = append(b, bcast[:]...)
	b = append(b, hw[:]...)
	b = binary.BigEndian.AppendUint16(b, ethTypeARP)
	b = append(b,
		0, 1, // hardware type: Ethernet
		0x08, 0x00, // protocol type: IPv4
		6, 4, // address lengths
		0, 1, // opcode: request
	)
	b = append(b, hw[:]...)    // sender hardware address
	b = append(b, ip4[:]...)   // sender protocol address
	b = append(b, bcast[:]...) // target hardware address
	b = append(b, ip4[:]...)   // target protocol address
	return b
}

// appendUnsolicitedNA appends an Ethernet frame holding an unsolicited
// Neighbor Advertisement for ip (RFC 4861 §4.4) from ip to ff02::1 and
// returns the extended slice.
func appendUnsolicitedNA(b []byte, hw [6]byte, ip netip.Addr, router bool) []byte {
	src := ip.As16()
	dst := [16]byte{0: 0xff, 1: 0x02, 15: 0x01} // all-nodes, RFC 4291 §2.7.1
	// RFC 2464 §7: 33:33 followed by the group's last 32 bits.
	b = append(b, 0x33, 0x33, dst[12], dst[13], dst[14], dst[15])
	b = append(b, hw[:]...)
	b = binary.BigEndian.AppendUint16(b, ethTypeIPv6)

	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class 0, flow label 0
	b = binary.BigEndian.AppendUint16(b, naLen+tllaOptLen)
	b = append(b, unix.IPPROTO_ICMPV6, 255) // next header, hop limit (RFC 4861 §7.1.2)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)

	icmp := len(b)
	flags := byte(naFlagOverride) // Solicited is clear: unsolicited (§7.2.6)
	if router {
		flags |= naFlagRouter
	}
	b = append(b, icmpv6NA, 0, 0, 0, flags, 0, 0, 0)
	b = append(b, src[:]...) // target address
	b = append(b, ndOptTLLA, 1)
	b = append(b, hw[:]...)

	sum := icmpv6Checksum(src, dst, b[icmp:])
	binary.BigEndian.PutUint16(b[icmp+2:], sum)
	return b
}

// icmpv6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// between src and dst: RFC 1071 over the RFC 8200 §8.1 pseudo-header and
// the message (RFC 4443 §2.3).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var acc uint64
	acc = sum16(acc, src[:])
	acc = sum16(acc, dst[:])
	acc += uint64(len(msg)) // upper-layer packet length, 32 bits
	acc += unix.IPPROTO_ICMPV6
	acc = sum16(acc, msg)
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}

// sum16 adds the big-endian 16-bit words of b to acc, an odd last byte
// padded with zero (RFC 1071).
func sum16(acc uint64, b []byte) uint64 {
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}
