package snapshot

import (
	"net/netip"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/check"
	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// IPVS service flags (linux/ip_vs.h IP_VS_SVC_F_*).
const (
	svcOnePacket = 0x0004
	svcSched1    = 0x0008 // also sh-fallback / mh-fallback
	svcSched2    = 0x0010 // also sh-port / mh-port
	svcSched3    = 0x0020
)

// persistentTimeout is keepalived's IPVS_SVC_PERSISTENT_TIMEOUT
// (include/libipvs.h: 6*60 seconds).
const persistentTimeout = 360 * time.Second

// defaultScheduler is keepalived's IPVS_DEF_SCHED (include/ipvswrapper.h).
const defaultScheduler = "wlc"

// virtualServers fills the snapshot's virtual_servers with effective values,
// following keepalived 2.2.7's check/check_data.c validate_check_config and
// check/check_parser.c.
func virtualServers(cfg *config.Config, s *pb.ConfigSnapshot) {
	groups := map[string]*config.VirtualServerGroup{}
	for _, g := range cfg.VirtualServerGroups {
		groups[g.Name] = g
	}
	files := map[string]*config.TrackFileDef{}
	for _, f := range cfg.VRRPTrackFiles {
		files[f.Name] = f
	}
	names := map[string]int{}
	for _, vs := range cfg.VirtualServers {
		out := virtualServerOf(vs, groups, files)
		if out == nil {
			continue
		}
		// Two blocks for the same service would share health ids; keep the
		// names (and so the ids) distinct.
		if n := names[out.Name]; n > 0 {
			out.Name += "#" + strconv.Itoa(n+1)
		}
		names[out.Name]++
		for _, rs := range out.RealServers {
			rs.HealthId = out.Name + " " + hostPort(rs.Address, rs.Port)
		}
		s.VirtualServers = append(s.VirtualServers, out)
	}
}

func hostPort(addr string, port uint32) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr + ":" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "inet"
	}
	return "inet6"
}

func methodOf(s string) pb.LvsMethod {
	switch s {
	case "DR":
		return pb.LvsMethod_LVS_METHOD_DR
	case "TUN":
		return pb.LvsMethod_LVS_METHOD_TUN
	}
	return pb.LvsMethod_LVS_METHOD_NAT
}

func protocolOf(s string) pb.LvsProtocol {
	switch s {
	case "TCP":
		return pb.LvsProtocol_LVS_PROTOCOL_TCP
	case "SCTP":
		return pb.LvsProtocol_LVS_PROTOCOL_SCTP
	}
	return pb.LvsProtocol_LVS_PROTOCOL_UDP
}

// before reports whether keyword a was set in the block on an earlier line
// than keyword b (both set).
func before(b *config.Block, a, c string) bool {
	pa, pc := b.Keys[a], b.Keys[c]
	return pa.File == pc.File && pa.Line < pc.Line
}

