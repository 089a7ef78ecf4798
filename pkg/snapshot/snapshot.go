// Package snapshot turns an accepted keepalived configuration into the
// protobuf snapshot the children run (design.md, "Processes"): keepalived's
// defaults, the global_defs that feed each instance and what vrrp_strict
// changes are all folded in here, so that a child reads effective values
// only and never needs keepalived's defaulting rules. The contract of every
// field is "unset means off".
//
// The rules follow keepalived 2.2.7; each is cited by file and function.
package snapshot

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// keepalived's compiled-in gratuitous ARP defaults (keepalived/include/vrrp.h:
// VRRP_GARP_DELAY, VRRP_GARP_REP, VRRP_GARP_REFRESH_REP).
const (
	defaultGarpDelay      = 5 * time.Second
	defaultGarpRepeat     = 5
	defaultGarpRefreshRep = 1
)

// Build returns generation's snapshot of cfg, read from path.
func Build(cfg *config.Config, path string, generation uint64) *pb.ConfigSnapshot {
	g := &cfg.GlobalDefs
	s := &pb.ConfigSnapshot{
		Generation: generation,
		SourcePath: path,
		Global: &pb.GlobalDefs{
			RouterId:             g.RouterID,
			ScriptUser:           g.ScriptUser,
			ScriptGroup:          g.ScriptGroup,
			EnableScriptSecurity: g.EnableScriptSecurity,
			VrrpStrict:           g.VRRPStrict,
		},
	}
	if g.VRRPMcastGroup4.IsValid() {
		s.Global.VrrpMcastGroup4 = g.VRRPMcastGroup4.String()
	}
	if g.VRRPMcastGroup6.IsValid() {
		s.Global.VrrpMcastGroup6 = g.VRRPMcastGroup6.String()
	}
	gd := effectiveGlobals(g)
	for _, v := range cfg.VRRPInstances {
		s.Instances = append(s.Instances, instance(g, &gd, v))
	}
	return s
}

// globals are the global_defs values an instance falls back on, after
// keepalived's own defaulting of global_defs.
type globals struct {
	garpDelay      time.Duration
	garpRepeat     uint32
	garpRefreshRep uint32
	lowerDelay     time.Duration
	lowerRepeat    uint32
}

func effectiveGlobals(g *config.GlobalDefs) globals {
	out := globals{garpDelay: defaultGarpDelay, garpRepeat: defaultGarpRepeat, garpRefreshRep: defaultGarpRefreshRep}
	// vrrp_min_garp: one message, no second round, no refresh repeats, for
	// whatever global_defs did not set (core/global_parser.c:
	// vrrp_min_garp_handler; keepalived tests "still at the compiled-in
	// value", so an explicit value equal to the default placed before
	// vrrp_min_garp is overridden there and kept here).
	if g.VRRPMinGarp {
		out.garpDelay, out.garpRepeat, out.garpRefreshRep = 0, 1, 0
	}
	if g.VRRPGarpMasterDelay != nil {
		out.garpDelay = g.VRRPGarpMasterDelay.Std()
	}
	if g.VRRPGarpMasterRepeat != nil {
		out.garpRepeat = *g.VRRPGarpMasterRepeat
	}
	if g.VRRPGarpMasterRefreshRepeat != nil {
		out.garpRefreshRep = *g.VRRPGarpMasterRefreshRepeat
	}
	// vrrp_garp_lower_prio_delay / _repeat default to the global
	// vrrp_garp_master_delay / _repeat, not to an instance's garp_master_*
	// (vrrp/vrrp.c: vrrp_complete_init, before any instance is completed).
	out.lowerDelay, out.lowerRepeat = out.garpDelay, out.garpRepeat
	if g.VRRPGarpLowerPrioDelay != nil {
		out.lowerDelay = g.VRRPGarpLowerPrioDelay.Std()
	}
	if g.VRRPGarpLowerPrioRepeat != nil {
		out.lowerRepeat = *g.VRRPGarpLowerPrioRepeat
	}
	return out
}

