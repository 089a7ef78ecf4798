package check

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// HTTPProtocol is http_protocol: what the request line and headers say.
type HTTPProtocol int

const (
	// HTTP10 sends "GET path HTTP/1.0" (keepalived's default).
	HTTP10 HTTPProtocol = iota
	// HTTP10C is HTTP/1.0 with "Connection: close".
	HTTP10C
	// HTTP11 is HTTP/1.1 with "Connection: close".
	HTTP11
)

// ParseHTTPProtocol reads http_protocol's value ("1.0", "1.0C", "1.0c",
// "1.1"; check_http.c http_protocol_handler).
func ParseHTTPProtocol(s string) (HTTPProtocol, error) {
	switch s {
	case "", "1.0":
		return HTTP10, nil
	case "1.0C", "1.0c":
		return HTTP10C, nil
	case "1.1":
		return HTTP11, nil
	}
	return HTTP10, fmt.Errorf("http_protocol %q: want 1.0, 1.0C or 1.1", s)
}

// StatusRange is one status_code item, "200" or "200-299".
type StatusRange struct{ Min, Max int }

// ParseStatusCodes reads status_code's items; none means 200-299
// (check_http.c url_check: HTTP_DEFAULT_STATUS_CODE_MIN..MAX). Codes are
// 100..599 as keepalived's status_code_handler accepts.
func ParseStatusCodes(items []string) ([]StatusRange, error) {
	if len(items) == 0 {
		return []StatusRange{{200, 299}}, nil
	}
	var out []StatusRange
	for _, it := range items {
		lo, hi, isRange := strings.Cut(it, "-")
		min, err1 := strconv.Atoi(lo)
		max := min
		var err2 error
		if isRange {
			max, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || min < 100 || max > 599 || min > max {
			return nil, fmt.Errorf("status_code %q: want a code or range within 100-599", it)
		}
		out = append(out, StatusRange{min, max})
	}
	return out, nil
}

func statusOK(rs []StatusRange, code int) bool {
	for _, r := range rs {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

func statusWant(rs []StatusRange) string {
	var parts []string
	for _, r := range rs {
		if r.Min == r.Max {
			parts = append(parts, strconv.Itoa(r.Min))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.Min, r.Max))
		}
	}
	return strings.Join(parts, ",")
}

// URL is one url block.
type URL struct {
	Path string
	// Digest is the MD5 of the body as lowercase hex (genhash's output);
	// "" checks no digest.
	Digest string
	// Status is the accepted status codes; nil means 200-299.
	Status []StatusRange
	// Virtualhost overrides the checker's for this URL.
	Virtualhost string
	// Regex must match the body (or must not, with RegexNoMatch). Go's
	// RE2 syntax, where keepalived uses PCRE2.
	Regex        *regexp.Regexp
	RegexNoMatch bool
}

// HTTP is HTTP_GET, or SSL_GET when TLS is set.
type HTTP struct {
	Conn
	TLS      bool
	URLs     []URL
	Protocol HTTPProtocol
	// Virtualhost is the Host header (and SNI name with EnableSNI) when
	// the URL has none: keepalived takes url, checker, real server, then
	// virtual server's virtualhost (check_http.c http_request_thread);
	// the caller folds the outer ones in here.
	Virtualhost string
	EnableSNI   bool
	// Verify checks the server's certificate against RootCAs (nil: the
	// system pool). keepalived never verifies (check_ssl.c sets no verify
	// mode), so false is keepalived's behaviour.
	Verify  bool
	RootCAs *x509.CertPool
	// MaxBody bounds what is read of a body (0: 4 MiB).
	MaxBody int64
}

// Check fetches every URL in turn and fails at the first that does not
// answer as configured. keepalived fetches one URL per delay_loop and,
// with fast_recovery, the rest at once; fetching all in one attempt gives
// fast_recovery's effect always.
func (h HTTP) Check(ctx context.Context) Result {
	if len(h.URLs) == 0 {
		return down("no url to check")
	}
	var last Result
	for i := range h.URLs {
		last = h.get(ctx, &h.URLs[i])
		if !last.Up {
			return last
		}
	}
	if len(h.URLs) > 1 {
		last.Reason = fmt.Sprintf("%d urls answered as configured", len(h.URLs))
	}
	return last
}

func (h HTTP) scheme() string {
	if h.TLS {
		return "https"
	}
	return "http"
}

// Request is the exact request keepalived sends (check_http.c
// request_template): no Accept-Encoding, so the body's digest is the
// server's bytes.
func (h HTTP) Request(u *URL) string {
	vhost := u.Virtualhost
	if vhost == "" {
		vhost = h.Virtualhost
	}
	host := vhost
	if host == "" {
		// No virtualhost: the target with its port, IPv6 in brackets
		// (RFC 2732).
		host = net.JoinHostPort(h.Target.Addr().String(), strconv.Itoa(int(h.Target.Port())))
	}
	minor, conn := 0, ""
	switch h.Protocol {
	case HTTP10C:
		conn = "Connection: close\r\n"
	case HTTP11:
		minor, conn = 1, "Connection: close\r\n"
	}
	return fmt.Sprintf("GET %s HTTP/1.%d\r\nUser-Agent: KeepAliveClient\r\n%sHost: %s\r\n\r\n", u.Path, minor, conn, host)
}

func (h HTTP) get(ctx context.Context, u *URL) Result {
	where := h.scheme() + "://" + h.addr() + u.Path
	want := u.Status
	if want == nil {
		want = []StatusRange{{200, 299}}
	}
	code, body, err := h.fetch(ctx, u, func(code int) bool {
		return statusOK(want, code) && (u.Digest != "" || u.Regex != nil)
	})
	if err != nil {
		return down("%v", err)
	}
	if !statusOK(want, code) {
		return down("HTTP status %d from %s, want %s", code, where, statusWant(want))
	}
	if u.Digest == "" && u.Regex == nil {
		return up("HTTP status %d from %s", code, where)
	}
	if u.Digest != "" {
		sum := md5.Sum(body)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, u.Digest) {
			return down("MD5 digest of %s is %s, want %s", where, got, strings.ToLower(u.Digest))
		}
	}
	if u.Regex != nil {
		if m := u.Regex.Match(body); m == u.RegexNoMatch {
			if m {
				return down("body of %s matches regex %q (regex_no_match)", where, u.Regex.String())
			}
			return down("body of %s does not match regex %q", where, u.Regex.String())
		}
	}
	return up("HTTP status %d from %s, body as configured", code, where)
}

