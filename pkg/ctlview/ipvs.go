package ctlview

import (
	"fmt"
	"io"
	"strings"
	"time"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// IPVS is the kernel's IPVS table as vrrpctl ipvs shows it: ipvsadm -Ln's
// content, with the health of each destination that is a configured real
// or sorry server. Field order is the JSON key order.
type IPVS struct {
	// IPVS's version ("1.2.1") and connection table size.
	Version       string        `json:"version"`
	ConnTableSize uint32        `json:"conn_table_size"`
	Services      []IPVSService `json:"services"`
}

// IPVSService is one kernel service.
type IPVSService struct {
	// "inet" or "inet6".
	Family string `json:"family"`
	// "TCP", "UDP", "SCTP"; null for a fwmark service.
	Protocol *string `json:"protocol"`
	// "ip:port"; null for a fwmark service.
	Address   *string `json:"address"`
	Fwmark    *uint32 `json:"fwmark"`
	Scheduler string  `json:"scheduler"`
	// IP_VS_SVC_F_* as the kernel holds them.
	Flags uint32 `json:"flags"`
	// Seconds; null when not persistent.
	PersistenceTimeout *uint32 `json:"persistence_timeout"`
	// IPv4 netmask or IPv6 prefix length; null for a host mask.
	PersistenceGranularity *string `json:"persistence_granularity"`
	PersistenceEngine      *string `json:"persistence_engine"`
	// The configuration's virtual server of this service; null if it is
	// not vrrpkit's.
	VirtualServer *string    `json:"virtual_server"`
	Destinations  []IPVSDest `json:"destinations"`
}

// IPVSDest is one destination of a kernel service.
type IPVSDest struct {
	Address string `json:"address"`
	// ipvsadm's words: "Masq", "Local", "Tunnel", "Route".
	Forward        string `json:"forward"`
	Weight         uint32 `json:"weight"`
	ActiveConn     uint32 `json:"active_conn"`
	InActConn      uint32 `json:"inact_conn"`
	UpperThreshold uint32 `json:"upper_threshold"`
	LowerThreshold uint32 `json:"lower_threshold"`
	// The configured server it is, with its health; null if the
	// configuration has none at this address for this service.
	RealServer *RealServer `json:"real_server"`
	// It is the virtual server's sorry server.
	SorryServer bool `json:"sorry_server"`
}

// FromIPVS converts vrrpd's answer (relayed by the supervisor).
func FromIPVS(r *pb.IpvsResponse) *IPVS {
	v := &IPVS{Version: r.GetVersion(), ConnTableSize: r.GetConnTableSize(), Services: []IPVSService{}}
	for _, s := range r.GetServices() {
		k := s.GetKey()
		vs := IPVSService{Family: k.GetFamily(), Scheduler: s.GetScheduler(), Flags: s.GetFlags(),
			VirtualServer: optional(s.GetVirtualServer()), Destinations: []IPVSDest{}}
		if vs.Family == "" {
			vs.Family = "inet"
		}
		if k.GetFwmark() != 0 {
			vs.Fwmark = ptr(k.GetFwmark())
		} else {
			vs.Protocol, vs.Address = ptr(ipvsProtocol(k.GetProtocol())), ptr(hostPort(k.GetAddress(), k.GetPort()))
		}
		if s.GetFlags()&ipvsFlagPersistent != 0 {
			vs.PersistenceTimeout = ptr(s.GetTimeoutSeconds())
			vs.PersistenceGranularity, vs.PersistenceEngine = optional(s.GetNetmask()), optional(s.GetPeName())
		}
		for _, d := range s.GetDestinations() {
			id := IPVSDest{Address: hostPort(d.GetAddress(), d.GetPort()), Forward: forwardName(d.GetForward()), Weight: d.GetWeight(),
				ActiveConn: d.GetActiveConns(), InActConn: d.GetInactiveConns(),
				UpperThreshold: d.GetUpperThreshold(), LowerThreshold: d.GetLowerThreshold(), SorryServer: d.GetSorryServer()}
			if rs := d.GetServer(); rs != nil {
				r := realServer(rs)
				id.RealServer = &r
			}
			vs.Destinations = append(vs.Destinations, id)
		}
		v.Services = append(v.Services, vs)
	}
	return v
}

// IP_VS_SVC_F_PERSISTENT and IP_VS_SVC_F_ONEPACKET (linux/ip_vs.h).
const (
	ipvsFlagPersistent = 0x0001
	ipvsFlagOnePacket  = 0x0004
)

// ipvsProtocol is ipvsadm's protocol column: it prints "UDP" for anything
// not TCP (ipvsadm.c print_service_entry); SCTP is named here.
func ipvsProtocol(p pb.LvsProtocol) string {
	switch p {
	case pb.LvsProtocol_LVS_PROTOCOL_TCP:
		return "TCP"
	case pb.LvsProtocol_LVS_PROTOCOL_SCTP:
		return "SCTP"
	}
	return "UDP"
}

// forwardName is ipvsadm's fwd_name (IP_VS_CONN_F_FWD_MASK values).
func forwardName(f uint32) string {
	switch f & 7 {
	case 0:
		return "Masq"
	case 1:
		return "Local"
	case 2:
		return "Tunnel"
	case 3:
		return "Route"
	}
	return fmt.Sprintf("fwd-%d", f)
}

// WriteIPVSJSON writes v as indented JSON, as WriteJSON does.
func WriteIPVSJSON(w io.Writer, v *IPVS) error { return writeJSON(w, v, "the IPVS table") }

// WriteIPVS writes v in ipvsadm -Ln's layout (ipvsadm 1.31 list_all,
// print_title, print_service_entry: the same header lines, columns and
// widths), each destination that is a configured server followed by its
// health: "up 3m2s", "down 12s: HTTP_GET: ...". Durations count to now.
// A destination the configuration does not know has no health column, so
// its line is ipvsadm's exactly.
func WriteIPVS(w io.Writer, v *IPVS, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "IP Virtual Server version %s (size=%d)\n", v.Version, v.ConnTableSize)
	b.WriteString("Prot LocalAddress:Port Scheduler Flags\n")
	b.WriteString("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	for _, s := range v.Services {
		var name string
		if s.Fwmark != nil {
			name = fmt.Sprintf("FWM  %d", *s.Fwmark)
			if s.Family == "inet6" {
				name += " IPv6"
			}
		} else {
			name = fmt.Sprintf("%-4s %s", *s.Protocol, *s.Address)
			if s.Family != "inet6" && len(name) > 33 {
				name = name[:33] // ipvsadm: svc_name[33] = '\0'
			}
		}
		fmt.Fprintf(&b, "%s %s", name, s.Scheduler)
		if s.PersistenceTimeout != nil {
			fmt.Fprintf(&b, " persistent %d", *s.PersistenceTimeout)
			if s.PersistenceGranularity != nil {
				fmt.Fprintf(&b, " mask %s", *s.PersistenceGranularity)
			}
			if s.PersistenceEngine != nil {
				fmt.Fprintf(&b, " pe %s", *s.PersistenceEngine)
			}
		}
		if s.Flags&ipvsFlagOnePacket != 0 {
			b.WriteString(" ops")
		}
		b.WriteString("\n")
		for _, d := range s.Destinations {
			addr := d.Address
			if s.Family != "inet6" && len(addr) > 28 {
				addr = addr[:28] // ipvsadm: dname[28] = '\0'
			}
			fmt.Fprintf(&b, "  -> %-28s %-7s %-6d %-10d %-10d", addr, d.Forward, d.Weight, d.ActiveConn, d.InActConn)
			if d.RealServer != nil {
				b.WriteString(" " + ipvsHealth(d, now))
			}
			b.WriteString("\n")
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the IPVS table: %w", err)
	}
	return nil
}

// ipvsHealth is the health column of a configured destination.
func ipvsHealth(d IPVSDest, now time.Time) string {
	rs := d.RealServer
	out := "down"
	if rs.Healthy {
		out = "up"
	}
	if rs.Since != nil {
		out += " " + max(now.Sub(rs.Since.Time), 0).Round(time.Second).String()
	}
	switch {
	case !rs.Healthy && rs.Reason != "":
		out += ": " + rs.Reason
	case rs.Since == nil && rs.Reason != "":
		out += " (" + rs.Reason + ")"
	}
	if d.SorryServer {
		out += " [sorry server]"
	}
	return out
}
