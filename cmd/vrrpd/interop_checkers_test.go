package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// TestCheckersAgainstRealServers (issue 8, must-show 2): the supervisor
// with one virtual_server per checker type, each against a real server
// from Debian in a netns on the other side of a bridge: nginx for HTTP_GET
// and SSL_GET (a certificate made here), dnsmasq for DNS_CHECK and, with a
// DNS query as payload, UDP_CHECK, OpenSMTPD for SMTP_CHECK and
// TCP_CHECK, the real server's kernel for PING_CHECK. Through `vrrpctl status --json` every real server
// goes healthy, then unhealthy with a reason naming the checker and the
// failure when its server stops (nginx answers 503 for HTTP), then healthy
// again. There is no IPVS in this kernel: vrrpd says so once, and status
// still carries the health.
func TestCheckersAgainstRealServers(t *testing.T) {
	lab := netlab.New(t) // skips unless root
	if bins.skip != "" {
		t.Skipf("interop: vrrpkit binaries: %s", bins.skip)
	}
	if bins.err != nil {
		t.Fatalf("interop: building vrrpkit: %v", bins.err)
	}
	tools := map[string]string{}
	for _, b := range []string{"nginx", "dnsmasq", "smtpd"} {
		p, err := exec.LookPath(b)
		if err != nil {
			if _, serr := os.Stat("/usr/sbin/" + b); serr != nil {
				t.Skipf("checkers: %s is not installed (Debian: nginx-light, dnsmasq, opensmtpd)", b)
			}
			p = "/usr/sbin/" + b
		}
		tools[b] = p
	}
	vrrpctl := buildVrrpctl(t)
	begin := time.Now()

	lan := lab.Segment("lan")
	lb, rs := lab.Host("lb", lan), lab.Host("rs", lan)
	rsIP, pingIP := rs.IPv4(), lan.VIP4(9)
	ipOn := func(h *netlab.Host, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", h.Netns()}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", h.Netns(), strings.Join(args, " "), err, out)
		}
	}
	// The PING_CHECK target: an address of its own on rs, taken away to
	// make it fail.
	ipOn(rs, "addr", "add", pingIP.String()+"/24", "dev", rs.Iface())

	dir := lab.Dir()
	cert, key := selfSignedCert(t, dir)
	down := filepath.Join(dir, "http-down")
	nginxConf := func(name, listen string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`daemon off; master_process off; pid %[1]s/nginx.pid; error_log %[1]s/error.log; user root;
events {}
http {
  access_log off; default_type text/plain;
  client_body_temp_path %[1]s/b; proxy_temp_path %[1]s/p; fastcgi_temp_path %[1]s/f; uwsgi_temp_path %[1]s/u; scgi_temp_path %[1]s/s;
  server { listen %[2]s; ssl_certificate %[3]s; ssl_certificate_key %[4]s;
    location = /health { if (-f %[5]s) { return 503 "busy\n"; } return 200 "ok\n"; } }
}
`, d, listen, cert, key, down)
		p := filepath.Join(d, "nginx.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	httpConf := nginxConf("nginx-http", rsIP.String()+":80")
	sslConf := nginxConf("nginx-ssl", rsIP.String()+":443 ssl")
	netlab.LockMachine(t, "smtpd") // one smtpd at a time on the machine (its control socket)
	smtpConf := filepath.Join(dir, "smtpd.conf")
	if err := os.WriteFile(smtpConf, []byte(fmt.Sprintf("listen on %s port 25\naction \"l\" mbox\nmatch from any for any action \"l\"\n", rsIP)), 0o600); err != nil {
		t.Fatal(err)
	}
	servers := map[string]func() *netlab.Proc{
		"ssl": func() *netlab.Proc {
			return rs.Start(tools["nginx"], "-e", filepath.Join(dir, "nginx-ssl", "error.log"), "-p", filepath.Join(dir, "nginx-ssl"), "-c", sslConf)
		},
		"dns": func() *netlab.Proc {
			return rs.Start(tools["dnsmasq"], "--keep-in-foreground", "--conf-file=/dev/null", "--port=53",
				"--listen-address="+rsIP.String(), "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root", "--pid-file=",
				"--address=/up.test/192.0.2.9")
		},
		"smtp": func() *netlab.Proc { return rs.Start(tools["smtpd"], "-d", "-f", smtpConf) },
	}
	httpProc := rs.Start(tools["nginx"], "-e", filepath.Join(dir, "nginx-http", "error.log"), "-p", filepath.Join(dir, "nginx-http"), "-c", httpConf)
	defer httpProc.Kill()
	procs := map[string]*netlab.Proc{}
	for name, start := range servers {
		procs[name] = start()
	}

	// A DNS query for up.test A, id 0x1234: UDP_CHECK wants the id back.
	const dnsQuery = "12 34 01 00 00 01 00 00 00 00 00 00 02 75 70 04 74 65 73 74 00 00 01 00 01"
	check := func(body string) string {
		return body + "\n      connect_timeout 1\n      retry 0\n    }\n"
	}
	vs := func(vip string, port int, proto, rsAddr string, rsPort int, checker string) string {
		return fmt.Sprintf("virtual_server %s %d {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol %s\n"+
			"  real_server %s %d {\n    weight 1\n    %s  }\n}\n", vip, port, proto, rsAddr, rsPort, checker)
	}
	conf := "global_defs {\n  router_id lb\n}\n" +
		vs("192.0.2.100", 80, "TCP", rsIP.String(), 80, check("HTTP_GET {\n      url {\n        path /health\n      }")) +
		vs("192.0.2.100", 443, "TCP", rsIP.String(), 443, check("SSL_GET {\n      url {\n        path /health\n      }")) +
		vs("192.0.2.100", 53, "UDP", rsIP.String(), 53, check("DNS_CHECK {\n      type A\n      name up.test")) +
		vs("192.0.2.101", 53, "UDP", rsIP.String(), 53, check("UDP_CHECK {\n      payload "+strings.ReplaceAll(dnsQuery, " ", "")+"\n      require_reply 1234")) +
		vs("192.0.2.100", 25, "TCP", rsIP.String(), 25, check("SMTP_CHECK {\n      helo_name checker.vrrpkit.test")) +
		vs("192.0.2.102", 25, "TCP", rsIP.String(), 25, check("TCP_CHECK {")) +
		vs("192.0.2.100", 7, "TCP", pingIP.String(), 7, check("PING_CHECK {"))
	confFile := filepath.Join(dir, "lb-vrrpkit.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir, err := os.MkdirTemp("", "vkrun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	sup := lb.Start(bins.supervisor, "-f", confFile, "--run-dir", runDir)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := sup.Output()
			t.Logf("supervisor log:\n%s", out)
		}
	})

	// One real server per virtual server: the checker named by its vs.
	type want struct{ vs, checker string }
	cases := map[string]want{
		"http": {"192.0.2.100:80/TCP", "HTTP_GET"}, "ssl": {"192.0.2.100:443/TCP", "SSL_GET"},
		"dns": {"192.0.2.100:53/UDP", "DNS_CHECK"}, "udp": {"192.0.2.101:53/UDP", "UDP_CHECK"},
		"smtp": {"192.0.2.100:25/TCP", "SMTP_CHECK"}, "tcp": {"192.0.2.102:25/TCP", "TCP_CHECK"},
		"ping": {"192.0.2.100:7/TCP", "PING_CHECK"},
	}
	type rsJSON struct {
		Address   string  `json:"address"`
		Weight    *uint32 `json:"weight"`
		Healthy   bool    `json:"healthy"`
		Since     *string `json:"since"`
		LastCheck *string `json:"last_check"`
		Reason    string  `json:"reason"`
	}
	type vsJSON struct {
		Name        string   `json:"name"`
		QuorumUp    bool     `json:"quorum_up"`
		RealServers []rsJSON `json:"real_servers"`
	}
	status := func() (map[string]rsJSON, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, vrrpctl, "status", "--json", "--run-dir", runDir).Output()
		if err != nil {
			return nil, fmt.Errorf("vrrpctl status --json: %v", err)
		}
		var st struct {
			VirtualServers []vsJSON `json:"virtual_servers"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return nil, fmt.Errorf("vrrpctl status --json: %v\n%s", err, out)
		}
		got := map[string]rsJSON{}
		for _, v := range st.VirtualServers {
			if len(v.RealServers) == 1 {
				got[v.Name] = v.RealServers[0]
			}
		}
		return got, nil
	}
	// waitAll waits until every case's real server satisfies ok, and
	// returns the last status.
	waitAll := func(what string, ok func(name string, w want, r rsJSON) string) map[string]rsJSON {
		t.Helper()
		start := time.Now()
		var last map[string]rsJSON
		err := eventually(30*time.Second, func() (bool, string) {
			got, err := status()
			if err != nil {
				return false, err.Error()
			}
			last = got
			var bad []string
			for name, w := range cases {
				r, found := got[w.vs]
				if !found {
					bad = append(bad, name+": not in status")
					continue
				}
				if why := ok(name, w, r); why != "" {
					bad = append(bad, fmt.Sprintf("%s: %s (%+v)", name, why, r))
				}
			}
			return len(bad) == 0, strings.Join(bad, "\n")
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
		return last
	}
	healthy := func(_ string, w want, r rsJSON) string {
		switch {
		case !r.Healthy:
			return "not healthy"
		case r.Since == nil || r.LastCheck == nil:
			return "no since / last_check"
		case r.Reason == "" || r.Reason == "not checked yet":
			return "no reason from a passing check"
		case r.Weight == nil || *r.Weight != 1:
			return "weight not 1"
		}
		return ""
	}
	up1 := waitAll("all healthy", healthy)
	for name, w := range cases {
		t.Logf("%s up: %s", name, up1[w.vs].Reason)
	}

	// Break every one.
	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, p := range procs {
		if err := p.Kill(); err != nil {
			t.Fatalf("stopping %s: %v", name, err)
		}
	}
	ipOn(rs, "addr", "del", pingIP.String()+"/24", "dev", rs.Iface())
	failure := map[string]string{
		"http": "HTTP status 503 from http://" + rsIP.String() + ":80/health, want 200-299",
		"ssl":  "refused", "dns": "DNS query up.test. A to " + rsIP.String() + ":53 failed",
		"udp": "port unreachable (ICMP)", "smtp": "SMTP connect to " + rsIP.String() + ":25 failed",
		"tcp":  "TCP connect to " + rsIP.String() + ":25 failed",
		"ping": "ping " + pingIP.String() + ": no echo reply",
	}
	dn := waitAll("all unhealthy with the failure", func(name string, w want, r rsJSON) string {
		switch {
		case r.Healthy:
			return "still healthy"
		case !strings.HasPrefix(r.Reason, w.checker+": ") || !strings.Contains(r.Reason, failure[name]):
			return fmt.Sprintf("reason does not name %s and %q", w.checker, failure[name])
		case r.Since == nil || up1[w.vs].Since == nil || *r.Since <= *up1[w.vs].Since:
			return "since did not move"
		case r.Weight == nil || *r.Weight != 0:
			return "weight not 0"
		}
		return ""
	})
	for name, w := range cases {
		t.Logf("%s down: %s", name, dn[w.vs].Reason)
	}

	// Mend every one.
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	for name, start := range servers {
		procs[name] = start()
	}
	ipOn(rs, "addr", "add", pingIP.String()+"/24", "dev", rs.Iface())
	waitAll("all healthy again", func(name string, w want, r rsJSON) string {
		if why := healthy(name, w, r); why != "" {
			return why
		}
		if r.Since == nil || dn[w.vs].Since == nil || *r.Since <= *dn[w.vs].Since {
			return "since did not move"
		}
		return ""
	})

	out, _ := sup.Output()
	if n := strings.Count(out, "IPVS not available"); n != 1 {
		t.Errorf("supervisor log has %d lines of \"IPVS not available\", want 1 (no IPVS in this kernel)", n)
	}
	t.Logf("took %v", time.Since(begin).Round(time.Millisecond))
}

var vrrpctlBin struct {
	once sync.Once
	path string
	err  error
}

// buildVrrpctl builds vrrpctl next to the supervisor, once.
func buildVrrpctl(t *testing.T) string {
	t.Helper()
	vrrpctlBin.once.Do(func() {
		cmd := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", bins.dir+"/", "github.com/vrrpkit/vrrpkit/cmd/vrrpctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			vrrpctlBin.err = fmt.Errorf("go build vrrpctl: %v\n%s", err, out)
			return
		}
		vrrpctlBin.path = filepath.Join(bins.dir, "vrrpctl")
	})
	if vrrpctlBin.err != nil {
		t.Fatal(vrrpctlBin.err)
	}
	return vrrpctlBin.path
}

// selfSignedCert writes an ECDSA certificate and key for SSL_GET's server
// (SSL_GET does not verify, as keepalived's does not without ca).
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs.vrrpkit.test"},
		DNSNames:  []string{"rs.vrrpkit.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "rs.crt"), filepath.Join(dir, "rs.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
