package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort(t *testing.T, network string) uint16 {
	t.Helper()
	if network == "udp" {
		// A port free for TCP as well: dnsmasq listens on both, and the
		// other tests leave TCP ports in use (TIME_WAIT).
		for range 100 {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := c.LocalAddr().(*net.UDPAddr).Port
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			c.Close()
			if err == nil {
				l.Close()
				return uint16(port)
			}
		}
		t.Fatal("no port free for both UDP and TCP")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func lo(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		for _, d := range []string{"/usr/sbin/", "/sbin/"} {
			if _, err := os.Stat(d + bin); err == nil {
				return d + bin
			}
		}
		t.Skipf("%s not installed", bin)
	}
	return p
}

// server is a real daemon run in the foreground for a test.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(t *testing.T, name string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(name, args...)
	log := filepath.Join(t.TempDir(), "out.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so that stop ends the daemon's helpers too
	// (OpenSMTPD forks privilege-separated processes).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("%s output:\n%s", name, b)
		}
	})
	return s
}

func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// eventually runs c until it gives want, for servers that are starting.
func eventually(t *testing.T, c Checker, want bool) Result {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := c.Check(ctx)
		cancel()
		if r.Up == want || time.Now().After(deadline) {
			if r.Up != want {
				t.Fatalf("check stayed up=%v: %s", r.Up, r.Reason)
			}
			if r.Reason == "" {
				t.Fatalf("empty reason")
			}
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func once(c Checker) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Check(ctx)
}

func expect(t *testing.T, what string, r Result, up bool, reason string) {
	t.Helper()
	if r.Up != up || !strings.Contains(r.Reason, reason) {
		t.Errorf("%s: up=%v %q, want up=%v with %q", what, r.Up, r.Reason, up, reason)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vhost.test"},
		DNSNames: []string{"vhost.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// md5 of "hello\n", as genhash prints it.
const helloMD5 = "b1946ac92492d2347c6235b4d2611184"

func TestHTTPAndSSLAgainstNginx(t *testing.T) {
	nginx := need(t, "nginx")
	if os.Geteuid() != 0 {
		t.Skip("nginx's Debian build wants root for its temp paths")
	}
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	hp, sp := freePort(t, "tcp"), freePort(t, "tcp")
	conf := fmt.Sprintf(`daemon off; master_process off; pid %[1]s/nginx.pid; error_log %[1]s/error.log; user root;
events {}
http {
  access_log off; default_type text/plain;
  client_body_temp_path %[1]s/b; proxy_temp_path %[1]s/p; fastcgi_temp_path %[1]s/f; uwsgi_temp_path %[1]s/u; scgi_temp_path %[1]s/s;
  server { listen 127.0.0.1:%[2]d default_server; listen 127.0.0.1:%[3]d ssl default_server;
    ssl_certificate %[4]s; ssl_certificate_key %[5]s;
    location = /ok { return 200 "hello\n"; }
    location = /fail { return 503 "busy\n"; }
    location = /moved { return 302 /ok; } }
  server { listen 127.0.0.1:%[2]d; listen 127.0.0.1:%[3]d ssl; server_name vhost.test;
    ssl_certificate %[4]s; ssl_certificate_key %[5]s;
    location = /ok { return 200 "vhost\n"; } }
}
`, dir, hp, sp, cert, key)
	cf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(cf, []byte(conf), 0o600)
	srv := start(t, nginx, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", cf)

	st := func(s ...string) []StatusRange {
		r, err := ParseStatusCodes(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	conn := Conn{Target: lo(hp), Timeout: time.Second}
	eventually(t, TCP{Conn: conn}, true)
	h := HTTP{Conn: conn, URLs: []URL{{Path: "/ok", Digest: helloMD5}}}
	expect(t, "digest ok", once(h), true, "HTTP status 200")
	expect(t, "digest wrong", once(HTTP{Conn: conn, URLs: []URL{{Path: "/ok", Digest: strings.Repeat("0", 32)}}}), false, "MD5 digest of http://127.0.0.1")
	expect(t, "503 default codes", once(HTTP{Conn: conn, URLs: []URL{{Path: "/fail"}}}), false, "HTTP status 503 from http://127.0.0.1:"+fmt.Sprint(hp)+"/fail, want 200-299")
	expect(t, "503 accepted by range", once(HTTP{Conn: conn, URLs: []URL{{Path: "/fail", Status: st("200", "500-503")}}}), true, "status 503")
	expect(t, "302 not in 200-299", once(HTTP{Conn: conn, Protocol: HTTP11, URLs: []URL{{Path: "/moved"}}}), false, "HTTP status 302")
	expect(t, "two urls, second fails", once(HTTP{Conn: conn, URLs: []URL{{Path: "/ok"}, {Path: "/fail"}}}), false, "/fail")
	expect(t, "virtualhost picks the vhost server", once(HTTP{Conn: conn, Virtualhost: "vhost.test", Protocol: HTTP10C,
		URLs: []URL{{Path: "/ok", Digest: helloMD5}}}), false, "MD5 digest")
	expect(t, "url virtualhost wins", once(HTTP{Conn: conn, Virtualhost: "other", URLs: []URL{{Path: "/ok", Virtualhost: "vhost.test", Digest: md5hex("vhost\n")}}}), true, "body as configured")

	tconn := Conn{Target: lo(sp), Timeout: time.Second}
	expect(t, "SSL_GET no verify", once(HTTP{Conn: tconn, TLS: true, URLs: []URL{{Path: "/ok", Digest: helloMD5}}}), true, "https://127.0.0.1")
	expect(t, "SSL_GET verify fails without SNI name", once(HTTP{Conn: tconn, TLS: true, Verify: true, RootCAs: pool, URLs: []URL{{Path: "/ok"}}}), false, "TLS handshake")
	expect(t, "SSL_GET verify + SNI", once(HTTP{Conn: tconn, TLS: true, Verify: true, RootCAs: pool, EnableSNI: true, Virtualhost: "vhost.test",
		URLs: []URL{{Path: "/ok", Digest: md5hex("vhost\n")}}}), true, "body as configured")

	srv.stop()
	expect(t, "HTTP after stop", once(h), false, "connection refused")
	expect(t, "SSL after stop", once(HTTP{Conn: tconn, TLS: true, URLs: []URL{{Path: "/ok"}}}), false, "connection refused")
	expect(t, "TCP after stop", once(TCP{Conn: conn}), false, "TCP connect to 127.0.0.1")
}

func md5hex(s string) string {
	return fmt.Sprintf("%x", md5sum([]byte(s)))
}

func TestDNSAgainstDnsmasq(t *testing.T) {
	bin := need(t, "dnsmasq")
	if os.Geteuid() != 0 {
		t.Skip("dnsmasq wants root to start")
	}
	port := freePort(t, "udp")
	srv := start(t, bin, "--keep-in-foreground", "--conf-file=/dev/null", fmt.Sprintf("--port=%d", port),
		"--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root", "--pid-file=",
		"--address=/up.test/127.0.0.9", "--auth-zone=zone.test", "--auth-server=ns.zone.test", "--host-record=www.zone.test,127.0.0.10")
	conn := Conn{Target: lo(port), Timeout: 500 * time.Millisecond}
	a, _ := ParseDNSType("a")
	r := eventually(t, DNS{Conn: conn, Type: a, Name: "up.test"}, true)
	expect(t, "A up.test", r, true, "NOERROR with 1 answer")
	soa, _ := ParseDNSType("")
	expect(t, "SOA of an auth zone", once(DNS{Conn: conn, Type: soa, Name: "zone.test"}), true, "NOERROR")
	// No upstream: dnsmasq refuses what it cannot answer.
	expect(t, "name it cannot answer", once(DNS{Conn: conn, Type: a, Name: "elsewhere.example"}), false, "answered REFUSED")
	srv.stop()
	expect(t, "after stop", once(DNS{Conn: conn, Type: a, Name: "up.test"}), false, "DNS query up.test. A to 127.0.0.1")
}

func TestSMTPAgainstOpenSMTPD(t *testing.T) {
	bin := need(t, "smtpd")
	if os.Geteuid() != 0 {
		t.Skip("OpenSMTPD needs root")
	}
	netlab.LockMachine(t, "smtpd") // one smtpd at a time on the machine
	dir := t.TempDir()
	port := freePort(t, "tcp")
	cf := filepath.Join(dir, "smtpd.conf")
	os.WriteFile(cf, []byte(fmt.Sprintf("listen on 127.0.0.1 port %d\naction \"l\" mbox\nmatch from any for any action \"l\"\n", port)), 0o600)
	srv := start(t, bin, "-d", "-f", cf)
	c := SMTP{Conn: Conn{Target: lo(port), Timeout: time.Second}, Helo: "checker.vrrpkit.test"}
	expect(t, "smtp up", eventually(t, c, true), true, "answered 220, HELO 250")
	// A server that greets with something else than 220.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			cn, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(cn, "554 go away\r\n")
			cn.Close()
		}
	}()
	bad := SMTP{Conn: Conn{Target: netip.MustParseAddrPort(l.Addr().String()), Timeout: time.Second}}
	expect(t, "554 banner", once(bad), false, "bad greeting banner: 554 go away")
	srv.stop()
	// OpenSMTPD's helpers hold the listening socket a moment longer
	// than the parent lives.
	eventually(t, TCP{Conn: c.Conn}, false)
	expect(t, "smtp after stop", once(c), false, "SMTP connect to 127.0.0.1")
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		buf := make([]byte, 2048)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("OK:"), buf[:n]...), a)
		}
	}()
	port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	conn := Conn{Target: lo(port), Timeout: 300 * time.Millisecond}
	payload, _, err := ParseHex("68 69", false)
	if err != nil {
		t.Fatal(err)
	}
	reply, mask, err := ParseHex("4f 4b 3a xx", true)
	if err != nil || mask == nil || mask[3] != 0xff {
		t.Fatalf("ParseHex wildcard: %v %v", mask, err)
	}
	expect(t, "reply required and matching", once(UDP{Conn: conn, Payload: payload, RequireReply: true, Reply: reply, ReplyMask: mask}), true, "UDP reply of 5 bytes")
	wrong, _, _ := ParseHex("4e4b", true)
	expect(t, "reply mismatch", once(UDP{Conn: conn, Payload: payload, RequireReply: true, Reply: wrong}), false, "differs from require_reply at byte 0")
	expect(t, "reply too long", once(UDP{Conn: conn, Payload: payload, RequireReply: true, MaxReplyLength: 3}), false, "want 0-3")
	expect(t, "no reply needed", once(UDP{Conn: conn}), true, "UDP reply of 35 bytes")
	pc.Close()
	<-echoDone
	expect(t, "closed port, no reply needed", once(UDP{Conn: conn}), false, "port unreachable (ICMP)")
	expect(t, "closed port, reply required", once(UDP{Conn: conn, RequireReply: true}), false, "port unreachable")
	// A socket that never answers: silence is success without require_reply.
	mute, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	mconn := Conn{Target: netip.MustParseAddrPort(mute.LocalAddr().String()), Timeout: 200 * time.Millisecond}
	expect(t, "silent, no reply needed", once(UDP{Conn: mconn}), true, "no reply and no ICMP error")
	expect(t, "silent, reply required", once(UDP{Conn: mconn, RequireReply: true}), false, "no reply before the timeout")
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "track")
	cases := []struct {
		content *string
		weight  int64
		reverse bool
		up      bool
		w       int64
		reason  string
	}{
		{nil, 0, false, true, 0, "missing (reads as 0)"},
		{ptr("0\n"), 0, false, true, 0, "holds 0"},
		{ptr("1\n"), 0, false, false, 0, "non-zero means down"},
		{ptr("1\n"), 0, true, true, 0, "reverse"},
		{ptr("0"), 0, true, false, 0, "non-zero means down (reverse)"},
		{ptr(" 0x10 junk"), 5, false, true, 80, "weight +80"},
		{ptr("-3"), 5, true, true, 15, "weight +15"},
		{ptr("-2147483648"), 1, false, false, 0, "fault weight"},
		{ptr("abc"), 2, false, true, 0, "holds no number"},
	}
	for i, tc := range cases {
		os.Remove(p)
		if tc.content != nil {
			os.WriteFile(p, []byte(*tc.content), 0o644)
		}
		r := once(File{Path: p, Weight: tc.weight, Reverse: tc.reverse})
		if r.Up != tc.up || r.Weight != tc.w || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("case %d: %+v, want up=%v weight=%d reason %q", i, r, tc.up, tc.w, tc.reason)
		}
	}
}

func ptr(s string) *string { return &s }
