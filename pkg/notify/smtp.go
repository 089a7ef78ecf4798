package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"time"
)

// outMail is a Mail ready to send: its plan and when it was made.
type outMail struct {
	plan *MailPlan
	mail Mail
	at   time.Time
}

// subject is smtp_alert's: "[router_id] VRRP Instance VI_1 - Entering
// MASTER state" or "[router_id] VRRP Group G1 - ..." (core/smtp.c).
func (m outMail) subject() string {
	what := "VRRP Instance"
	if m.mail.Kind == KindGroup {
		what = "VRRP Group"
	}
	return fmt.Sprintf("[%s] %s %s - %s", m.plan.RouterID, what, m.mail.Name, m.mail.Subject)
}

// data is the DATA part exactly as keepalived's body_cmd writes it
// (SMTP_HEADERS_CMD and SMTP_BODY_CMD in smtp.h, recorded in
// testdata/keepalived-2.2.7/smtp-session.txt): SMTP_SEND_CMD starts with
// an empty line before the final dot, which the DotWriter adds.
func (m outMail) data() string {
	return "Date: " + m.at.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n" +
		"From: " + m.plan.From + "\r\n" +
		"Subject: " + m.subject() + "\r\n" +
		"X-Mailer: Keepalived\r\n" +
		"To: " + strings.Join(m.plan.To, ", ") + "\r\n" +
		"\r\n" +
		m.mail.Body + "\r\n" +
		"\r\n"
}

// mailer sends mails one at a time from a bounded queue, so that a dead
// or silent server costs a log line per mail and nothing else.
type mailer struct {
	log   *slog.Logger
	queue chan outMail
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (m *mailer) enqueue(om outMail) {
	select {
	case m.queue <- om:
	default:
		m.log.Warn("smtp alert dropped: queue full", "subject", om.subject(), "queue", cap(m.queue))
	}
}

// run sends until ctx is done or the queue is closed and drained.
func (m *mailer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case om, ok := <-m.queue:
			if !ok {
				return
			}
			if err := m.send(ctx, om); err != nil {
				m.log.Warn("smtp alert not sent", "server", om.plan.Addr, "subject", om.subject(), "error", err)
			} else {
				m.log.Info("smtp alert successfully sent", "server", om.plan.Addr, "subject", om.subject())
			}
		}
	}
}

// send runs keepalived's dialogue (smtp.c's FSM): HELO, MAIL FROM, one
// RCPT TO per address, DATA, QUIT. smtp_connect_timeout bounds the
// connect and each reply, as keepalived's timers do.
func (m *mailer) send(ctx context.Context, om outMail) error {
	timeout := om.plan.Timeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := m.dial(dctx, "tcp", om.plan.Addr)
	cancel()
	if err != nil {
		return fmt.Errorf("connect %s: %w", om.plan.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	tc := textproto.NewConn(conn)
	step := func(what string, want int, format string, args ...any) error {
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if format != "" {
			if err := tc.PrintfLine(format, args...); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if _, _, err := tc.ReadResponse(want); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if err := step("greeting", 220, ""); err != nil {
		return err
	}
	if err := step("HELO", 250, "HELO %s", om.plan.Helo); err != nil {
		return err
	}
	if err := step("MAIL FROM", 250, "MAIL FROM:<%s>", om.plan.From); err != nil {
		return err
	}
	for _, to := range om.plan.To {
		if err := step("RCPT TO", 250, "RCPT TO:<%s>", to); err != nil {
			return err
		}
	}
	if err := step("DATA", 354, "DATA"); err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	w := tc.DotWriter()
	if _, err := w.Write([]byte(om.data())); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if err := step("end of data", 250, ""); err != nil {
		return err
	}
	// keepalived expects 221 but has sent the mail already; so do we.
	_ = step("QUIT", 221, "QUIT")
	return nil
}
