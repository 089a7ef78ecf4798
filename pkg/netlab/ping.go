package netlab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
)

// pingTimeout is how long Ping waits for each reply.
const pingTimeout = time.Second

// Ping sends count ICMP (or ICMPv6) echo requests from the host to addr, one
// after the other, and returns nil if every one is answered, each within 1s
// and all before ctx is done. A link-local addr without a zone goes out of
// the host's eth0.
//
// Ping does not run ping(8) (iputils is not among the tools a lab needs): it
// opens a raw ICMP socket inside the host's namespace (see [Host.InNetns])
// and speaks ICMP itself.
func (h *Host) Ping(ctx context.Context, addr netip.Addr, count int) error {
	if !addr.IsValid() {
		return fmt.Errorf("netlab: host %s: ping: invalid address", h.name)
	}
	if count < 1 {
		count = 1
	}
	addr = addr.Unmap()
	network, laddr, reqType, replyType := "ip4:icmp", "0.0.0.0", byte(8), byte(0)
	if addr.Is6() {
		network, laddr, reqType, replyType = "ip6:ipv6-icmp", "::", 128, 129
	}
	var conn *net.IPConn
	zone := ""
	if err := h.InNetns(func() error {
		if addr.Is6() && (addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast()) {
			name := addr.Zone()
			if name == "" {
				name = h.iface
			}
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return fmt.Errorf("zone %q: %w", name, err)
			}
			// A numeric zone: names would be resolved later, on a thread
			// in the caller's namespace.
			zone = strconv.Itoa(ifi.Index)
		}
		pc, err := net.ListenPacket(network, laddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", network, err)
		}
		conn = pc.(*net.IPConn)
		return nil
	}); err != nil {
		return fmt.Errorf("netlab: host %s: ping %s: %w", h.name, addr, err)
	}
	defer conn.Close()
	// Wake a blocked read when ctx is done.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fmt.Errorf("netlab: host %s: ping: %w", h.name, err)
	}
	id := binary.BigEndian.Uint16(idb[:])
	dst := &net.IPAddr{IP: addr.AsSlice(), Zone: zone}
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("netlab: host %s: ping %s: %d of %d answered: %w", h.name, addr, seq-1, count, err)
		}
		msg := echoRequest(reqType, id, uint16(seq))
		if _, err := conn.WriteTo(msg, dst); err != nil {
			return fmt.Errorf("netlab: host %s: ping %s: sending request %d: %w", h.name, addr, seq, err)
		}
		deadline := time.Now().Add(pingTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("netlab: host %s: ping %s: %w", h.name, addr, err)
		}
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if cerr := ctx.Err(); cerr != nil {
						err = cerr
					} else {
						err = fmt.Errorf("no reply within %v", pingTimeout)
					}
				}
				return fmt.Errorf("netlab: host %s: ping %s: request %d of %d: %w", h.name, addr, seq, count, err)
			}
			src, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if !ok || src.Unmap() != addr.WithZone("") {
				continue
			}
			m := buf[:n]
			if len(m) >= 8 && m[0] == replyType && m[1] == 0 &&
				binary.BigEndian.Uint16(m[4:]) == id && binary.BigEndian.Uint16(m[6:]) == uint16(seq) {
				break
			}
		}
	}
	return nil
}

// echoRequest builds an ICMP or ICMPv6 echo request. The ICMPv4 checksum is
// filled in; for ICMPv6 the kernel computes it (it covers a pseudo-header).
func echoRequest(typ byte, id, seq uint16) []byte {
	m := make([]byte, 8, 8+16)
	m[0] = typ
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	m = append(m, "netlab echo data"...)
	if typ == 8 {
		binary.BigEndian.PutUint16(m[2:], inetChecksum(m))
	}
	return m
}

// inetChecksum is the Internet checksum (RFC 1071) of b.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// SendRaw sends frame, a complete Ethernet frame (destination MAC first, no
// FCS), out of iface in the host's namespace, as it is: for negative tests
// (bad checksums, wrong TTL, foreign VRIDs ...). It opens an AF_PACKET socket
// inside the namespace ([Host.InNetns]), sends and closes it; no helper
// program is involved.
func (h *Host) SendRaw(iface string, frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("netlab: host %s: SendRaw: frame of %d bytes is shorter than an Ethernet header", h.name, len(frame))
	}
	etherType := binary.BigEndian.Uint16(frame[12:14])
	var fd, ifindex int
	if err := h.InNetns(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("interface %s: %w", iface, err)
		}
		ifindex = ifi.Index
		// Protocol 0: the socket only sends, it receives nothing.
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("netlab: host %s: SendRaw: %w", h.name, err)
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(etherType)}
	if err := syscall.Sendto(fd, frame, 0, sa); err != nil {
		return fmt.Errorf("netlab: host %s: SendRaw on %s: %w", h.name, iface, err)
	}
	return nil
}

// htons converts v to network byte order, as sockaddr_ll's protocol field
// wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