// fetch sends keepalived's request for u and reads the status line, and
// the body when readBody says so for the status. Its errors say which
// step failed for which URL.
func (h HTTP) fetch(ctx context.Context, u *URL, readBody func(code int) bool) (int, []byte, error) {
	where := h.scheme() + "://" + h.addr() + u.Path
	c, err := h.dial(ctx, "tcp")
	if err != nil {
		return 0, nil, fmt.Errorf("connect for %s failed: %s", where, explain(err))
	}
	defer c.Close()
	if dl := h.deadline(ctx); !dl.IsZero() {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if h.TLS {
		vhost := u.Virtualhost
		if vhost == "" {
			vhost = h.Virtualhost
		}
		cfg := &tls.Config{InsecureSkipVerify: !h.Verify, RootCAs: h.RootCAs}
		if h.EnableSNI && vhost != "" {
			cfg.ServerName = vhost
		} else if h.Verify {
			cfg.ServerName = h.Target.Addr().String()
			if vhost != "" {
				cfg.ServerName = vhost
			}
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, nil, fmt.Errorf("TLS handshake for %s failed: %s", where, explain(err))
		}
		c = tc
	}
	if _, err := io.WriteString(c, h.Request(u)); err != nil {
		return 0, nil, fmt.Errorf("sending the request for %s failed: %s", where, explain(err))
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodGet})
	if err != nil {
		return 0, nil, fmt.Errorf("no valid HTTP response for %s: %s", where, explain(err))
	}
	defer resp.Body.Close()
	if !readBody(resp.StatusCode) {
		return resp.StatusCode, nil, nil
	}
	max := h.MaxBody
	if max <= 0 {
		max = 4 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the body of %s failed: %s", where, explain(err))
	}
	return resp.StatusCode, body, nil
}

// GenHash is keepalived's genhash: it fetches path as HTTP_GET (or SSL_GET)
// would and returns the status and the MD5 of the body, the value a
// `digest` line wants.
func (h HTTP) GenHash(ctx context.Context, path string) (status int, digest string, err error) {
	code, body, err := h.fetch(ctx, &URL{Path: path}, func(int) bool { return true })
	if err != nil {
		return code, "", err
	}
	sum := md5.Sum(body)
	return code, hex.EncodeToString(sum[:]), nil
}
