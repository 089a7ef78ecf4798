package main

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// snapshot turns an accepted configuration into what the children run:
// keepalived's defaults and the global_defs that feed each instance are
// applied here, so children never need keepalived's defaulting rules.
func snapshot(cfg *config.Config, path string, generation uint64) *pb.ConfigSnapshot {
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
	for _, v := range cfg.VRRPInstances {
		s.Instances = append(s.Instances, instanceSnapshot(g, v))
	}
	return s
}

func instanceSnapshot(g *config.GlobalDefs, v *config.VRRPInstance) *pb.VrrpInstance {
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
		in.VirtualIpaddress = append(in.VirtualIpaddress, addressSnapshot(a))
		in.Ipv6 = a.Prefix.Addr().Is6()
	}
	for _, a := range v.VirtualIPAddressesExcluded {
		in.VirtualIpaddressExcluded = append(in.VirtualIpaddressExcluded, addressSnapshot(a))
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
	// keepalived: accept is the default unless vrrp_strict.
	in.Accept = !g.VRRPStrict
	if v.Accept != nil {
		in.Accept = *v.Accept
	}
	in.Garp = &pb.GarpSettings{
		MasterDelay:         durationpb.New(pick(v.GarpMasterDelay, g.VRRPGarpMasterDelay, 5*time.Second)),
		MasterRepeat:        pickN(v.GarpMasterRepeat, g.VRRPGarpMasterRepeat, 5),
		MasterRefresh:       durationpb.New(pick(v.GarpMasterRefresh, g.VRRPGarpMasterRefresh, 0)),
		MasterRefreshRepeat: pickN(v.GarpMasterRefreshRepeat, g.VRRPGarpMasterRefreshRepeat, 1),
		LowerPrioDelay:      durationpb.New(pick(v.GarpLowerPrioDelay, g.VRRPGarpLowerPrioDelay, 5*time.Second)),
		LowerPrioRepeat:     pickN(v.GarpLowerPrioRepeat, g.VRRPGarpLowerPrioRepeat, 5),
		Interval:            durationpb.New(pick(nil, g.VRRPGarpInterval, 0)),
		NaInterval:          durationpb.New(pick(nil, g.VRRPGnaInterval, 0)),
	}
	for _, t := range v.TrackInterfaces {
		in.TrackInterface = append(in.TrackInterface, &pb.TrackInterface{Name: t.Name, Weight: int32(t.Weight)})
	}
	return in
}

func addressSnapshot(a config.VirtualAddress) *pb.VirtualAddress {
	out := &pb.VirtualAddress{Prefix: a.Prefix.String(), Dev: a.Dev, Label: a.Label, Scope: a.Scope, NoTrack: a.NoTrack}
	if a.Broadcast.IsValid() {
		out.Broadcast = a.Broadcast.String()
	}
	return out
}

// pick returns the instance's value, else the global one, else def.
func pick(inst, global *config.Duration, def time.Duration) time.Duration {
	switch {
	case inst != nil:
		return inst.Std()
	case global != nil:
		return global.Std()
	}
	return def
}

func pickN(inst, global *uint32, def uint32) uint32 {
	switch {
	case inst != nil:
		return *inst
	case global != nil:
		return *global
	}
	return def
}
