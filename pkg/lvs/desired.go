// Package lvs turns the snapshot's virtual servers and the real servers'
// health into the IPVS table keepalived 2.2.7 would program, and reconciles
// the kernel's table against it without flushing or touching services it
// does not own.
package lvs

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Family is an IPVS address family (AF_INET / AF_INET6).
type Family uint16

const (
	INET  Family = 2
	INET6 Family = 10
)

// Protocol is an IPVS service protocol; 0 for fwmark services.
type Protocol uint16

const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// Method is an IPVS forwarding method (IP_VS_CONN_F_*).
type Method uint32

const (
	NAT    Method = 0 // IP_VS_CONN_F_MASQ
	Tunnel Method = 2 // IP_VS_CONN_F_TUNNEL
	DR     Method = 3 // IP_VS_CONN_F_DROUTE
)

// FlagPersistent is IP_VS_SVC_F_PERSISTENT.
const FlagPersistent uint32 = 0x0001

// ServiceKey identifies an IPVS service: (family, fwmark) or (family,
// protocol, address, port).
type ServiceKey struct {
	Family   Family
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	Fwmark   uint32
}

func (k ServiceKey) String() string {
	if k.Fwmark != 0 {
		if k.Family == INET6 {
			return fmt.Sprintf("FWM %d IPv6", k.Fwmark)
		}
		return fmt.Sprintf("FWM %d", k.Fwmark)
	}
	p := map[Protocol]string{TCP: "TCP", UDP: "UDP", SCTP: "SCTP"}[k.Protocol]
	if p == "" {
		p = fmt.Sprintf("proto-%d", k.Protocol)
	}
	return p + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// Service is one IPVS service's settings.
type Service struct {
	ServiceKey
	Scheduler string
	Flags     uint32 // IP_VS_SVC_F_*, FlagPersistent included when persistent
	Timeout   time.Duration
	// Netmask: an IPv4 mask or, for IPv6, a prefix length as a 16-byte mask.
	// Invalid (zero) means a host mask.
	Netmask netip.Prefix
	PEName  string
}

// DestKey identifies a destination within a service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Destination is one real (or sorry) server of a service.
type Destination struct {
	DestKey
	Method      Method
	Weight      uint32
	UThreshold  uint32
	LThreshold  uint32
	TunnelType  uint8
	TunnelPort  uint16
	TunnelFlags uint16
}

// Entry is a service with its destinations.
type Entry struct {
	Service Service
	Dests   map[DestKey]Destination
}

// Table is the desired IPVS table, plus what it was computed from that the
// next computation needs (quorum state has hysteresis).
type Table struct {
	Services map[ServiceKey]*Entry
	// QuorumUp and the live weight it was decided on, per VirtualServer
	// name.
	QuorumUp map[string]bool
	Live     map[string]uint64
	// quorumOf is the quorum and hysteresis each state was decided with:
	// a reload that changes them re-decides it (ipwrapper.c
	// init_service_vs: "we may have got/lost quorum due to quorum
	// setting changed").
	quorumOf map[string][2]uint32
}

// Health reports a real server's health by its health_id, and whether any
// result is known yet.
type Health func(id string) (h ServerHealth, known bool)

// ServerHealth is what checkerd last said of a real server (its
// TRACKER_KIND_REAL_SERVER result).
type ServerHealth struct {
	Up bool
	// Weight, when HasWeight, is the weight its misc_dynamic MISC_CHECKs
	// set (TrackerResult.weight); otherwise the configured weight stands.
	Weight    uint32
	HasWeight bool
	// Delta is what its FILE_CHECKs add to the weight
	// (TrackerResult.value).
	Delta int64
}

// Weight is the destination weight keepalived 2.2.7 gives a live real
// server (rs->effective_weight, clamped by real_weight in check_data.h):
// the configured weight, or the one a misc_dynamic MISC_CHECK set (exit
// status - 2: check_misc.c misc_check_child_thread), plus the FILE_CHECK
// deltas (track_file.c), in [0, 65535]. Weight 0 keeps the server in the
// table, alive, taking no new connections, and adds nothing to the quorum
// (ipwrapper.c weigh_live_realservers).
func (h ServerHealth) weight(configured uint32) uint32 {
	w := int64(configured)
	if h.HasWeight {
		w = int64(h.Weight)
	}
	return uint32(min(max(w+h.Delta, 0), 65535))
}

// Desired is the table keepalived programs at start (init_services):
// quorum is up when the live weight reaches quorum + hysteresis.
func Desired(vss []*pb.VirtualServer, health Health) Table {
	return next(Table{}, vss, health)
}

// Next is the table after prev, for the same or a reloaded configuration:
// a virtual server that prev knew keeps its quorum state unless the live
// weight crosses quorum ± hysteresis (ipwrapper.c update_quorum_state).
func (prev Table) Next(vss []*pb.VirtualServer, health Health) Table {
	return next(prev, vss, health)
}

func next(prev Table, vss []*pb.VirtualServer, health Health) Table {
	t := Table{Services: map[ServiceKey]*Entry{}, QuorumUp: map[string]bool{}, Live: map[string]uint64{}, quorumOf: map[string][2]uint32{}}
	for _, vs := range vss {
		alive := make([]bool, len(vs.GetRealServers()))
		weight := make([]uint32, len(vs.GetRealServers()))
		var live uint64
		for i, rs := range vs.GetRealServers() {
			alive[i], weight[i] = isAlive(rs, health)
			if alive[i] {
				live += uint64(weight[i])
			}
		}
		up := quorumUp(prev, vs, live)
		t.QuorumUp[vs.GetName()], t.Live[vs.GetName()] = up, live
		t.quorumOf[vs.GetName()] = [2]uint32{vs.GetQuorum(), vs.GetHysteresis()}
		sorry := vs.GetSorryServer()
		useSorry := !up && sorry != nil

		for _, ps := range vs.GetServices() {
			svc, ok := serviceOf(vs, ps)
			if !ok {
				continue
			}
			e := t.Services[svc.ServiceKey]
			if e == nil {
				// Two virtual servers naming the same service (a shared
				// group): the first one's settings win, destinations merge.
				e = &Entry{Service: svc, Dests: map[DestKey]Destination{}}
				t.Services[svc.ServiceKey] = e
			}
			for i, rs := range vs.GetRealServers() {
				d, ok := destOf(svc.ServiceKey, rs)
				if !ok {
					continue
				}
				// ipwrapper.c: a live server is in the pool unless a sorry
				// server replaced the pool (perform_quorum_state); a down
				// or replaced server with inhibit_on_failure stays at
				// weight 0 (ipvswrapper.c ipvs_cmd: DEL_DEST -> EDIT_DEST
				// weight 0), otherwise it is removed.
				switch {
				case alive[i] && !useSorry:
					d.Weight = weight[i]
					e.Dests[d.DestKey] = d
				case rs.GetInhibitOnFailure():
					d.Weight = 0
					e.Dests[d.DestKey] = d
				}
			}
			if sorry != nil {
				d, ok := destOf(svc.ServiceKey, sorry)
				if !ok {
					continue
				}
				switch {
				case useSorry:
					e.Dests[d.DestKey] = d
				case sorry.GetInhibitOnFailure():
					// init_service_vs: an inhibited sorry server is present
					// at weight 0 while quorum is up; unless it is also a
					// real server, whose entry stands.
					if _, dup := e.Dests[d.DestKey]; !dup && !isRealServer(vs, sorry) {
						d.Weight = 0
						e.Dests[d.DestKey] = d
					}
				}
			}
		}
	}
	return t
}

// LiveWeight is the weight of vs's live real servers, which its quorum is
// decided on (ipwrapper.c weigh_live_realservers).
func LiveWeight(vs *pb.VirtualServer, health Health) uint64 {
	var live uint64
	for _, rs := range vs.GetRealServers() {
		if alive, w := isAlive(rs, health); alive {
			live += uint64(w)
		}
	}
	return live
}

// StepQuorum decides vs's quorum state after its real servers' health
// changed, as Next would, and records it in t, so that a later Next with
// the same health keeps it. It lets the caller act on every quorum
// transition at once, in order, as keepalived does (each checker result
// runs update_quorum_state), while the table itself is computed once for
// many changes. It reports the state before (known: t had one) and after.
func (t *Table) StepQuorum(vs *pb.VirtualServer, health Health) (was, known, up bool, live uint64) {
	name := vs.GetName()
	live = LiveWeight(vs, health)
	was, known = t.QuorumUp[name]
	up = quorumUp(*t, vs, live)
	if t.QuorumUp == nil {
		t.QuorumUp, t.Live, t.quorumOf = map[string]bool{}, map[string]uint64{}, map[string][2]uint32{}
	}
	t.QuorumUp[name], t.Live[name] = up, live
	t.quorumOf[name] = [2]uint32{vs.GetQuorum(), vs.GetHysteresis()}
	return was, known, up, live
}

func isRealServer(vs *pb.VirtualServer, s *pb.LvsRealServer) bool {
	for _, rs := range vs.GetRealServers() {
		if rs.GetAddress() == s.GetAddress() && rs.GetPort() == s.GetPort() {
			return true
		}
	}
	return false
}

// isAlive: a server without checkers is always up; before its first result
// a checked server is up unless a checker is alpha (check_api.c: checkers
// begin is_up; validate_check_config marks alpha checkers failed). weight
// is its destination weight while alive (ServerHealth.weight).
func isAlive(rs *pb.LvsRealServer, health Health) (alive bool, weight uint32) {
	configured := min(rs.GetWeight(), 65535)
	if rs.GetUnchecked() {
		return true, configured
	}
	if health != nil {
		if h, known := health(rs.GetHealthId()); known {
			return h.Up, h.weight(configured)
		}
	}
	return !rs.GetStartsDown(), configured
}

// quorumUp follows ipwrapper.c: at start (or for a virtual server the
// previous table did not know) up iff live >= quorum + hysteresis
// (init_service_vs -> update_quorum_state); then down when live is 0 or
// below quorum - hysteresis, up again at quorum + hysteresis. keepalived
// re-evaluates only when a server or weight changes; here, only when the
// live weight, or the quorum settings, changed (the same, except that a
// weight-0 server's state changes alone do not count).
func quorumUp(prev Table, vs *pb.VirtualServer, live uint64) bool {
	q, h := uint64(vs.GetQuorum()), uint64(vs.GetHysteresis())
	was, known := prev.QuorumUp[vs.GetName()]
	if known && prev.Live[vs.GetName()] == live && prev.quorumOf[vs.GetName()] == [2]uint32{vs.GetQuorum(), vs.GetHysteresis()} {
		return was
	}
	if !known || !was {
		return live >= q+h
	}
	return !(live == 0 || live+h < q)
}

func familyOf(s string) Family {
	if s == "inet6" {
		return INET6
	}
	return INET
}

func serviceOf(vs *pb.VirtualServer, ps *pb.LvsService) (Service, bool) {
	k := ServiceKey{Family: familyOf(ps.GetFamily()), Fwmark: ps.GetFwmark()}
	if k.Fwmark == 0 {
		a, err := netip.ParseAddr(ps.GetAddress())
		if err != nil {
			return Service{}, false
		}
		k.Addr, k.Port, k.Protocol = a, uint16(ps.GetPort()), Protocol(ps.GetProtocol())
	}
	s := Service{ServiceKey: k, Scheduler: vs.GetScheduler(), Flags: vs.GetFlags() &^ FlagPersistent}
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	// ipvswrapper.c ipvs_set_srule: persistence sets the flag, the timeout,
	// the granularity and the engine together.
	if to := vs.GetPersistenceTimeout().AsDuration(); to > 0 {
		s.Flags |= FlagPersistent
		s.Timeout = to
		s.PEName = vs.GetPersistenceEngine()
		s.Netmask = granularity(k.Family, vs.GetPersistenceGranularity())
	}
	return s, true
}

// granularity parses persistence_granularity: an IPv4 netmask or an IPv6
// prefix length, as a prefix whose address is the mask itself (IPv4) or ::
// with the length (IPv6). Invalid for a host mask.
func granularity(f Family, s string) netip.Prefix {
	if s == "" {
		return netip.Prefix{}
	}
	if f == INET {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return netip.Prefix{}
		}
		return netip.PrefixFrom(a, 32)
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || n > 128 {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(netip.IPv6Unspecified(), n)
}

func destOf(sk ServiceKey, rs *pb.LvsRealServer) (Destination, bool) {
	a, err := netip.ParseAddr(rs.GetAddress())
	if err != nil {
		return Destination{}, false
	}
	fw := rs.GetForwarding()
	d := Destination{
		DestKey:    DestKey{Addr: a, Port: uint16(rs.GetPort())},
		Method:     methodOf(fw.GetMethod()),
		Weight:     min(rs.GetWeight(), 65535),
		UThreshold: rs.GetUthreshold(),
		LThreshold: rs.GetLthreshold(),
	}
	if d.Method == Tunnel {
		d.TunnelType, d.TunnelPort, d.TunnelFlags = uint8(fw.GetTunnelType()), uint16(fw.GetTunnelPort()), uint16(fw.GetTunnelFlags())
	}
	// ipvswrapper.c ipvs_cmd / ipvs_group_cmd: a non-NAT destination uses
	// the service's port (none under a fwmark).
	if d.Method != NAT {
		d.Port = sk.Port
	}
	return d, true
}

func methodOf(m pb.LvsMethod) Method {
	switch m {
	case pb.LvsMethod_LVS_METHOD_DR:
		return DR
	case pb.LvsMethod_LVS_METHOD_TUN:
		return Tunnel
	}
	return NAT
}

// Keys returns the table's service keys in a stable order.
func (t Table) Keys() []ServiceKey {
	ks := make([]ServiceKey, 0, len(t.Services))
	for k := range t.Services {
		ks = append(ks, k)
	}
	sortKeys(ks)
	return ks
}

func sortKeys(ks []ServiceKey) {
	sort.Slice(ks, func(i, j int) bool { return ks[i].String() < ks[j].String() })
}

func (d Destination) String() string {
	return fmt.Sprintf("%s weight %d method %d", d.DestKey, d.Weight, d.Method)
}
