package config

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ipvsWeightLimit is the largest real server weight keepalived accepts.
const ipvsWeightLimit = 65535

// checkDefaultsHandlers are the timing keywords shared by virtual_server,
// real_server and checkers.
func checkDefaultsHandlers[T any](get func(T) *CheckDefaults) table[T] {
	return table[T]{
		"delay_loop": func(dc *decoder, n *Node, t T) {
			if d, ok := dc.duration(n, time.Microsecond, maxTimer); ok {
				get(t).DelayLoop = &d
			}
		},
		"retry": func(dc *decoder, n *Node, t T) { get(t).Retry = dc.uint32Ptr(n, 0, maxUint32) },
		"delay_before_retry": func(dc *decoder, n *Node, t T) {
			if d, ok := dc.duration(n, 0, maxTimer); ok {
				get(t).DelayBeforeRetry = &d
			}
		},
		"warmup": func(dc *decoder, n *Node, t T) {
			if d, ok := dc.duration(n, 0, maxTimer); ok {
				get(t).Warmup = &d
			}
		},
		"connect_timeout": func(dc *decoder, n *Node, t T) {
			if d, ok := dc.duration(n, time.Microsecond, maxTimer); ok {
				get(t).ConnectTimeout = &d
			}
		},
	}
}

func merge[T any](dst table[T], srcs ...table[T]) table[T] {
	for _, src := range srcs {
		for k, h := range src {
			dst[k] = h
		}
	}
	return dst
}

var lbAlgos = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true, "dh": true, "sh": true,
	"sed": true, "nq": true, "fo": true, "ovf": true, "mh": true, "twos": true,
}

// lbMethod reads lb_kind / lvs_method / sorry_server_lvs_method: NAT, DR or
// TUN, and for TUN the tunnel options that follow it (check_parser.c
// svr_forwarding_handler): `type ipip|gue|gre`, `port N` (gue only, and
// required there), `nocsum|csum|remcsum` (not for ipip; remcsum not for
// gre). The tunnel is nil unless the method is TUN.
func lbMethod(dc *decoder, n *Node) (string, *Tunnel) {
	s, _ := dc.arg(n, 1)
	switch s {
	case "NAT", "DR", "TUN":
	case "":
		return "", nil
	default:
		dc.d.errorf(n.Pos, "%s: %q is not NAT, DR or TUN", n.Keyword(), s)
		return "", nil
	}
	t := Tunnel{Type: "ipip", Checksum: "nocsum"}
	w := n.Words
	for i := 2; i < len(w); i++ {
		switch w[i] {
		case "type":
			if i+1 == len(w) {
				dc.d.errorf(n.Pos, "%s: type: missing tunnel type (ipip, gue or gre)", n.Keyword())
				return s, nil
			}
			i++
			switch w[i] {
			case "ipip", "gue", "gre":
				t.Type = w[i]
			default:
				dc.d.errorf(n.Pos, "%s: unknown tunnel type %q (want ipip, gue or gre)", n.Keyword(), w[i])
				return s, nil
			}
		case "port":
			v, ok := dc.uintAt(n, i+1, 1, 65535)
			if !ok {
				return s, nil
			}
			i++
			t.Port = uint16(v)
		case "nocsum", "csum", "remcsum":
			t.Checksum = w[i]
		default:
			dc.d.errorf(n.Pos, "%s: invalid tunnel option %q (want type, port, nocsum, csum or remcsum)", n.Keyword(), w[i])
			return s, nil
		}
	}
	switch {
	case (t.Type == "gue") != (t.Port != 0):
		dc.d.errorf(n.Pos, "%s: a gue tunnel needs a port, and only a gue tunnel can have one", n.Keyword())
		return s, nil
	case t.Type == "ipip" && t.Checksum != "nocsum":
		dc.d.errorf(n.Pos, "%s: ipip tunnels have no checksum option", n.Keyword())
		return s, nil
	case t.Type == "gre" && t.Checksum == "remcsum":
		dc.d.errorf(n.Pos, "%s: gre tunnels have no remote checksum option", n.Keyword())
		return s, nil
	}
	if s != "TUN" {
		// keepalived accepts and keeps tunnel options after NAT or DR; they
		// do nothing there.
		if len(w) > 2 {
			dc.d.warnf(n.Pos, "%s: tunnel options are ignored for %s", n.Keyword(), s)
		}
		return s, nil
	}
	return s, &t
}

