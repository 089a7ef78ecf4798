package check

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestConnectorUpAndRefused(t *testing.T) {
	conn := newConnector(t)
	port := rawListener(t)
	c := TCP{Conn: Conn{Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Timeout: time.Second}, Connector: conn}
	expect(t, "live listener", c.Check(context.Background()), true, "succeeded")

	// A port nobody listens on: a RST, reported as refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	c.Target = dead
	expect(t, "closed port", c.Check(context.Background()), false, "connection refused")

	v6 := TCP{Conn: Conn{Target: netip.AddrPortFrom(netip.IPv6Loopback(), dead.Port()), Timeout: time.Second}, Connector: conn}
	if r := v6.Check(context.Background()); r.Up || !strings.Contains(r.Reason, "[::1]") {
		t.Fatalf("IPv6 closed port: %+v", r)
	}
}

// hungListener is a listener whose accept queue is full: a further SYN is
// dropped, and a connect to it hangs until its timeout.
func hungListener(t *testing.T) netip.AddrPort {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue (backlog 0 holds one; one more may be in flight).
	for range 3 {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return ap
}

func TestConnectorTimeoutAndCancel(t *testing.T) {
	conn := newConnector(t)
	ap := hungListener(t)
	c := TCP{Conn: Conn{Target: ap, Timeout: 300 * time.Millisecond}, Connector: conn}
	start := time.Now()
	expect(t, "hung connect", c.Check(context.Background()), false, "timed out")
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("hung connect took %v, want connect_timeout 300ms (bounded by 5s)", d)
	}

	// Cancellation ends a connect at once, not at its timeout.
	c.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan Result, 1)
	go func() { res <- c.Check(ctx) }()
	waitFor(t, "the connect to be pending", func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return len(conn.pending) == 1
	})
	cancel()
	select {
	case r := <-res:
		expect(t, "canceled", r, false, "canceled")
	case <-time.After(5 * time.Second):
		t.Fatal("a canceled connect did not return")
	}

	// Close ends what is pending too.
	go func() { res <- c.Check(context.Background()) }()
	waitFor(t, "the connect to be pending", func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return len(conn.pending) == 1
	})
	conn.Close()
	select {
	case r := <-res:
		expect(t, "closed", r, false, "canceled")
	case <-time.After(5 * time.Second):
		t.Fatal("Close left a connect waiting")
	}
	expect(t, "after Close", c.Check(context.Background()), false, "checker stopping")
}
