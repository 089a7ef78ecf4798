// Package check holds keepalived's real-server health checkers (TCP_CHECK,
// HTTP_GET, SSL_GET, SMTP_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK,
// FILE_CHECK, MISC_CHECK) and the scheduler that runs them
// (delay_loop, retry, delay_before_retry, warmup, alpha, omega).
//
// A checker is one attempt: Check(ctx) with a deadline returns a Result
// whose Reason a user can read in logs and status. No checker needs a
// privilege: PING_CHECK uses an unprivileged ICMP datagram socket
// (see Ping), MISC_CHECK asks a ScriptRunner (the supervisor) to run its
// script. The scheduler decides up/down from a series of attempts, as
// keepalived's check_*.c epilogues do.
package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Result is the outcome of one attempt.
type Result struct {
	// Up is true when the attempt succeeded.
	Up bool
	// Reason says why, for people: "connected to 10.0.0.1:80",
	// "HTTP status 503 from http://10.0.0.1:80/health, want 200-299".
	Reason string
	// Weight is, when HasWeight, what this check does to the real
	// server's weight while up: FILE_CHECK adds it (a delta);
	// MISC_CHECK with misc_dynamic sets it (WeightAbsolute).
	Weight         int64
	HasWeight      bool
	WeightAbsolute bool
}

// Checker is one health check, made from a checker block. Check makes one
// attempt; it must return by ctx's deadline.
type Checker interface {
	Check(ctx context.Context) Result
}

// CheckerFunc lets a function be a Checker.
type CheckerFunc func(ctx context.Context) Result

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) Result { return f(ctx) }

func up(format string, a ...any) Result   { return Result{Up: true, Reason: fmt.Sprintf(format, a...)} }
func down(format string, a ...any) Result { return Result{Reason: fmt.Sprintf(format, a...)} }

// Conn holds the connection options every network checker shares
// (keepalived's conn_opts_t: connect_ip, connect_port, bindto, bind_port,
// connect_timeout; check_api.c install_checker_common_keywords).
type Conn struct {
	// Target is where the check connects: connect_ip/connect_port,
	// defaulting to the real server's address and port (see Target).
	Target netip.AddrPort
	// BindTo / BindPort are the local source (zero: the kernel picks).
	BindTo   netip.Addr
	BindPort uint16
	// BindIf is the interface for link-local targets (bind_if).
	BindIf string
	// Timeout is connect_timeout; 0 means the ctx deadline alone.
	// keepalived's default is 5s (check_data.c alloc_vs).
	Timeout time.Duration
}

// DefaultConnectTimeout is keepalived's virtual-server default
// connect_timeout (check_data.c alloc_vs: 5 * TIMER_HZ).
const DefaultConnectTimeout = 5 * time.Second

// Target resolves a checker's destination like keepalived's queue_checker
// and connect_ip/connect_port handlers: the real server's address and port
// unless connect_ip / connect_port override them.
func Target(rsIP netip.Addr, rsPort uint16, connectIP netip.Addr, connectPort uint16) netip.AddrPort {
	ip, port := rsIP, rsPort
	if connectIP.IsValid() {
		ip = connectIP
	}
	if connectPort != 0 {
		port = connectPort
	}
	return netip.AddrPortFrom(ip, port)
}

// withTimeout bounds ctx by connect_timeout.
func (c Conn) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.Timeout > 0 {
		return context.WithTimeout(ctx, c.Timeout)
	}
	return context.WithCancel(ctx)
}

func (c Conn) local(network string) net.Addr {
	if !c.BindTo.IsValid() && c.BindPort == 0 {
		return nil
	}
	var ip net.IP
	if c.BindTo.IsValid() {
		ip = c.BindTo.AsSlice()
	}
	switch network {
	case "udp", "udp4", "udp6":
		return &net.UDPAddr{IP: ip, Port: int(c.BindPort), Zone: c.BindTo.Zone()}
	}
	return &net.TCPAddr{IP: ip, Port: int(c.BindPort), Zone: c.BindTo.Zone()}
}

func (c Conn) dialer(network string) *net.Dialer {
	// KeepAlive -1: a check's connection lives for one exchange, and
	// keep-alive costs four setsockopt calls per connect (Go's default
	// turns it on); keepalived sets none (layer4.c tcp_bind_connect).
	return &net.Dialer{LocalAddr: c.local(network), KeepAlive: -1}
}

// addr is the target as host:port, with the zone (bind_if) for a
// link-local address.
func (c Conn) addr() string {
	a := c.Target.Addr()
	if c.BindIf != "" && a.Is6() && a.Zone() == "" {
		a = a.WithZone(c.BindIf)
	}
	return net.JoinHostPort(a.String(), strconv.Itoa(int(c.Target.Port())))
}

// dial connects over network ("tcp" or "udp"), within connect_timeout.
func (c Conn) dial(ctx context.Context, network string) (net.Conn, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.dialer(network).DialContext(ctx, network, c.addr())
}

// deadline is the earlier of ctx's deadline and now+connect_timeout, for
// the I/O that follows a connect (keepalived applies connection_to to
// every read and write of a check).
func (c Conn) deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if c.Timeout > 0 {
		t := time.Now().Add(c.Timeout)
		if !ok || t.Before(d) {
			d, ok = t, true
		}
	}
	if !ok {
		return time.Time{}
	}
	return d
}

// explain turns a network error into words for the Reason.
func explain(err error) string {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "timed out"
	}
	if err == context.DeadlineExceeded {
		return "timed out"
	}
	var oe *net.OpError
	if e, ok := err.(*net.OpError); ok {
		oe = e
		return oe.Err.Error()
	}
	return err.Error()
}
