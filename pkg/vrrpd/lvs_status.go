package vrrpd

// Status of the virtual servers (issue 8): what vrrpd programs for each
// real server and the health checkerd last reported for it, for
// Status.virtual_servers and the Ipvs call (vrrpctl status / vrrpctl
// ipvs). Kept apart from lvs.go, which decides what the kernel holds: this
// file only reads the engine's IPVS state.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"google.golang.org/protobuf/proto"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// ErrNoIPVS: the kernel's IPVS cannot be read here.
var ErrNoIPVS = errors.New("IPVS not available")

// lvsStatusResultLocked keeps a real server's last result (detail, since,
// last_check) for status. e.mu is held.
func (e *Engine) lvsStatusResultLocked(r *pb.TrackerResult) {
	if e.rsResults == nil {
		e.rsResults = map[string]*pb.TrackerResult{}
	}
	e.rsResults[r.GetName()] = r
}

// lvsStatusApplyLocked forgets the results of real servers snap no
// longer names. e.mu is held.
func (e *Engine) lvsStatusApplyLocked(snap *pb.ConfigSnapshot) {
	keep := map[string]bool{}
	for _, vs := range snap.GetVirtualServers() {
		for _, rs := range vs.GetRealServers() {
			keep[rs.GetHealthId()] = true
		}
		if s := vs.GetSorryServer(); s != nil {
			keep[s.GetHealthId()] = true
		}
	}
	for id := range e.rsResults {
		if !keep[id] {
			delete(e.rsResults, id)
		}
	}
}

// virtualServersStatusLocked is every virtual server of the running
// configuration with its real servers. e.mu is held.
func (e *Engine) virtualServersStatusLocked() []*pb.VirtualServerStatus {
	l := &e.lvs
	e.lvsTableLocked() // current: computed lazily (lvs.go)
	out := make([]*pb.VirtualServerStatus, 0, len(l.vss))
	for _, vs := range l.vss {
		st := &pb.VirtualServerStatus{Name: vs.GetName(), Scheduler: vs.GetScheduler(), QuorumUp: l.prev.QuorumUp[vs.GetName()]}
		if st.Scheduler == "" {
			st.Scheduler = "wlc"
		}
		for _, s := range vs.GetServices() {
			st.Services = append(st.Services, proto.Clone(s).(*pb.LvsService))
		}
		for i, rs := range vs.GetRealServers() {
			m := rs.GetForwarding().GetMethod()
			if i == 0 {
				st.LbKind = m
			} else if m != st.LbKind {
				st.LbKindMixed = true
			}
			st.RealServers = append(st.RealServers, e.rsStatusLocked(vs, rs))
		}
		if s := vs.GetSorryServer(); s != nil {
			st.SorryServer = e.rsStatusLocked(vs, s)
		}
		out = append(out, st)
	}
	return out
}

// rsStatusLocked is rs (a real or the sorry server of vs) as vrrpd sees
// it: healthy by lvs.Desired's rule (unchecked: always; else checkerd's
// last result; before one, up unless a checker is alpha), and the weight
// of its destination in the table vrrpd programs (its first service's).
func (e *Engine) rsStatusLocked(vs *pb.VirtualServer, rs *pb.LvsRealServer) *pb.RealServerStatus {
	st := &pb.RealServerStatus{Address: rs.GetAddress(), Port: rs.GetPort(), Forward: rs.GetForwarding().GetMethod()}
	switch r, ok := e.rsResults[rs.GetHealthId()]; {
	case rs.GetUnchecked():
		st.Healthy, st.Reason = true, "no checker"
	case ok:
		st.HealthId = rs.GetHealthId()
		st.Healthy, st.Reason, st.Since, st.LastCheck = r.GetUp(), r.GetDetail(), r.GetSince(), r.GetLastCheck()
	default:
		st.HealthId = rs.GetHealthId()
		st.Healthy, st.Reason = !rs.GetStartsDown(), "not checked yet"
	}
	if ps := lvs.Places(vs, rs); len(ps) > 0 {
		if ent := e.lvs.prev.Services[ps[0].Service]; ent != nil {
			st.Weight = ent.Dests[ps[0].Dest].Weight
			// A NAT server's effective port is in the table.
			st.Port = uint32(ps[0].Dest.Port)
		}
	}
	return st
}

