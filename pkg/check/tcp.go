package check

import "context"

// TCP is TCP_CHECK: up when a TCP connection to the target completes
// (keepalived check_tcp.c: the connect alone is the check; the socket is
// closed at once).
type TCP struct {
	Conn
}

// Check connects and closes.
func (t TCP) Check(ctx context.Context) Result {
	c, err := t.dial(ctx, "tcp")
	if err != nil {
		return down("TCP connect to %s failed: %s", t.addr(), explain(err))
	}
	c.Close()
	return up("TCP connect to %s succeeded", t.addr())
}