func virtualServerOf(vs *config.VirtualServer, groups map[string]*config.VirtualServerGroup, files map[string]*config.TrackFileDef) *pb.VirtualServer {
	// A virtual server without real servers is dropped (validate_check_config:
	// "has no real servers - ignoring").
	if len(vs.RealServers) == 0 {
		return nil
	}
	out := &pb.VirtualServer{
		DefinedAt:         vs.Pos.String(),
		Scheduler:         vs.LBAlgo,
		PersistenceEngine: vs.PersistenceEngine,
		HaSuspend:         vs.HASuspend,
		Alpha:             vs.Alpha,
		Omega:             vs.Omega,
	}
	if out.Scheduler == "" {
		out.Scheduler = defaultScheduler
	}
	// The address family: the virtual address's, else ip_family, else that of
	// the first non-tunnelled real or sorry server, else inet
	// (check_parser.c vs_end_handler / rs_end_handler).
	family := ""
	switch {
	case vs.IP.IsValid():
		family = familyOf(vs.IP)
	case vs.IPFamily != "":
		family = vs.IPFamily
	}
	vsMethod := vs.LBKind
	if family == "" {
		if ss := vs.SorryServer; ss != nil && ss.IP.IsValid() && effMethod(ss.LVSMethod, vsMethod) != "TUN" {
			family = familyOf(ss.IP)
		}
		for _, rs := range vs.RealServers {
			if family == "" && effMethod(rs.LVSMethod, vsMethod) != "TUN" {
				family = familyOf(rs.IP)
			}
		}
	}

	// Which services, and whether any is by address (protocol matters) or has
	// port 0 (only valid when persistent).
	byAddress, zeroPort := false, false
	protocol := protocolOf(vs.Protocol)
	if !vs.Has("protocol") {
		// validate_check_config: "no protocol set - defaulting to UDP" (the
		// kernel's own default for protocol 0).
		protocol = pb.LvsProtocol_LVS_PROTOCOL_UDP
	}
	switch {
	case vs.Group != "":
		g := groups[vs.Group]
		out.Name = "group " + vs.Group
		if g == nil {
			return nil // validation reports the unknown group
		}
		for _, e := range g.Entries {
			if e.Fwmark != 0 {
				f := e.Family
				if f == "" {
					f = family
				}
				if f == "" {
					f = "inet" // ipvs_group_cmd: "default to IPv4"
				}
				out.Services = append(out.Services, &pb.LvsService{Family: f, Fwmark: e.Fwmark})
				continue
			}
			byAddress = true
			zeroPort = zeroPort || e.Port == 0
			end := e.RangeEnd
			if !end.IsValid() {
				end = e.IP
			}
			// ipvs_group_range_cmd: one service per address of the range.
			for a := e.IP; a.IsValid() && a.Compare(end) <= 0; a = a.Next() {
				out.Services = append(out.Services, &pb.LvsService{Family: familyOf(a), Address: a.String(), Port: uint32(e.Port), Protocol: protocol})
			}
		}
		if byAddress {
			out.Name += "/" + protocol.String()[len("LVS_PROTOCOL_"):]
		}
	case vs.Fwmark != 0:
		if family == "" {
			family = "inet"
		}
		out.Name = "fwmark " + strconv.FormatUint(uint64(vs.Fwmark), 10)
		if family == "inet6" {
			out.Name += "/inet6"
		}
		out.Services = []*pb.LvsService{{Family: family, Fwmark: vs.Fwmark}}
	default:
		byAddress, zeroPort = true, vs.Port == 0
		out.Name = netip.AddrPortFrom(vs.IP, vs.Port).String() + "/" + protocol.String()[len("LVS_PROTOCOL_"):]
		out.Services = []*pb.LvsService{{Family: family, Address: vs.IP.String(), Port: uint32(vs.Port), Protocol: protocol}}
	}

	// Flags (check_parser.c lbflags_handler). sh-/mh- options count only when
	// the scheduler was already sh / mh on their line; "hashed" sets nothing
	// in 2.2.7.
	var flags uint32
	if vs.OPS && !(byAddress && protocol != pb.LvsProtocol_LVS_PROTOCOL_UDP) {
		// "one packet scheduling requires UDP - resetting" (address services).
		flags |= svcOnePacket
	}
	for _, f := range []struct {
		on   bool
		kw   string
		bit  uint32
		algo string
	}{
		{vs.Flag1, "flag-1", svcSched1, ""}, {vs.Flag2, "flag-2", svcSched2, ""}, {vs.Flag3, "flag-3", svcSched3, ""},
		{vs.SHFallback, "sh-fallback", svcSched1, "sh"}, {vs.SHPort, "sh-port", svcSched2, "sh"},
		{vs.MHFallback, "mh-fallback", svcSched1, "mh"}, {vs.MHPort, "mh-port", svcSched2, "mh"},
	} {
		if !f.on {
			continue
		}
		if f.algo != "" && (vs.LBAlgo != f.algo || !vs.Has("lb_algo") && !vs.Has("lvs_sched") ||
			!(before(&vs.Block, "lb_algo", f.kw) || before(&vs.Block, "lvs_sched", f.kw))) {
			continue
		}
		flags |= f.bit
	}
	out.Flags = flags

	// Persistence (pto_handler, pgr_handler, validate_check_config).
	timeout := vs.PersistenceTimeout.Std()
	if timeout == 0 && (vs.PersistenceGranularity != "" || byAddress && zeroPort) {
		timeout = persistentTimeout
	}
	if timeout > 0 {
		out.PersistenceTimeout = durationpb.New(timeout)
		out.PersistenceGranularity = vs.PersistenceGranularity
	}

	// Real servers: duplicates dropped, defaults from the virtual server.
	fwmarkOnly := !byAddress
	seen := map[netip.AddrPort]bool{}
	var weightSum uint64
	for _, rs := range vs.RealServers {
		if family != "" && effMethod(rs.LVSMethod, vsMethod) != "TUN" && familyOf(rs.IP) != family {
			continue // "Address family of virtual server and real server ... don't match - skipping"
		}
		o := realServerOf(vs, rs, vsMethod, fwmarkOnly)
		o.Checkers = checkersOf(vs, rs, o, files)
		key := netip.AddrPortFrom(rs.IP, uint16(o.Port))
		if seen[key] {
			continue // "real server ... is duplicated - removing second rs"
		}
		seen[key] = true
		weightSum += uint64(o.Weight)
		out.RealServers = append(out.RealServers, o)
	}
	if len(out.RealServers) == 0 {
		return nil
	}
	if ss := vs.SorryServer; ss != nil && ss.IP.IsValid() {
		m := effMethod(ss.LVSMethod, vsMethod)
		if family == "" || m == "TUN" || familyOf(ss.IP) == family {
			o := &pb.LvsRealServer{
				Address:          ss.IP.String(),
				Port:             uint32(ss.Port),
				Weight:           1, // alloc_ssvr: effective_weight 1
				InhibitOnFailure: vs.SorryServerInhibit,
				Forwarding:       forwardingOf(ss.LVSMethod, ss.Tunnel, vs),
				Unchecked:        true,
			}
			if m != "NAT" && vs.Group == "" {
				o.Port = uint32(vs.Port) // 0 under a fwmark
			}
			// A sorry server that is also a real server takes the real
			// server's inhibit_on_failure (validate_check_config).
			for _, r := range out.RealServers {
				if r.Address == o.Address && r.Port == o.Port {
					o.InhibitOnFailure = r.InhibitOnFailure
				}
			}
			out.SorryServer = o
		}
	}

	// Quorum at most the total weight, hysteresis below the quorum.
	out.Quorum = 1
	if vs.Has("quorum") {
		out.Quorum = vs.Quorum
	}
	if uint64(out.Quorum) > weightSum {
		out.Quorum = uint32(weightSum)
	}
	out.Hysteresis = vs.Hysteresis
	if out.Hysteresis >= out.Quorum {
		// keepalived sets quorum-1, which wraps for a quorum of 0; 0 is what
		// that intends.
		out.Hysteresis = 0
		if out.Quorum > 0 {
			out.Hysteresis = out.Quorum - 1
		}
	}
	return out
}