var virtualServerTable = merge(table[*VirtualServer]{
	"ip_family": func(dc *decoder, n *Node, vs *VirtualServer) {
		s := dc.str(n)
		if s != "inet" && s != "inet6" {
			dc.d.errorf(n.Pos, "ip_family: %q is not inet or inet6", s)
			return
		}
		vs.IPFamily = s
	},
	"inhibit_on_failure": func(dc *decoder, n *Node, vs *VirtualServer) { vs.InhibitOnFailure = dc.boolean(n) },
	"lb_algo":            lbAlgo,
	"lvs_sched":          lbAlgo,
	"hashed":             func(dc *decoder, n *Node, vs *VirtualServer) { vs.Hashed = true; dc.maxArgs(n, 0) },
	"ops":                func(dc *decoder, n *Node, vs *VirtualServer) { vs.OPS = true; dc.maxArgs(n, 0) },
	"flag-1":             func(dc *decoder, n *Node, vs *VirtualServer) { vs.Flag1 = true; dc.maxArgs(n, 0) },
	"flag-2":             func(dc *decoder, n *Node, vs *VirtualServer) { vs.Flag2 = true; dc.maxArgs(n, 0) },
	"flag-3":             func(dc *decoder, n *Node, vs *VirtualServer) { vs.Flag3 = true; dc.maxArgs(n, 0) },
	"sh-fallback":        func(dc *decoder, n *Node, vs *VirtualServer) { vs.SHFallback = true; dc.maxArgs(n, 0) },
	"sh-port":            func(dc *decoder, n *Node, vs *VirtualServer) { vs.SHPort = true; dc.maxArgs(n, 0) },
	"mh-fallback":        func(dc *decoder, n *Node, vs *VirtualServer) { vs.MHFallback = true; dc.maxArgs(n, 0) },
	"mh-port":            func(dc *decoder, n *Node, vs *VirtualServer) { vs.MHPort = true; dc.maxArgs(n, 0) },
	"lb_kind":            func(dc *decoder, n *Node, vs *VirtualServer) { vs.LBKind, vs.Tunnel = lbMethod(dc, n) },
	"lvs_method":         func(dc *decoder, n *Node, vs *VirtualServer) { vs.LBKind, vs.Tunnel = lbMethod(dc, n) },
	"persistence_engine": func(dc *decoder, n *Node, vs *VirtualServer) {
		vs.PersistenceEngine = dc.str(n)
		// cloudflare/ipvs v0.12.0 has no IPVS_SVC_ATTR_PE_NAME: the service
		// is programmed without the engine, which IPVS then does not use.
		dc.d.warnf(n.Pos, "persistence_engine %s is not acted on by vrrpkit: its IPVS library cannot set a persistence engine, so persistence is by source address only", vs.PersistenceEngine)
	},
	"persistence_timeout": func(dc *decoder, n *Node, vs *VirtualServer) {
		v := uint64(360) // keepalived's default when the value is omitted
		if len(n.Words) > 1 {
			var ok bool
			if v, ok = dc.uint(n, 1, 86400*31); !ok {
				return
			}
		}
		vs.PersistenceTimeout = Duration(time.Duration(v) * time.Second)
	},
	"persistence_granularity": func(dc *decoder, n *Node, vs *VirtualServer) {
		s := dc.str(n)
		if v, err := strconv.ParseUint(s, 10, 8); err == nil && v >= 1 && v <= 128 {
			vs.PersistenceGranularity = s
			return
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			vs.PersistenceGranularity = s
			return
		}
		dc.d.errorf(n.Pos, "persistence_granularity: %q is neither a netmask nor a prefix length in [1, 128]", s)
	},
	"protocol": func(dc *decoder, n *Node, vs *VirtualServer) {
		s := strings.ToUpper(dc.str(n))
		switch s {
		case "TCP", "UDP", "SCTP":
			vs.Protocol = s
		default:
			if s != "" {
				dc.d.errorf(n.Pos, "protocol: %q is not TCP, UDP or SCTP", s)
			}
		}
	},
	"ha_suspend":  func(dc *decoder, n *Node, vs *VirtualServer) { vs.HASuspend = dc.boolean(n) },
	"smtp_alert":  func(dc *decoder, n *Node, vs *VirtualServer) { vs.SMTPAlert = dc.boolPtr(n) },
	"virtualhost": func(dc *decoder, n *Node, vs *VirtualServer) { vs.Virtualhost = dc.str(n) },
	"alpha":       func(dc *decoder, n *Node, vs *VirtualServer) { vs.Alpha = dc.boolean(n) },
	"omega":       func(dc *decoder, n *Node, vs *VirtualServer) { vs.Omega = dc.boolean(n) },
	"quorum": func(dc *decoder, n *Node, vs *VirtualServer) {
		if v, ok := dc.uint(n, 1, maxUint32); ok {
			vs.Quorum = uint32(v)
		}
	},
	"quorum_up":   func(dc *decoder, n *Node, vs *VirtualServer) { vs.QuorumUp = dc.script(n) },
	"quorum_down": func(dc *decoder, n *Node, vs *VirtualServer) { vs.QuorumDown = dc.script(n) },
	"hysteresis": func(dc *decoder, n *Node, vs *VirtualServer) {
		if v, ok := dc.uint(n, 0, maxUint32); ok {
			vs.Hysteresis = uint32(v)
		}
	},
	"weight": func(dc *decoder, n *Node, vs *VirtualServer) {
		if v, ok := dc.uint(n, 1, ipvsWeightLimit); ok {
			w := int32(v)
			vs.Weight = &w
		}
	},
	"sorry_server": func(dc *decoder, n *Node, vs *VirtualServer) {
		a, ok := dc.addrAt(n, 1)
		if !ok {
			return
		}
		s := &SorryServer{IP: a}
		if len(n.Words) > 2 {
			if p, ok := dc.uintAt(n, 2, 0, 65535); ok {
				s.Port = uint16(p)
			}
		}
		dc.maxArgs(n, 2)
		if vs.SorryServer != nil {
			s.LVSMethod, s.Tunnel = vs.SorryServer.LVSMethod, vs.SorryServer.Tunnel
		}
		vs.SorryServer = s
	},
	"sorry_server_inhibit": func(dc *decoder, n *Node, vs *VirtualServer) { vs.SorryServerInhibit = dc.boolean(n) },
	"sorry_server_lvs_method": func(dc *decoder, n *Node, vs *VirtualServer) {
		if vs.SorryServer == nil {
			vs.SorryServer = &SorryServer{}
		}
		vs.SorryServer.LVSMethod, vs.SorryServer.Tunnel = lbMethod(dc, n)
	},
	"real_server": func(dc *decoder, n *Node, vs *VirtualServer) {
		if rs := dc.realServer(n); rs != nil {
			vs.RealServers = append(vs.RealServers, rs)
		}
	},
}, checkDefaultsHandlers(func(vs *VirtualServer) *CheckDefaults { return &vs.CheckDefaults }))

