package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// udpDefaultPayload is what keepalived sends when no payload is set
// (layer4.c udp_bind_connect: a UDP_BUFSIZE (32) byte buffer).
const udpDefaultPayloadLen = 32

// UDP is UDP_CHECK (check_udp.c). It sends Payload (32 filler bytes when
// none) and then:
//   - without RequireReply, up unless an ICMP port unreachable (a read
//     error) comes back before the timeout: silence is success
//     (layer4.c udp_socket_state);
//   - with RequireReply, up only when a reply arrives whose length is
//     within [MinReplyLength, MaxReplyLength] and whose first bytes match
//     Reply under ReplyMask (check_udp_reply).
type UDP struct {
	Conn
	Payload      []byte
	RequireReply bool
	// Reply and ReplyMask come from require_reply's hex string (see
	// ParseHex); a set mask bit is a wildcard.
	Reply, ReplyMask []byte
	// MinReplyLength / MaxReplyLength default to 0 and 255
	// (udp_check_handler).
	MinReplyLength int
	MaxReplyLength int
}

// ParseHex reads keepalived's hex strings (payload, require_reply;
// parser.c read_hex_str): hex digits with optional spaces or tabs
// between octets; with wildcards allowed, 'x' or 'X' is a wildcard
// nibble, returned as set bits in mask (nil when there is none).
func ParseHex(s string, wildcards bool) (data, mask []byte, err error) {
	val := func(c byte) (byte, bool, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', false, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, false, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, false, true
		case wildcards && (c == 'x' || c == 'X'):
			return 0, true, true
		}
		return 0, false, false
	}
	masked := false
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		v, w, ok := val(s[i])
		if !ok {
			return nil, nil, fmt.Errorf("hex string %q: bad character %q", s, s[i])
		}
		var m byte
		if w {
			m, masked = 0x0f, true
		}
		i++
		if i < len(s) && s[i] != ' ' && s[i] != '\t' {
			v2, w2, ok := val(s[i])
			if !ok {
				return nil, nil, fmt.Errorf("hex string %q: bad character %q", s, s[i])
			}
			v, m = v<<4|v2, m<<4
			if w2 {
				m, masked = m|0x0f, true
			}
			i++
		}
		data = append(data, v)
		mask = append(mask, m)
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("hex string %q is empty", s)
	}
	if !masked {
		mask = nil
	}
	return data, mask, nil
}

// Check sends and waits.
func (u UDP) Check(ctx context.Context) Result {
	c, err := u.dial(ctx, "udp")
	if err != nil {
		return down("UDP socket to %s failed: %s", u.addr(), explain(err))
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	payload := u.Payload
	if len(payload) == 0 {
		payload = make([]byte, udpDefaultPayloadLen)
	}
	if _, err := c.Write(payload); err != nil {
		return down("UDP send to %s failed: %s", u.addr(), explain(err))
	}
	if dl := u.deadline(ctx); !dl.IsZero() {
		c.SetReadDeadline(dl)
	}
	max := u.MaxReplyLength
	if max == 0 {
		max = 255
	}
	buf := make([]byte, max+1)
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		switch {
		case timeout && !u.RequireReply:
			return up("UDP to %s: no reply and no ICMP error before the timeout", u.addr())
		case timeout:
			return down("UDP to %s: no reply before the timeout", u.addr())
		case errors.Is(err, syscall.ECONNREFUSED):
			return down("UDP to %s: port unreachable (ICMP)", u.addr())
		case ctx.Err() != nil && !u.RequireReply:
			return up("UDP to %s: no reply and no ICMP error before the deadline", u.addr())
		}
		return down("UDP to %s: %s", u.addr(), explain(err))
	}
	if u.RequireReply {
		if n < u.MinReplyLength || n > max {
			return down("UDP reply from %s is %d bytes, want %d-%d", u.addr(), n, u.MinReplyLength, max)
		}
		// keepalived compares the lesser of the reply's and the
		// pattern's lengths.
		for i := 0; i < n && i < len(u.Reply); i++ {
			var m byte
			if u.ReplyMask != nil {
				m = u.ReplyMask[i]
			}
			if (buf[i]^u.Reply[i])&^m != 0 {
				return down("UDP reply from %s differs from require_reply at byte %d (%s)", u.addr(), i, hexBytes(buf[:min(n, 16)]))
			}
		}
	}
	return up("UDP reply of %d bytes from %s", n, u.addr())
}

func hexBytes(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}