func instance(g *config.GlobalDefs, gd *globals, v *config.VRRPInstance) *pb.VrrpInstance {
	// An instance's strict_mode overrides vrrp_strict (vrrp/vrrp.c:
	// vrrp_complete_instance).
	strict := g.VRRPStrict
	if v.StrictMode != nil {
		strict = *v.StrictMode
	}
	in := &pb.VrrpInstance{
		Name:             v.Name,
		DefinedAt:        v.Pos.String(),
		Interface:        v.Interface,
		Vrid:             uint32(v.VirtualRouterID),
		Priority:         uint32(v.Priority),
		AdvertInt:        durationpb.New(v.AdvertInt.Std()),
		Version:          uint32(v.Version),
		Nopreempt:        !v.Preempt,
		PreemptDelay:     durationpb.New(v.PreemptDelay.Std()),
		SkipCheckAdvAddr: v.SkipCheckAdvAddr || g.VRRPSkipCheckAdvAddr,
		DontTrackPrimary: v.DontTrackPrimary,
		StateHint:        pb.VrrpState_VRRP_STATE_BACKUP,
	}
	if v.State == "MASTER" {
		in.StateHint = pb.VrrpState_VRRP_STATE_MASTER
	}
	for _, a := range v.VirtualIPAddresses {
		in.VirtualIpaddress = append(in.VirtualIpaddress, address(a))
		in.Ipv6 = a.Prefix.Addr().Is6()
	}
	for _, a := range v.VirtualIPAddressesExcluded {
		in.VirtualIpaddressExcluded = append(in.VirtualIpaddressExcluded, address(a))
	}
	switch {
	case v.UnicastSrcIP.IsValid():
		in.UnicastSrcIp = v.UnicastSrcIP.String()
	case v.McastSrcIP.IsValid():
		in.UnicastSrcIp = v.McastSrcIP.String()
	}
	for _, p := range v.UnicastPeers {
		in.UnicastPeer = append(in.UnicastPeer, p.Addr.String())
	}
	if a := v.Authentication; a != nil && a.AuthType == "PASS" {
		in.AuthType = pb.AuthType_AUTH_TYPE_PASS
		in.AuthPass = a.AuthPass
	}
	// accept: on by default unless strict, and always for the address owner
	// (priority 255); strict VRRPv2 refuses it for a non-owner, as RFC 3768
	// has no accept mode (vrrp/vrrp.c: vrrp_complete_instance).
	owner := v.Priority == 255
	in.Accept = owner || !strict
	if v.Accept != nil {
		in.Accept = *v.Accept
	}
	if in.Accept && strict && !owner && in.Version == 2 {
		in.Accept = false
	}
	// An instance's garp_master_* start as the global values at allocation
	// (vrrp/vrrp_data.c: alloc_vrrp).
	in.Garp = &pb.GarpSettings{
		MasterDelay:         durationpb.New(pick(v.GarpMasterDelay, gd.garpDelay)),
		MasterRepeat:        pickN(v.GarpMasterRepeat, gd.garpRepeat),
		MasterRefresh:       durationpb.New(pick(v.GarpMasterRefresh, pick(g.VRRPGarpMasterRefresh, 0))),
		MasterRefreshRepeat: pickN(v.GarpMasterRefreshRepeat, gd.garpRefreshRep),
		Interval:            durationpb.New(pick(g.VRRPGarpInterval, 0)),
		NaInterval:          durationpb.New(pick(g.VRRPGnaInterval, 0)),
	}
	// The lower-priority options: strict mode forces them to their RFC
	// behaviour (no extra gratuitous ARP, no answering advert to a lower
	// priority master, no advert before stepping down), set or not;
	// otherwise the instance's value, else the global one (vrrp/vrrp.c:
	// vrrp_complete_instance). Global defaults: vrrp_lower_prio_no_advert and
	// vrrp_higher_prio_send_advert false (core/global_data.c:
	// set_vrrp_defaults).
	if strict {
		in.Garp.LowerPrioDelay = durationpb.New(0)
		in.LowerPrioNoAdvert = true
	} else {
		in.Garp.LowerPrioDelay = durationpb.New(pick(v.GarpLowerPrioDelay, gd.lowerDelay))
		in.Garp.LowerPrioRepeat = pickN(v.GarpLowerPrioRepeat, gd.lowerRepeat)
		in.LowerPrioNoAdvert = pickB(v.LowerPrioNoAdvert, pickB(g.VRRPLowerPrioNoAdvert, false))
		in.HigherPrioSendAdvert = pickB(v.HigherPrioSendAdvert, pickB(g.VRRPHigherPrioSendAdvert, false))
	}
	for _, t := range v.TrackInterfaces {
		in.TrackInterface = append(in.TrackInterface, &pb.TrackInterface{Name: t.Name, Weight: int32(t.Weight)})
	}
	return in
}

func address(a config.VirtualAddress) *pb.VirtualAddress {
	out := &pb.VirtualAddress{Prefix: a.Prefix.String(), Dev: a.Dev, Label: a.Label, Scope: a.Scope, NoTrack: a.NoTrack}
	if a.Broadcast.IsValid() {
		out.Broadcast = a.Broadcast.String()
	}
	return out
}

// pick returns the configured value if there is one, else def.
func pick(v *config.Duration, def time.Duration) time.Duration {
	if v != nil {
		return v.Std()
	}
	return def
}

func pickN(v *uint32, def uint32) uint32 {
	if v != nil {
		return *v
	}
	return def
}

func pickB(v *bool, def bool) bool {
	if v != nil {
		return *v
	}
	return def
}