func effMethod(own, vs string) string {
	if own != "" {
		return own
	}
	if vs == "" {
		return "NAT"
	}
	return vs
}

// forwardingOf is a server's effective forwarding: its own method with its
// own tunnel options, else the virtual server's method and tunnel
// (check_data.c validate_check_config copies both together).
func forwardingOf(own string, ownTun *config.Tunnel, vs *config.VirtualServer) *pb.LvsForwarding {
	m, tun := own, ownTun
	if own == "" {
		m, tun = effMethod("", vs.LBKind), vs.Tunnel
	}
	f := &pb.LvsForwarding{Method: methodOf(m)}
	if m != "TUN" || tun == nil {
		return f
	}
	switch tun.Type {
	case "gue":
		f.TunnelType = pb.LvsTunnelType_LVS_TUNNEL_GUE
		f.TunnelPort = uint32(tun.Port)
	case "gre":
		f.TunnelType = pb.LvsTunnelType_LVS_TUNNEL_GRE
	}
	// linux/ip_vs.h IP_VS_TUNNEL_ENCAP_FLAG_*.
	switch tun.Checksum {
	case "csum":
		f.TunnelFlags = 1
	case "remcsum":
		f.TunnelFlags = 2
	}
	return f
}

func realServerOf(vs *config.VirtualServer, rs *config.RealServer, vsMethod string, fwmarkOnly bool) *pb.LvsRealServer {
	m := effMethod(rs.LVSMethod, vsMethod)
	o := &pb.LvsRealServer{
		DefinedAt:  rs.Pos.String(),
		Address:    rs.IP.String(),
		Port:       uint32(rs.Port),
		Weight:     uint32(rs.Weight),
		Uthreshold: rs.UThreshold,
		Lthreshold: rs.LThreshold,
		Forwarding: forwardingOf(rs.LVSMethod, rs.Tunnel, vs),
		Unchecked:  len(rs.Checkers) == 0,
	}
	// alloc_rs: a real server without its own weight takes the virtual
	// server's (default 1).
	if !rs.Has("weight") {
		o.Weight = 1
		if vs.Weight != nil {
			o.Weight = uint32(*vs.Weight)
		}
	}
	o.InhibitOnFailure = vs.InhibitOnFailure
	if rs.InhibitOnFailure != nil {
		o.InhibitOnFailure = *rs.InhibitOnFailure
	}
	// Ports (validate_check_config, non-group case): NAT without a port takes
	// the service's; DR/TUN always use the service's (none under a fwmark).
	if vs.Group == "" {
		switch {
		case m == "NAT" && !fwmarkOnly && o.Port == 0:
			o.Port = uint32(vs.Port)
		case m != "NAT" && fwmarkOnly:
			o.Port = 0
		case m != "NAT":
			o.Port = uint32(vs.Port)
		}
	}
	// Alpha: a checker's own, else the real server's, else the virtual
	// server's; an alpha checker starts failed (validate_check_config).
	for _, c := range rs.Checkers {
		alpha := vs.Alpha
		if rs.Alpha != nil {
			alpha = *rs.Alpha
		}
		if c.Alpha != nil {
			alpha = *c.Alpha
		}
		if alpha {
			o.StartsDown = true
		}
	}
	return o
}

