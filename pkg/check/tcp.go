package check

import "context"

// TCP is TCP_CHECK: up when a TCP connection to the target completes
// (keepalived check_tcp.c: the connect alone is the check; the socket is
// closed at once).
type TCP struct {
	Conn
	// Connector, when set, makes the connect (see Connector); nil, or
	// a check with bindto, bind_port or bind_if, or a link-local target,
	// connects through net.Dialer.
	Connector *Connector
}

// Bounded says that Check returns by connect_timeout of itself: the
// Scheduler need not add a deadline of its own (see Bounded).
func (t TCP) Bounded() bool { return t.Timeout > 0 }

// async says the connects go through the Connector.
func (t TCP) async() bool {
	return t.Connector != nil && !t.BindTo.IsValid() && t.BindPort == 0 && t.BindIf == "" && t.Target.Addr().Zone() == ""
}

// Check connects and closes.
func (t TCP) Check(ctx context.Context) Result {
	var err error
	if t.async() {
		err = t.Connector.connectTo(ctx, t.Target, monoDeadline(ctx, t.Timeout))
	} else {
		c, derr := t.dial(ctx, "tcp")
		if err = derr; err == nil {
			c.Close()
		}
	}
	return t.result(err)
}

// result is the Result of a connect that ended with err.
func (t TCP) result(err error) Result {
	if err != nil {
		return Result{Reason: "TCP connect to " + t.addr() + " failed: " + explain(err)}
	}
	return Result{Up: true, Reason: "TCP connect to " + t.addr() + " succeeded"}
}
