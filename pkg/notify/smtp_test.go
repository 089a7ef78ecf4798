package notify

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
)

func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("dial refused by test")
}

// smtpServer is a minimal SMTP server that records each session's lines.
type smtpServer struct {
	ln       net.Listener
	mu       sync.Mutex
	sessions [][]string
	wg       sync.WaitGroup
}

func newSMTPServer(t *testing.T) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var lines []string
	defer func() {
		s.mu.Lock()
		s.sessions = append(s.sessions, lines)
		s.mu.Unlock()
	}()
	c.Write([]byte("220 test ESMTP\r\n"))
	inData := false
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		lines = append(lines, strings.TrimSuffix(l, "\r\n"))
		switch {
		case inData:
			if l == ".\r\n" {
				inData = false
				c.Write([]byte("250 ok\r\n"))
			}
		case strings.HasPrefix(l, "DATA"):
			inData = true
			c.Write([]byte("354 go\r\n"))
		case strings.HasPrefix(l, "QUIT"):
			c.Write([]byte("221 bye\r\n"))
			return
		default:
			c.Write([]byte("250 ok\r\n"))
		}
	}
}

func (s *smtpServer) got() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.sessions...)
}

func mailConf(server string, port string) string {
	return `
global_defs {
  router_id notifyka
  notification_email { ops@example.test other@example.test }
  notification_email_from ka@example.test
  smtp_server ` + server + ` ` + port + `
  smtp_helo_name helo.example.test
  smtp_connect_timeout 1
  smtp_alert
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 52
  priority 120
  virtual_ipaddress { 192.0.2.101/32 }
  notify_master /bin/m
}
`
}

// TestSMTPSessionMatchesKeepalived: the session is line for line what
// keepalived 2.2.7 sent (testdata smtp-session.txt), Date aside.
func TestSMTPSessionMatchesKeepalived(t *testing.T) {
	srv := newSMTPServer(t)
	host, port, _ := net.SplitHostPort(srv.ln.Addr().String())
	at := time.Date(2026, 12, 2, 0, 57, 18, 0, time.UTC)
	d := New(Options{Runner: &fakeRunner{}, Now: func() time.Time { return at }})
	if err := d.Apply(parseConf(t, mailConf(host, port)), 1); err != nil {
		t.Fatal(err)
	}
	d.Event(tr("VI_2", sBackup, sMaster, 120))
	d.Event(tr("VI_2", sMaster, sMaster, 120)) // no transition: no second mail
	waitFor(t, "mail", func() bool { return len(srv.got()) == 1 })
	want := strings.Split(strings.TrimSuffix(mustRead(t, kaDir+"/smtp-session.txt"), "\n"), "\n")
	want = want[:len(want)-1] // the recorder's "--- end of session"
	got := srv.got()[0]
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("session:\n got %q\nwant %q", got, want)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSMTPDeadServers: a refused port and a server that accepts but never
// answers cost a log line each; scripts run meanwhile, Event never waits,
// and the blackhole gives up after smtp_connect_timeout.
func TestSMTPDeadServers(t *testing.T) {
	refused, _ := net.Listen("tcp", "127.0.0.1:0")
	refusedAddr := refused.Addr().String()
	refused.Close()
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	var held []net.Conn
	var hmu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			hmu.Lock()
			held = append(held, c)
			hmu.Unlock()
		}
	}()
	defer func() {
		hmu.Lock()
		for _, c := range held {
			c.Close()
		}
		hmu.Unlock()
	}()
	for _, tc := range []struct{ name, addr string }{{"refused", refusedAddr}, {"blackhole", hole.Addr().String()}} {
		t.Run(tc.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tc.addr)
			fr := &fakeRunner{}
			logs := &logRecorder{}
			d := New(Options{Runner: fr, Log: logs.logger()})
			if err := d.Apply(parseConf(t, mailConf(host, port)), 1); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i := 0; i < 200; i++ { // far more than the mail queue holds
				d.Event(tr("VI_2", sBackup, sMaster, 120))
				d.Event(tr("VI_2", sMaster, sBackup, 120))
			}
			if el := time.Since(start); el > time.Second {
				t.Fatalf("Event blocked: 400 events took %v", el)
			}
			waitFor(t, "script", func() bool { return len(fr.snapshot()) > 0 })
			waitFor(t, "smtp failure log", func() bool { return logs.has("smtp alert not sent") })
			failedAt := time.Since(start)
			if tc.name == "blackhole" && failedAt < 900*time.Millisecond {
				t.Fatalf("blackhole gave up after %v, before smtp_connect_timeout 1s", failedAt)
			}
			if !logs.has("smtp alert dropped: queue full") {
				t.Fatal("a full mail queue dropped nothing")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_ = d.Close(ctx)
		})
	}
}

var _ Runner = runnerFunc(func(context.Context, scriptrun.Command) scriptrun.Result { return scriptrun.Result{} })