func lbAlgo(dc *decoder, n *Node, vs *VirtualServer) {
	s := dc.str(n)
	if !lbAlgos[s] {
		dc.d.errorf(n.Pos, "%s: unknown scheduler %q", n.Keyword(), s)
		return
	}
	vs.LBAlgo = s
}

// realServerTable is built in init: its checker handlers refer back to the
// checker tables, which would otherwise be an initialisation cycle.
var realServerTable table[*RealServer]

func init() {
	realServerTable = merge(table[*RealServer]{
		"weight": func(dc *decoder, n *Node, rs *RealServer) {
			if v, ok := dc.uint(n, 0, ipvsWeightLimit); ok {
				rs.Weight = int32(v)
			}
		},
		"lvs_method": func(dc *decoder, n *Node, rs *RealServer) { rs.LVSMethod, rs.Tunnel = lbMethod(dc, n) },
		"uthreshold": func(dc *decoder, n *Node, rs *RealServer) {
			if v, ok := dc.uint(n, 0, maxUint32); ok {
				rs.UThreshold = uint32(v)
			}
		},
		"lthreshold": func(dc *decoder, n *Node, rs *RealServer) {
			if v, ok := dc.uint(n, 0, maxUint32); ok {
				rs.LThreshold = uint32(v)
			}
		},
		"inhibit_on_failure": func(dc *decoder, n *Node, rs *RealServer) { rs.InhibitOnFailure = dc.boolPtr(n) },
		"notify_up":          func(dc *decoder, n *Node, rs *RealServer) { rs.NotifyUp = dc.script(n) },
		"notify_down":        func(dc *decoder, n *Node, rs *RealServer) { rs.NotifyDown = dc.script(n) },
		"alpha":              func(dc *decoder, n *Node, rs *RealServer) { rs.Alpha = dc.boolPtr(n) },
		"smtp_alert":         func(dc *decoder, n *Node, rs *RealServer) { rs.SMTPAlert = dc.boolPtr(n) },
		"virtualhost":        func(dc *decoder, n *Node, rs *RealServer) { rs.Virtualhost = dc.str(n) },
		"snmp_name": func(dc *decoder, n *Node, rs *RealServer) {
			rs.Ignored = append(rs.Ignored, Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
		},
	}, checkDefaultsHandlers(func(rs *RealServer) *CheckDefaults { return &rs.CheckDefaults }))
	for _, kind := range []string{"TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "UDP_CHECK", "PING_CHECK", "ICMP_CHECK", "FILE_CHECK", "BFD_CHECK"} {
		realServerTable[kind] = func(dc *decoder, n *Node, rs *RealServer) {
			if c := dc.checker(n); c != nil {
				rs.Checkers = append(rs.Checkers, c)
			}
		}
	}
	virtualServerTable["snmp_name"] = ignoredIn(func(vs *VirtualServer) *[]Ignored { return &vs.Ignored }, "SNMP is not supported")
}

func (dc *decoder) realServer(n *Node) *RealServer {
	if !dc.needBlock(n) {
		return nil
	}
	rs := &RealServer{Block: Block{Pos: n.Pos}, Weight: 1}
	a, ok := dc.addrAt(n, 1)
	if !ok {
		return nil
	}
	rs.IP = a
	if len(n.Words) > 2 {
		p, ok := dc.uintAt(n, 2, 0, 65535)
		if !ok {
			return nil
		}
		rs.Port = uint16(p)
	}
	dc.maxArgs(n, 2)
	decodeBlock(dc, n, "real_server", realServerTable, rs, &rs.Block)
	return rs
}

// checkerCommon are the connection keywords every checker accepts
// (keepalived's install_checker_common_keywords).
var checkerCommon = merge(table[*Checker]{
	"connect_ip": func(dc *decoder, n *Node, c *Checker) { c.ConnectIP, _ = dc.addrAt(n, 1); dc.maxArgs(n, 1) },
	"connect_port": func(dc *decoder, n *Node, c *Checker) {
		if v, ok := dc.uint(n, 1, 65535); ok {
			c.ConnectPort = uint16(v)
		}
	},
	"bindto": func(dc *decoder, n *Node, c *Checker) { c.BindTo, _ = dc.addrAt(n, 1); dc.maxArgs(n, 1) },
	"bind_port": func(dc *decoder, n *Node, c *Checker) {
		if v, ok := dc.uint(n, 1, 65535); ok {
			c.BindPort = uint16(v)
		}
	},
	"bind_if": func(dc *decoder, n *Node, c *Checker) {
		c.BindIf = dc.str(n)
		dc.checkInterface(n.Pos, c.BindIf, "bind_if")
	},
	"fwmark": func(dc *decoder, n *Node, c *Checker) {
		if v, ok := dc.uint(n, 0, maxUint32); ok {
			c.Fwmark = uint32(v)
		}
	},
	"alpha":            func(dc *decoder, n *Node, c *Checker) { c.Alpha = dc.boolPtr(n) },
	"log_all_failures": func(dc *decoder, n *Node, c *Checker) { c.LogAllFailures = dc.boolPtr(n) },
}, checkDefaultsHandlers(func(c *Checker) *CheckDefaults { return &c.CheckDefaults }))

var retryDeprecated = deprecated("retry", checkerCommon["retry"])

var checkerTables = map[string]table[*Checker]{
	"TCP_CHECK":  merge(table[*Checker]{}, checkerCommon),
	"PING_CHECK": merge(table[*Checker]{}, checkerCommon),
	"HTTP_GET": merge(table[*Checker]{
		"url":           checkerURL,
		"nb_get_retry":  retryDeprecated,
		"http_protocol": httpProtocol,
		"virtualhost":   func(dc *decoder, n *Node, c *Checker) { c.Virtualhost = dc.str(n) },
		"enable_sni":    func(dc *decoder, n *Node, c *Checker) { c.EnableSNI = dc.boolean(n) },
		"fast_recovery": func(dc *decoder, n *Node, c *Checker) { c.FastRecovery = dc.boolean(n) },
	}, checkerCommon),
	"SMTP_CHECK": merge(table[*Checker]{
		"helo_name": func(dc *decoder, n *Node, c *Checker) { c.HeloName = dc.str(n) },
		"host": func(dc *decoder, n *Node, c *Checker) {
			if !dc.needBlock(n) {
				return
			}
			h := &Checker{Block: Block{Pos: n.Pos}, Type: "host"}
			decodeBlock(dc, n, "SMTP_CHECK host", checkerCommon, h, &h.Block)
			c.Hosts = append(c.Hosts, h)
		},
		// keepalived 1.x spellings.
		"connect_ip_address": deprecated("connect_ip", checkerCommon["connect_ip"]),
		"nb_get_retry":       retryDeprecated,
	}, checkerCommon),
	"DNS_CHECK": merge(table[*Checker]{
		"type": func(dc *decoder, n *Node, c *Checker) {
			s := strings.ToUpper(dc.str(n))
			switch s {
			case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA":
				c.DNSType = s
			default:
				if s != "" {
					dc.d.errorf(n.Pos, "type: unknown DNS query type %q", s)
				}
			}
		},
		"name": func(dc *decoder, n *Node, c *Checker) { c.DNSName = dc.str(n) },
	}, checkerCommon),
	"MISC_CHECK": merge(table[*Checker]{
		"misc_path": func(dc *decoder, n *Node, c *Checker) { c.MiscPath = dc.script(n) },
		"misc_timeout": func(dc *decoder, n *Node, c *Checker) {
			if v, ok := dc.uint(n, 0, maxTimerSeconds); ok {
				c.MiscTimeout = Duration(time.Duration(v) * time.Second)
			}
		},
		"misc_dynamic": func(dc *decoder, n *Node, c *Checker) { c.MiscDynamic = dc.boolean(n) },
		"user": func(dc *decoder, n *Node, c *Checker) {
			c.User, _ = dc.arg(n, 1)
			if len(n.Words) > 2 {
				c.Group = n.Words[2]
			}
			dc.maxArgs(n, 2)
			dc.checkUser(n.Pos, c.User)
		},
	}, checkerCommon),
	"UDP_CHECK": merge(table[*Checker]{
		"payload":       func(dc *decoder, n *Node, c *Checker) { c.Payload = dc.hexString(n) },
		"require_reply": func(dc *decoder, n *Node, c *Checker) { c.RequireReply = dc.hexString(n) },
		"min_reply_length": func(dc *decoder, n *Node, c *Checker) {
			if v, ok := dc.uint(n, 0, 65535); ok {
				c.MinReplyLength = uint32(v)
			}
		},
		"max_reply_length": func(dc *decoder, n *Node, c *Checker) {
			if v, ok := dc.uint(n, 0, 65535); ok {
				c.MaxReplyLength = uint32(v)
			}
		},
	}, checkerCommon),
	"FILE_CHECK": {
		"track_file": func(dc *decoder, n *Node, c *Checker) { c.TrackFile = dc.str(n) },
		"weight": func(dc *decoder, n *Node, c *Checker) {
			w, r := dc.weight(n, 254)
			c.Weight, c.Reverse = &w, r
		},
	},
	"BFD_CHECK": {
		"name":  func(dc *decoder, n *Node, c *Checker) { c.BFDName = dc.str(n) },
		"alpha": func(dc *decoder, n *Node, c *Checker) { c.Alpha = dc.boolPtr(n) },
	},
}

func init() {
	checkerTables["SSL_GET"] = checkerTables["HTTP_GET"]
	checkerTables["ICMP_CHECK"] = checkerTables["PING_CHECK"]
}

func (dc *decoder) checker(n *Node) *Checker {
	kind := n.Keyword()
	c := &Checker{Block: Block{Pos: n.Pos}, Type: kind}
	if !n.HasBlock {
		// keepalived accepts "PING_CHECK" alone, with every default.
		if len(n.Words) > 1 {
			dc.d.warnf(n.Pos, "%s: extra words ignored: %s", kind, strings.Join(n.Args(), " "))
		}
		return c
	}
	switch kind {
	case "BFD_CHECK":
		dc.d.warnf(n.Pos, "BFD_CHECK is accepted but not acted on by vrrpkit (BFD is not supported)")
	case "ICMP_CHECK":
		dc.d.warnf(n.Pos, "%q is deprecated; use %q", kind, "PING_CHECK")
		c.Type = "PING_CHECK"
	}
	decodeBlock(dc, n, kind, checkerTables[kind], c, &c.Block)
	return c
}

func httpProtocol(dc *decoder, n *Node, c *Checker) {
	s := dc.str(n)
	switch s {
	case "1.0", "1.1", "1.0C", "1.0c":
		c.HTTPProtocol = s
	default:
		dc.d.errorf(n.Pos, "http_protocol: %q is not 1.0, 1.0C or 1.1", s)
	}
}

// hexString checks keepalived's hex payloads (pairs of hex digits, with
// optional separators).
func (dc *decoder) hexString(n *Node) string {
	s := strings.Join(n.Args(), "")
	for _, r := range s {
		if !(isHex(byte(r)) || r == 'x' || r == 'X' || r == ':' || r == '.' || r == '-') {
			dc.d.errorf(n.Pos, "%s: %q is not a hex string", n.Keyword(), s)
			return ""
		}
	}
	return s
}

var urlTable = table[*URL]{
	"path": func(dc *decoder, n *Node, u *URL) { u.Path = dc.str(n) },
	"digest": func(dc *decoder, n *Node, u *URL) {
		s := dc.str(n)
		if len(s) != 32 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
			dc.d.errorf(n.Pos, "digest: %q is not an MD5 digest (32 hex digits)", s)
			return
		}
		u.Digest = strings.ToLower(s)
	},
	"status_code": func(dc *decoder, n *Node, u *URL) {
		for _, w := range n.Args() {
			lo, hi, isRange := strings.Cut(w, "-")
			a, err1 := strconv.ParseUint(lo, 10, 16)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.ParseUint(hi, 10, 16)
			}
			if err1 != nil || err2 != nil || a < 100 || b > 999 || a > b {
				dc.d.errorf(n.Pos, "status_code: %q is not an HTTP status code or range in [100, 999]", w)
				continue
			}
			u.StatusCode = append(u.StatusCode, w)
		}
		if len(n.Words) < 2 {
			dc.d.errorf(n.Pos, "status_code: missing value")
		}
	},
	"virtualhost": func(dc *decoder, n *Node, u *URL) { u.Virtualhost = dc.str(n) },
	"regex": func(dc *decoder, n *Node, u *URL) {
		words, err := quotedWords(n.Text)
		if err != nil || len(words) != 2 {
			dc.d.errorf(n.Pos, "regex: want exactly one (quoted) pattern")
			return
		}
		// keepalived logs "Invalid regex" when pcre2_compile fails and checks
		// the url without it (check_http.c); vrrpkit matches with Go's RE2,
		// which also lacks PCRE's lookaround and backreferences, so say so
		// where the user can see it: at -t and in the log at load.
		if _, err := regexp.Compile(words[1]); err != nil {
			dc.d.warnf(n.Pos, "regex %q does not compile as RE2 syntax, which vrrpkit uses (%v): the url is checked without it", words[1], err)
			return
		}
		u.Regex = words[1]
	},
	"regex_no_match": func(dc *decoder, n *Node, u *URL) { u.RegexNoMatch = true; dc.maxArgs(n, 0) },
	"regex_options":  func(dc *decoder, n *Node, u *URL) { u.RegexOptions = n.Args() },
	"regex_min_offset": func(dc *decoder, n *Node, u *URL) {
		if v, ok := dc.uint(n, 0, maxUint32); ok {
			u.RegexMinOffset = uint32(v)
		}
	},
	"regex_max_offset": func(dc *decoder, n *Node, u *URL) {
		if v, ok := dc.uint(n, 0, maxUint32); ok {
			u.RegexMaxOffset = uint32(v)
		}
	},
	"regex_stack": func(dc *decoder, n *Node, u *URL) {
		if v, ok := dc.uint(n, 0, maxUint32); ok {
			u.RegexStack = uint32(v)
		}
	},
}

