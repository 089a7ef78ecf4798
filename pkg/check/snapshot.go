package check

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"

	"google.golang.org/protobuf/proto"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// ErrUnsupported marks a checker this package does not run (BFD_CHECK, a
// MISC_CHECK without a ScriptRunner).
var ErrUnsupported = errors.New("not supported")

// SnapshotOptions configure FromSnapshot.
type SnapshotOptions struct {
	// Runner runs MISC_CHECK scripts (through the supervisor); nil:
	// MISC_CHECK is ErrUnsupported.
	Runner ScriptRunner
	// Connector makes TCP_CHECK's connects; nil: net.Dialer (see TCP).
	Connector *Connector
}

// ServerChecks are the checks of one real server of a snapshot.
type ServerChecks struct {
	// HealthID is the real server's health_id (LvsRealServer.health_id).
	HealthID  string
	DefinedAt string
	// Weight is the real server's configured weight (LvsRealServer.weight),
	// which MiscWeight needs.
	Weight uint32
	Checks []SnapshotCheck
}

// SnapshotCheck is one checker of a real server.
type SnapshotCheck struct {
	// Job runs it; Job.Checker is nil when Err is set.
	Job Job
	// Type is the checker's keyword ("TCP_CHECK"), for logs.
	Type      string
	DefinedAt string
	// Err says why the checker cannot run (wrapping ErrUnsupported for
	// the ones this package does not run).
	Err error
}

// FromSnapshot builds the checks of every checked real server of snap.
// Each Job's Key is the real server's health_id and the checker's settings
// (its position aside), so a reload that leaves them alone gives the same
// Key: a caller diffs on it to keep unchanged checks running. Identical
// checkers of one real server get distinct Keys (#2, #3 ...).
func FromSnapshot(snap *pb.ConfigSnapshot, o SnapshotOptions) []ServerChecks {
	var out []ServerChecks
	for _, vs := range snap.GetVirtualServers() {
		for _, rs := range vs.GetRealServers() {
			if rs.GetHealthId() == "" || len(rs.GetCheckers()) == 0 {
				continue
			}
			sc := ServerChecks{HealthID: rs.GetHealthId(), DefinedAt: rs.GetDefinedAt(), Weight: rs.GetWeight()}
			keys, names := checkerKeys(rs), MiscScriptNames(rs)
			for i, c := range rs.GetCheckers() {
				k := keys[i]
				typ := TypeName(c.GetType())
				chk := SnapshotCheck{Type: typ, DefinedAt: c.GetDefinedAt()}
				checker, params, err := fromProto(c, o, names[i])
				if err != nil {
					chk.Err = fmt.Errorf("%s at %s: %w", typ, c.GetDefinedAt(), err)
				}
				chk.Job = Job{ID: rs.GetHealthId() + " " + typ + "@" + c.GetDefinedAt(), Checker: checker, Params: params,
					Key: rs.GetHealthId() + "\x00" + k}
				sc.Checks = append(sc.Checks, chk)
			}
			out = append(out, sc)
		}
	}
	return out
}

// settingsKey is c's settings without its position, as bytes.
func settingsKey(c *pb.LvsChecker) string {
	n := proto.Clone(c).(*pb.LvsChecker)
	n.DefinedAt = ""
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(n)
	if err != nil {
		// Marshal fails only on invalid UTF-8 in a string field; the
		// text form still tells settings apart.
		return n.String()
	}
	return string(b)
}

// TypeName is the checker block's keyword of t.
func TypeName(t pb.LvsCheckerType) string {
	switch t {
	case pb.LvsCheckerType_LVS_CHECKER_TCP:
		return "TCP_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_HTTP:
		return "HTTP_GET"
	case pb.LvsCheckerType_LVS_CHECKER_SSL:
		return "SSL_GET"
	case pb.LvsCheckerType_LVS_CHECKER_SMTP:
		return "SMTP_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_DNS:
		return "DNS_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_UDP:
		return "UDP_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_PING:
		return "PING_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_FILE:
		return "FILE_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_MISC:
		return "MISC_CHECK"
	case pb.LvsCheckerType_LVS_CHECKER_BFD:
		return "BFD_CHECK"
	}
	return t.String()
}

// ParamsOf returns c's timing: the snapshot carries it resolved
// (pkg/snapshot used Resolve).
func ParamsOf(c *pb.LvsChecker) Params {
	return Params{
		DelayLoop:        c.GetDelayLoop().AsDuration(),
		Retry:            c.GetRetry(),
		DelayBeforeRetry: c.GetDelayBeforeRetry().AsDuration(),
		Warmup:           c.GetWarmup().AsDuration(),
		Alpha:            c.GetAlpha(),
		Timeout:          c.GetConnectTimeout().AsDuration(),
	}
}