// checkerTypes maps checker block keywords to the wire's types.
var checkerTypes = map[string]pb.LvsCheckerType{
	"TCP_CHECK": pb.LvsCheckerType_LVS_CHECKER_TCP, "HTTP_GET": pb.LvsCheckerType_LVS_CHECKER_HTTP,
	"SSL_GET": pb.LvsCheckerType_LVS_CHECKER_SSL, "SMTP_CHECK": pb.LvsCheckerType_LVS_CHECKER_SMTP,
	"DNS_CHECK": pb.LvsCheckerType_LVS_CHECKER_DNS, "UDP_CHECK": pb.LvsCheckerType_LVS_CHECKER_UDP,
	"PING_CHECK": pb.LvsCheckerType_LVS_CHECKER_PING, "FILE_CHECK": pb.LvsCheckerType_LVS_CHECKER_FILE,
	"MISC_CHECK": pb.LvsCheckerType_LVS_CHECKER_MISC, "BFD_CHECK": pb.LvsCheckerType_LVS_CHECKER_BFD,
}

func levelOf(d config.CheckDefaults, alpha *bool) check.Level {
	dur := func(v *config.Duration) *time.Duration {
		if v == nil {
			return nil
		}
		x := v.Std()
		return &x
	}
	return check.Level{DelayLoop: dur(d.DelayLoop), Retry: d.Retry, DelayBeforeRetry: dur(d.DelayBeforeRetry),
		Warmup: dur(d.Warmup), ConnectTimeout: dur(d.ConnectTimeout), Alpha: alpha}
}

