package check

import (
	"context"
	"fmt"
	"net/textproto"
)

// DefaultHelo is keepalived's helo_name default (check_smtp.h
// SMTP_DEFAULT_HELO).
const DefaultHelo = "smtpchecker.keepalived.org"

// SMTP is SMTP_CHECK against one host: a 220 greeting, "HELO name"
// answered by 250, then QUIT, whose answer keepalived does not check
// (check_smtp.c smtp_engine_thread). Each host block of keepalived 2.2.7
// becomes its own checker (smtp_check_end_handler), so it is one SMTP
// value per host here too.
type SMTP struct {
	Conn
	Helo string
}

// Check runs the dialogue.
func (s SMTP) Check(ctx context.Context) Result {
	c, err := s.dial(ctx, "tcp")
	if err != nil {
		return down("SMTP connect to %s failed: %s", s.addr(), explain(err))
	}
	defer c.Close()
	if dl := s.deadline(ctx); !dl.IsZero() {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	tp := textproto.NewConn(c)
	if code, msg, err := tp.ReadResponse(220); err != nil {
		return down("SMTP server %s: bad greeting banner: %s", s.addr(), smtpErr(code, msg, err))
	}
	helo := s.Helo
	if helo == "" {
		helo = DefaultHelo
	}
	if err := tp.PrintfLine("HELO %s", helo); err != nil {
		return down("SMTP server %s: sending HELO failed: %s", s.addr(), explain(err))
	}
	if code, msg, err := tp.ReadResponse(250); err != nil {
		return down("SMTP server %s: bad HELO response: %s", s.addr(), smtpErr(code, msg, err))
	}
	if err := tp.PrintfLine("QUIT"); err != nil {
		return down("SMTP server %s: sending QUIT failed: %s", s.addr(), explain(err))
	}
	// keepalived reads a line after QUIT but does not look at it.
	tp.ReadLine()
	return up("SMTP server %s answered 220, HELO 250", s.addr())
}

func smtpErr(code int, msg string, err error) string {
	if _, ok := err.(*textproto.Error); ok {
		return fmt.Sprintf("%d %s", code, msg)
	}
	return explain(err)
}
