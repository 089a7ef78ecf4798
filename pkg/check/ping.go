package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// PingGroupRange is the sysctl that lets a group open unprivileged ICMP
// echo sockets (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)); it is per
// network namespace and covers IPv6 too. keepalived, as root, widens it
// itself (check_ping.c set_ping_group_range); checkerd has no privilege,
// so the supervisor or the administrator must make it include checkerd's
// gid, e.g. `sysctl net.ipv4.ping_group_range="0 2147483647"`. Debian's
// default "1 0" allows nobody, root included.
const PingGroupRange = "/proc/sys/net/ipv4/ping_group_range"

// pingPayloadLen is keepalived's ICMP_BUFSIZE (check_ping.c).
const pingPayloadLen = 128

var pingSeq atomic.Uint32

// Ping is PING_CHECK: one ICMP (or ICMPv6) echo request, up on the echo
// reply. The kernel owns the echo identifier of a datagram ICMP socket
// and delivers only replies to it, so matching the sequence is enough.
type Ping struct {
	Conn
}

// Check pings once.
func (p Ping) Check(ctx context.Context) Result {
	dst := p.Target.Addr()
	network, laddr, proto := "udp4", "0.0.0.0", 1
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if dst.Is6() && !dst.Is4In6() {
		network, laddr, proto, typ = "udp6", "::", 58, ipv6.ICMPTypeEchoRequest
	}
	if p.BindTo.IsValid() {
		laddr = p.BindTo.String()
	}
	c, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return down("ping %s: ICMP socket not permitted: gid %d is outside %s (%s)", dst, os.Getegid(), PingGroupRange, readRange())
		}
		return down("ping %s: ICMP socket failed: %s", dst, explain(err))
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	seq := int(pingSeq.Add(1) & 0xffff)
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 0, Seq: seq, Data: make([]byte, pingPayloadLen)}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return down("ping %s: %s", dst, err)
	}
	ua := &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if p.BindIf != "" && ua.Zone == "" {
		ua.Zone = p.BindIf
	}
	if _, err := c.WriteTo(wb, ua); err != nil {
		return down("ping %s: send failed: %s", dst, explain(err))
	}
	if dl := p.deadline(ctx); !dl.IsZero() {
		c.SetReadDeadline(dl)
	}
	rb := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(rb)
		if err != nil {
			if ctx.Err() != nil {
				return down("ping %s: no echo reply before the deadline", dst)
			}
			return down("ping %s: no echo reply: %s", dst, explain(err))
		}
		m, err := icmp.ParseMessage(proto, rb[:n])
		if err != nil {
			continue
		}
		switch m.Type {
		case ipv4.ICMPTypeEchoReply, ipv6.ICMPTypeEchoReply:
			if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq {
				return up("ping %s: echo reply", dst)
			}
		case ipv4.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeDestinationUnreachable:
			return down("ping %s: destination unreachable (ICMP)", dst)
		}
	}
}

func readRange() string {
	b, err := os.ReadFile(PingGroupRange)
	if err != nil {
		return fmt.Sprintf("unreadable: %v", err)
	}
	return "now " + strings.Join(strings.Fields(string(b)), " ")
}