func checkerURL(dc *decoder, n *Node, c *Checker) {
	if !dc.needBlock(n) {
		return
	}
	u := &URL{Block: Block{Pos: n.Pos}}
	decodeBlock(dc, n, "url", urlTable, u, &u.Block)
	if u.Path == "" {
		dc.d.errorf(n.Pos, "url: missing path")
		return
	}
	c.URLs = append(c.URLs, u)
}

// virtualServer decodes "virtual_server IP PORT", "virtual_server fwmark N"
// or "virtual_server group NAME".
func (dc *decoder) virtualServer(n *Node) *VirtualServer {
	if !dc.needBlock(n) {
		return nil
	}
	vs := &VirtualServer{Block: Block{Pos: n.Pos}, Protocol: "TCP", LBAlgo: "wlc", LBKind: "NAT"}
	if len(n.Words) < 2 {
		dc.d.errorf(n.Pos, "virtual_server: missing address (want IP PORT, fwmark N or group NAME)")
		return nil
	}
	switch n.Words[1] {
	case "fwmark":
		v, ok := dc.uintAt(n, 2, 1, maxUint32)
		if !ok {
			return nil
		}
		vs.Fwmark = uint32(v)
		dc.maxArgs(n, 2)
	case "group":
		s, ok := dc.arg(n, 2)
		if !ok {
			return nil
		}
		vs.Group = s
		dc.maxArgs(n, 2)
	default:
		a, ok := dc.addrAt(n, 1)
		if !ok {
			return nil
		}
		vs.IP = a
		if len(n.Words) > 2 {
			p, ok := dc.uintAt(n, 2, 0, 65535)
			if !ok {
				return nil
			}
			vs.Port = uint16(p)
		}
		dc.maxArgs(n, 2)
	}
	decodeBlock(dc, n, "virtual_server", virtualServerTable, vs, &vs.Block)
	return vs
}