// fromProto builds the checker c describes, and its timing. A checker
// that cannot run returns an error (ErrUnsupported for BFD_CHECK and for a
// MISC_CHECK without o.Runner).
// miscName is the MISC_CHECK's script name (MiscScriptNames), which only
// the real server gives.
func fromProto(c *pb.LvsChecker, o SnapshotOptions, miscName string) (Checker, Params, error) {
	p := ParamsOf(c)
	if p.DelayLoop <= 0 {
		return nil, p, fmt.Errorf("delay_loop %v: want > 0", p.DelayLoop)
	}
	conn, err := connOf(c)
	if err != nil {
		return nil, p, err
	}
	switch c.GetType() {
	case pb.LvsCheckerType_LVS_CHECKER_TCP:
		return TCP{Conn: conn, Connector: o.Connector}, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_HTTP, pb.LvsCheckerType_LVS_CHECKER_SSL:
		h := HTTP{Conn: conn, TLS: c.GetType() == pb.LvsCheckerType_LVS_CHECKER_SSL, Virtualhost: c.GetVirtualhost(), EnableSNI: c.GetEnableSni()}
		if h.Protocol, err = ParseHTTPProtocol(c.GetHttpProtocol()); err != nil {
			return nil, p, err
		}
		for _, u := range c.GetUrls() {
			url := URL{Path: u.GetPath(), Digest: u.GetDigest(), Virtualhost: u.GetVirtualhost(), RegexNoMatch: u.GetRegexNoMatch()}
			if url.Status, err = ParseStatusCodes(u.GetStatusCode()); err != nil {
				return nil, p, fmt.Errorf("url %s: %w", u.GetPath(), err)
			}
			if r := u.GetRegex(); r != "" {
				if url.Regex, err = regexp.Compile(r); err != nil {
					return nil, p, fmt.Errorf("url %s: regex: %w", u.GetPath(), err)
				}
			}
			h.URLs = append(h.URLs, url)
		}
		return h, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_SMTP:
		return SMTP{Conn: conn, Helo: c.GetHeloName()}, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_DNS:
		t, err := ParseDNSType(c.GetDnsType())
		if err != nil {
			return nil, p, err
		}
		return DNS{Conn: conn, Type: t, Name: c.GetDnsName()}, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_UDP:
		u := UDP{Conn: conn, RequireReply: c.GetRequireReply() != "",
			MinReplyLength: int(c.GetMinReplyLength()), MaxReplyLength: int(c.GetMaxReplyLength())}
		if u.MaxReplyLength == 0 {
			u.MaxReplyLength = 255 // udp_check_handler's default
		}
		if s := c.GetPayload(); s != "" {
			if u.Payload, _, err = ParseHex(s, false); err != nil {
				return nil, p, fmt.Errorf("payload: %w", err)
			}
		}
		if s := c.GetRequireReply(); s != "" {
			if u.Reply, u.ReplyMask, err = ParseHex(s, true); err != nil {
				return nil, p, fmt.Errorf("require_reply: %w", err)
			}
		}
		return u, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_PING:
		return Ping{Conn: conn}, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_FILE:
		if c.GetTrackFile() == "" {
			return nil, p, errors.New("no track_file path")
		}
		return File{Path: c.GetTrackFile(), Weight: c.GetWeight(), Reverse: c.GetWeightReverse()}, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_MISC:
		if o.Runner == nil {
			return nil, p, fmt.Errorf("MISC_CHECK: %w (no script runner)", ErrUnsupported)
		}
		if len(c.GetMiscPath()) == 0 {
			return nil, p, errors.New("no misc_path")
		}
		if miscName == "" {
			return nil, p, errors.New("MISC_CHECK outside a real server: no script name")
		}
		timeout := c.GetMiscTimeout().AsDuration()
		if timeout <= 0 {
			// check_misc.c misc_check_thread: without misc_timeout the
			// script may run for the virtual server's delay_loop
			// (pkg/snapshot fills that in; this is the fallback).
			timeout = p.DelayLoop
		}
		// The runner kills the script at timeout and says so; the
		// attempt's own deadline comes MiscGrace later.
		p.Timeout = timeout + MiscGrace
		return Misc{Runner: o.Runner, Name: miscName, Path: commandLine(c.GetMiscPath()), Timeout: timeout, Dynamic: c.GetMiscDynamic(), Last: &MiscLast{}}, p, nil
	case pb.LvsCheckerType_LVS_CHECKER_BFD:
		return nil, p, fmt.Errorf("BFD_CHECK: %w", ErrUnsupported)
	}
	return nil, p, fmt.Errorf("checker type %v: %w", c.GetType(), ErrUnsupported)
}

func connOf(c *pb.LvsChecker) (Conn, error) {
	var conn Conn
	conn.Timeout = max(c.GetConnectTimeout().AsDuration(), 0)
	conn.BindIf = c.GetBindIf()
	if c.GetBindPort() > 65535 || c.GetConnectPort() > 65535 {
		return conn, fmt.Errorf("port out of range (connect_port %d, bind_port %d)", c.GetConnectPort(), c.GetBindPort())
	}
	conn.BindPort = uint16(c.GetBindPort())
	if s := c.GetBindto(); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return conn, fmt.Errorf("bindto: %w", err)
		}
		conn.BindTo = a
	}
	switch c.GetType() {
	case pb.LvsCheckerType_LVS_CHECKER_FILE, pb.LvsCheckerType_LVS_CHECKER_MISC, pb.LvsCheckerType_LVS_CHECKER_BFD:
		return conn, nil // no target
	}
	if conn.Timeout <= 0 {
		// The configuration never gives 0 (keepalived's default is 5 s),
		// but an attempt without a bound would hang on a server that
		// accepts and never answers.
		return conn, fmt.Errorf("connect_timeout %v: want > 0", conn.Timeout)
	}
	a, err := netip.ParseAddr(c.GetConnectIp())
	if err != nil {
		return conn, fmt.Errorf("connect_ip: %w", err)
	}
	conn.Target = netip.AddrPortFrom(a, uint16(c.GetConnectPort()))
	return conn, nil
}