// Ipvs reads the kernel's IPVS table through a connection of its own
// (the reconcile worker keeps its own; netlink sockets are independent)
// and annotates each destination with the configured server it is. The
// kernel is read without e.mu.
func (e *Engine) Ipvs(ctx context.Context) (*pb.IpvsResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.lvs.open == nil {
		return nil, fmt.Errorf("%w: no IPVS kernel interface", ErrNoIPVS)
	}
	k, err := e.lvs.open()
	if err == nil && k == nil {
		err = errors.New("no IPVS kernel interface")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoIPVS, err)
	}
	t, err := lvs.ReadTable(k)
	if c, ok := k.(io.Closer); ok && c != nil {
		c.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the IPVS table: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ipvsResponseLocked(t), nil
}

// ipvsResponseLocked is t on the wire with each destination's configured
// server and health. e.mu is held.
func (e *Engine) ipvsResponseLocked(t lvs.KernelTable) *pb.IpvsResponse {
	type place struct {
		vs    *pb.VirtualServer
		rs    *pb.LvsRealServer
		sorry bool
	}
	owner := map[lvs.ServiceKey]*pb.VirtualServer{}
	at := map[lvs.Placement]place{}
	for _, vs := range e.lvs.vss {
		for _, sk := range lvs.ServiceKeys(vs) {
			if owner[sk] == nil {
				owner[sk] = vs
			}
		}
		for _, rs := range vs.GetRealServers() {
			for _, p := range lvs.Places(vs, rs) {
				if _, dup := at[p]; !dup {
					at[p] = place{vs, rs, false}
				}
			}
		}
		if s := vs.GetSorryServer(); s != nil {
			for _, p := range lvs.Places(vs, s) {
				if _, dup := at[p]; !dup {
					at[p] = place{vs, s, true}
				}
			}
		}
	}
	resp := &pb.IpvsResponse{Version: fmt.Sprintf("%d.%d.%d", t.Version[0], t.Version[1], t.Version[2]), ConnTableSize: t.ConnTableSize}
	for _, s := range t.Services {
		ps := &pb.IpvsService{Key: serviceKeyPB(s.ServiceKey), Scheduler: s.Scheduler, Flags: s.Flags,
			TimeoutSeconds: uint32(s.Timeout.Seconds()), PeName: s.PEName, Netmask: netmaskString(s.Service)}
		if vs := owner[s.ServiceKey]; vs != nil {
			ps.VirtualServer = vs.GetName()
		}
		for _, d := range s.Dests {
			pd := &pb.IpvsDestination{Address: d.Addr.String(), Port: uint32(d.Port), Forward: uint32(d.Method), Weight: d.Weight,
				ActiveConns: d.ActiveConns, InactiveConns: d.InactiveConns, UpperThreshold: d.UThreshold, LowerThreshold: d.LThreshold}
			if p, ok := at[lvs.Placement{Service: s.ServiceKey, Dest: d.DestKey}]; ok {
				pd.Server, pd.SorryServer = e.rsStatusLocked(p.vs, p.rs), p.sorry
			}
			ps.Destinations = append(ps.Destinations, pd)
		}
		resp.Services = append(resp.Services, ps)
	}
	return resp
}

func serviceKeyPB(k lvs.ServiceKey) *pb.LvsService {
	s := &pb.LvsService{Family: "inet", Fwmark: k.Fwmark}
	if k.Family == lvs.INET6 {
		s.Family = "inet6"
	}
	if k.Fwmark == 0 {
		s.Address, s.Port, s.Protocol = k.Addr.String(), uint32(k.Port), pb.LvsProtocol(k.Protocol)
	}
	return s
}

// netmaskString is the persistence granularity as ipvsadm prints it
// ("mask 255.255.255.0", "mask 64"); "" for a host mask.
func netmaskString(s lvs.Service) string {
	if !s.Netmask.IsValid() {
		return ""
	}
	if s.Family == lvs.INET6 || !s.Netmask.Addr().Is4() {
		return fmt.Sprint(s.Netmask.Bits())
	}
	if s.Netmask.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return ""
	}
	return s.Netmask.Addr().String()
}
