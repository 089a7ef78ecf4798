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

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Frame layout constants.
const (
	ethHdrLen   = 14
	ethTypeARP  = 0x0806
	ethTypeIPv6 = 0x86dd
	arpLen      = 28 // RFC 826, Ethernet hardware and IPv4 protocol addresses
	arpFrameLen = ethHdrLen + arpLen
	ipv6HdrLen  = 40
	naLen       = 24 // RFC 4861 §4.4: type, code, checksum, flags, target
	tllaOptLen  = 8  // RFC 4861 §4.6.1 with a 6-byte Ethernet address
	naFrameLen  = ethHdrLen + ipv6HdrLen + naLen + tllaOptLen
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
// Advertisements on one interface through a packet(7) socket. The ARP and
// ICMPv6 payloads are marshalled by mdlayher/arp and mdlayher/ndp, which
// allocate a few small objects per frame; announcements are sent on
// transitions and garp refreshes, not per advertisement, so that is
// accepted. Its methods may be called concurrently.
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
	var err error
	if a.cur, err = appendGARP(a.frame[:0], a.hw, ip); err != nil {
		return fmt.Errorf("vrrpnet: %s: gratuitous ARP for %v: %w", a.ifname, ip, err)
	}
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
	var err error
	if a.cur, err = appendUnsolicitedNA(a.frame[:0], a.hw, ip, a.router); err != nil {
		return fmt.Errorf("vrrpnet: %s: unsolicited NA for %v: %w", a.ifname, ip, err)
	}
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

// appendEthernet appends an Ethernet II header (IEEE 802.3 §3.1.1, no
// 802.1Q tag). It is written here rather than with mdlayher/ethernet,
// whose Frame.MarshalBinary pads the payload to the 46-byte minimum: the
// frames stay the 42 and 86 bytes keepalived's vrrp_arp.c / vrrp_ndisc.c
// write, and the driver pads on the wire.
func appendEthernet(b []byte, dst, src [6]byte, etherType uint16) []byte {
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	return binary.BigEndian.AppendUint16(b, etherType)
}

// appendGARP appends an Ethernet frame holding a gratuitous ARP request
// for ip and returns the extended slice. The ARP payload (RFC 826 format,
// Ethernet/IPv4) is built by mdlayher/arp: opcode request, sender and
// target protocol address ip, sender hardware address hw, target hardware
// address broadcast, as keepalived's vrrp_arp.c fills them; RFC 5227 §3
// "ARP Announcement" has the target hardware address ignored.
func appendGARP(b []byte, hw [6]byte, ip netip.Addr) ([]byte, error) {
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	p, err := arp.NewPacket(arp.OperationRequest, hw[:], ip, bcast[:], ip)
	if err != nil {
		return b, fmt.Errorf("build ARP packet: %w", err)
	}
	payload, err := p.MarshalBinary()
	if err != nil {
		return b, fmt.Errorf("marshal ARP packet: %w", err)
	}
	b = appendEthernet(b, bcast, hw, ethTypeARP)
	return append(b, payload...), nil
}

// allNodes is ff02::1, the link-local all-nodes group (RFC 4291 §2.7.1),
// where an unsolicited NA goes (RFC 4861 §7.2.6).
var allNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})

// appendUnsolicitedNA appends an Ethernet frame holding an unsolicited
// Neighbor Advertisement for ip from ip to ff02::1 and returns the
// extended slice. The ICMPv6 message (RFC 4861 §4.4, with its RFC 4443
// §2.3 checksum over the pseudo-header) is built by mdlayher/ndp; the
// IPv6 and Ethernet headers are written here, because the frame goes out
// on the packet socket: ndp.Conn is an ICMPv6 socket that cannot send from
// a VRRP virtual MAC, and its source must be an address the kernel has
// finished DAD on, while keepalived sends from the VIP just added.
func appendUnsolicitedNA(b []byte, hw [6]byte, ip netip.Addr, router bool) ([]byte, error) {
	na := &ndp.NeighborAdvertisement{
		Router:        router,
		Solicited:     false, // unsolicited (RFC 4861 §7.2.6)
		Override:      true,  // replace cached entries (§7.2.6, RFC 5798 §6.4.2)
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: hw[:]}},
	}
	icmp, err := ndp.MarshalMessageChecksum(na, ip, allNodes)
	if err != nil {
		return b, fmt.Errorf("marshal neighbor advertisement: %w", err)
	}
	if len(icmp) != naLen+tllaOptLen {
		return b, fmt.Errorf("marshal neighbor advertisement: %d bytes, want %d", len(icmp), naLen+tllaOptLen)
	}
	dst := allNodes.As16()
	// RFC 2464 §7: 33:33 followed by the group's last 32 bits.
	b = appendEthernet(b, [6]byte{0x33, 0x33, dst[12], dst[13], dst[14], dst[15]}, hw, ethTypeIPv6)
	src := ip.As16()
	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class 0, flow label 0
	b = binary.BigEndian.AppendUint16(b, uint16(len(icmp)))
	b = append(b, unix.IPPROTO_ICMPV6, 255) // next header, hop limit (RFC 4861 §7.1.2)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	return append(b, icmp...), nil
}