// virtualServerGroup decodes the entries of a virtual_server_group:
// "IP PORT", "IP-LAST PORT" (an address range) and "fwmark N".
func (dc *decoder) virtualServerGroup(n *Node) *VirtualServerGroup {
	name, ok := dc.blockName(n)
	if !ok {
		return nil
	}
	g := &VirtualServerGroup{Block: Block{Pos: n.Pos}, Name: name}
	for _, c := range dc.lines(n) {
		w := c.Words
		if w[0] == "fwmark" {
			if len(w) < 2 {
				dc.d.errorf(c.Pos, "virtual_server_group %s: fwmark needs a value", name)
				continue
			}
			v, err := strconv.ParseUint(w[1], 10, 32)
			if err != nil || v == 0 {
				dc.d.errorf(c.Pos, "virtual_server_group %s: fwmark %q is not a number in [1, %d]", name, w[1], uint32(maxUint32))
				continue
			}
			e := VSGroupEntry{Fwmark: uint32(v), Pos: c.Pos}
			if len(w) > 2 {
				if w[2] != "inet" && w[2] != "inet6" {
					dc.d.errorf(c.Pos, "virtual_server_group %s: fwmark family %q is not inet or inet6", name, w[2])
					continue
				}
				e.Family = w[2]
			}
			g.Entries = append(g.Entries, e)
			continue
		}
		e := VSGroupEntry{Pos: c.Pos}
		addr, last, isRange := cutRange(w[0])
		a, err := netip.ParseAddr(addr)
		if err != nil {
			dc.d.errorf(c.Pos, "virtual_server_group %s: %q is not an address or range", name, w[0])
			continue
		}
		e.IP = a.Unmap()
		if isRange {
			end, ok := rangeEnd(e.IP, last)
			if !ok {
				dc.d.errorf(c.Pos, "virtual_server_group %s: bad range end %q in %q", name, last, w[0])
				continue
			}
			e.RangeEnd = end
		}
		if len(w) > 1 {
			p, err := strconv.ParseUint(w[1], 10, 16)
			if err != nil {
				dc.d.errorf(c.Pos, "virtual_server_group %s: port %q is not in [0, 65535]", name, w[1])
				continue
			}
			e.Port = uint16(p)
		}
		if len(w) > 2 {
			dc.d.warnf(c.Pos, "virtual_server_group %s: extra words ignored: %s", name, strings.Join(w[2:], " "))
		}
		g.Entries = append(g.Entries, e)
	}
	return g
}