// checkersOf returns the real server's checkers with effective values: the
// timing through check.Resolve (validate_check_config's inheritance), the
// target defaulting to the real server's address and effective port
// (check_api.c queue_checker). An SMTP_CHECK with host blocks becomes one
// checker per host, each host inheriting the unset connection options of
// its SMTP_CHECK (check_smtp.c: every host is checked on its own).
func checkersOf(vs *config.VirtualServer, rs *config.RealServer, o *pb.LvsRealServer, files map[string]*config.TrackFileDef) []*pb.LvsChecker {
	vsAlpha := vs.Alpha
	vsLevel, rsLevel := levelOf(vs.CheckDefaults, &vsAlpha), levelOf(rs.CheckDefaults, rs.Alpha)
	rsAddr := rs.IP
	var out []*pb.LvsChecker
	for _, c := range rs.Checkers {
		t, ok := checkerTypes[c.Type]
		if !ok {
			continue
		}
		retry, dbr := uint32(check.DefaultRetry), check.DefaultDelayBeforeRetry
		if t == pb.LvsCheckerType_LVS_CHECKER_DNS {
			// check_dns.c: DNS_DEFAULT_RETRY, delay_before_retry delay_loop.
			retry, dbr = check.DNSDefaultRetry, 0
		}
		p := check.Resolve(levelOf(c.CheckDefaults, c.Alpha), rsLevel, vsLevel, retry, dbr)
		host := rs.Virtualhost
		if host == "" {
			host = vs.Virtualhost
		}
		if c.Virtualhost != "" {
			host = c.Virtualhost
		}
		base := &pb.LvsChecker{
			DefinedAt:        c.Pos.String(),
			Type:             t,
			BindIf:           c.BindIf,
			BindPort:         uint32(c.BindPort),
			ConnectTimeout:   durationpb.New(p.Timeout),
			DelayLoop:        durationpb.New(p.DelayLoop),
			Retry:            p.Retry,
			DelayBeforeRetry: durationpb.New(p.DelayBeforeRetry),
			Warmup:           durationpb.New(p.Warmup),
			Alpha:            p.Alpha,
			HttpProtocol:     c.HTTPProtocol,
			Virtualhost:      host,
			EnableSni:        c.EnableSNI,
			HeloName:         c.HeloName,
			DnsType:          c.DNSType,
			DnsName:          c.DNSName,
			Payload:          c.Payload,
			RequireReply:     c.RequireReply,
			MinReplyLength:   c.MinReplyLength,
			MaxReplyLength:   c.MaxReplyLength,
			MiscDynamic:      c.MiscDynamic,
		}
		if c.BindTo.IsValid() {
			base.Bindto = c.BindTo.String()
		}
		target := check.Target(rsAddr, uint16(o.Port), c.ConnectIP, c.ConnectPort)
		base.ConnectIp, base.ConnectPort = target.Addr().String(), uint32(target.Port())
		for _, u := range c.URLs {
			base.Urls = append(base.Urls, &pb.LvsCheckerUrl{Path: u.Path, Digest: u.Digest, StatusCode: u.StatusCode,
				Virtualhost: u.Virtualhost, Regex: u.Regex, RegexNoMatch: u.RegexNoMatch})
		}
		if c.MiscPath != nil {
			base.MiscPath = c.MiscPath.Args
		}
		if c.MiscTimeout > 0 {
			base.MiscTimeout = durationpb.New(c.MiscTimeout.Std())
		}
		if t == pb.LvsCheckerType_LVS_CHECKER_FILE {
			// track_file.c: the checker's weight, else the track file's.
			if f := files[c.TrackFile]; f != nil {
				base.TrackFile = f.File
				base.Weight, base.WeightReverse = int64(f.Weight), f.Reverse
			}
			if c.Weight != nil {
				base.Weight, base.WeightReverse = int64(*c.Weight), c.Reverse
			}
		}
		if t != pb.LvsCheckerType_LVS_CHECKER_SMTP || len(c.Hosts) == 0 {
			out = append(out, base)
			continue
		}
		for _, h := range c.Hosts {
			hc := proto.Clone(base).(*pb.LvsChecker)
			hc.DefinedAt = h.Pos.String()
			ip, port := c.ConnectIP, c.ConnectPort
			if h.ConnectIP.IsValid() {
				ip = h.ConnectIP
			}
			if h.ConnectPort != 0 {
				port = h.ConnectPort
			}
			target := check.Target(rsAddr, uint16(o.Port), ip, port)
			hc.ConnectIp, hc.ConnectPort = target.Addr().String(), uint32(target.Port())
			if h.BindTo.IsValid() {
				hc.Bindto = h.BindTo.String()
			}
			if h.BindPort != 0 {
				hc.BindPort = uint32(h.BindPort)
			}
			if h.BindIf != "" {
				hc.BindIf = h.BindIf
			}
			out = append(out, hc)
		}
	}
	return out
}