// cutRange splits "10.0.0.1-20" or "2001:db8::1-ff" at the range dash.
func cutRange(s string) (addr, last string, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// rangeEnd turns the last-part of a range into the range's final address:
// the last octet for IPv4, the last 16-bit group (hex) for IPv6.
func rangeEnd(start netip.Addr, last string) (netip.Addr, bool) {
	if start.Is4() {
		v, err := strconv.ParseUint(last, 10, 8)
		b := start.As4()
		if err != nil || byte(v) < b[3] {
			return netip.Addr{}, false
		}
		b[3] = byte(v)
		return netip.AddrFrom4(b), true
	}
	v, err := strconv.ParseUint(last, 16, 16)
	b := start.As16()
	cur := uint64(b[14])<<8 | uint64(b[15])
	if err != nil || v < cur {
		return netip.Addr{}, false
	}
	b[14], b[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(b), true
}

// SSL is the top-level SSL block: the client certificate SSL_GET uses.
type SSL struct {
	Block
	Password    string `json:"password,omitempty"`
	CA          string `json:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
}

var sslTable = table[*SSL]{
	"password":    func(dc *decoder, n *Node, s *SSL) { s.Password = dc.str(n) },
	"ca":          func(dc *decoder, n *Node, s *SSL) { s.CA = dc.str(n) },
	"certificate": func(dc *decoder, n *Node, s *SSL) { s.Certificate = dc.str(n) },
	"key":         func(dc *decoder, n *Node, s *SSL) { s.Key = dc.str(n) },
}
