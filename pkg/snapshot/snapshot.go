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
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
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
	nftGlobals(g, s.Global)
	lvsGlobals(g, s.Global) // lvsglobals.go
	gd := effectiveGlobals(g)
	tr := indexTrackers(cfg)
	groups := map[string]*config.SyncGroup{}
	for _, sg := range cfg.VRRPSyncGroups {
		groups[sg.Name] = sg
		out := &pb.VrrpSyncGroup{
			Name: sg.Name, DefinedAt: sg.Pos.String(), Instances: sg.Group, Notify: notifyOf(&sg.Notify),
			GlobalTracking: sg.GlobalTracking, SyncGroupTrackingWeight: groupWeights(sg),
			// The group's own trackers keep their weights (vrrp/vrrp_sync.c).
			TrackScript:  trackRefs(sg.TrackScripts, tr.script, false),
			TrackFile:    trackRefs(sg.TrackFiles, tr.file, false),
			TrackProcess: trackRefs(sg.TrackProcesses, tr.process, false),
		}
		for _, t := range sg.TrackInterfaces {
			out.TrackInterface = append(out.TrackInterface, &pb.TrackInterface{Name: t.Name, Weight: int32(t.Weight), Reverse: t.Reverse})
		}
		s.SyncGroups = append(s.SyncGroups, out)
	}
	for _, v := range cfg.VRRPInstances {
		in := instance(g, &gd, v)
		zero := false
		if sg := groups[v.SyncGroup]; sg != nil {
			in.SyncGroup = sg.Name
			zero = !groupWeights(sg)
			if zero {
				for _, t := range in.TrackInterface {
					t.Weight, t.Reverse = 0, false
				}
			}
		}
		in.TrackScript = trackRefs(v.TrackScripts, tr.script, zero)
		in.TrackFile = trackRefs(v.TrackFiles, tr.file, zero)
		in.TrackProcess = trackRefs(v.TrackProcesses, tr.process, zero)
		s.Instances = append(s.Instances, in)
	}
	nameVMACs(g.VMACPrefix, s.Instances)
	for _, sc := range cfg.VRRPScripts {
		s.Scripts = append(s.Scripts, scriptOf(sc))
	}
	for _, f := range cfg.VRRPTrackFiles {
		s.TrackFiles = append(s.TrackFiles, trackFileOf(f))
	}
	for _, p := range cfg.VRRPTrackProcesses {
		s.TrackProcesses = append(s.TrackProcesses, trackProcessOf(p))
	}
	statics(cfg, s)        // static.go
	virtualServers(cfg, s) // lvs.go
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
		in.TrackInterface = append(in.TrackInterface, &pb.TrackInterface{Name: t.Name, Weight: int32(t.Weight), Reverse: t.Reverse})
	}
	in.Notify = notifyOf(&v.Notify)
	if v.UseVMAC != nil {
		in.UseVmac, in.VmacInterface, in.VmacAddr = true, v.UseVMAC.Name, v.UseVMAC.Addr
	}
	in.VmacXmitBase = v.VMACXmitBase
	for _, r := range v.VirtualRoutes {
		in.VirtualRoutes = append(in.VirtualRoutes, routeOf(r))
	}
	for _, r := range v.VirtualRules {
		in.VirtualRules = append(in.VirtualRules, ruleOf(r))
	}
	in.UnicastFaultNoPeer = v.UnicastFaultNoPeer
	switch {
	case v.McastDstIP.IsValid():
		in.McastGroup = v.McastDstIP.String()
	case in.Ipv6 && g.VRRPMcastGroup6.IsValid():
		in.McastGroup = g.VRRPMcastGroup6.String()
	case !in.Ipv6 && g.VRRPMcastGroup4.IsValid():
		in.McastGroup = g.VRRPMcastGroup4.String()
	}
	in.NotifyPriorityChanges = pickB(v.NotifyPriorityChanges, g.VRRPNotifyPriorityChanges)
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

// trackRefs resolves track_script / track_file / track_process entries to
// effective weights: an entry's own `weight N [reverse]` overrides the
// tracker's (vrrp/vrrp_parser.c: vrrp_track_scr_handler and friends).
//
// In a sync group without sync_group_tracking_weight, keepalived drops a
// member's weighted trackers altogether ("(VI_1) ignoring tracked script
// chk with weights due to SYNC group", seen with keepalived 2.2.7), so only
// weight-0 trackers, which fault the instance, are left; a track_file left
// at its default weight is kept with weight 0 instead (vrrp/vrrp_track.c;
// pkg/config warns about each).
func trackRefs(refs []config.TrackedRef, weightOf func(name string) (w int, rev, explicit, ok bool), inGroup bool) []*pb.TrackScript {
	var out []*pb.TrackScript
	for _, r := range refs {
		w, rev, explicit, ok := weightOf(r.Name)
		if !ok {
			continue // validation reported it
		}
		if r.Weight != nil {
			w, rev, explicit = *r.Weight, r.Reverse, true
		}
		if inGroup && w != 0 {
			if explicit {
				continue
			}
			w, rev = 0, false
		}
		out = append(out, &pb.TrackScript{Name: r.Name, Weight: int32(w), Reverse: rev})
	}
	return out
}

// trackers indexes the tracker definitions of cfg by name.
type trackers struct {
	scripts   map[string]*config.VRRPScript
	files     map[string]*config.TrackFileDef
	processes map[string]*config.TrackProcess
}

func indexTrackers(cfg *config.Config) trackers {
	t := trackers{scripts: map[string]*config.VRRPScript{}, files: map[string]*config.TrackFileDef{}, processes: map[string]*config.TrackProcess{}}
	for _, s := range cfg.VRRPScripts {
		t.scripts[s.Name] = s
	}
	for _, f := range cfg.VRRPTrackFiles {
		t.files[f.Name] = f
	}
	for _, p := range cfg.VRRPTrackProcesses {
		t.processes[p.Name] = p
	}
	return t
}

func (t trackers) script(name string) (int, bool, bool, bool) {
	s, ok := t.scripts[name]
	if !ok {
		return 0, false, false, false
	}
	return s.Weight, s.Reverse, true, true
}

func (t trackers) file(name string) (int, bool, bool, bool) {
	f, ok := t.files[name]
	if !ok {
		return 0, false, false, false
	}
	return f.Weight, f.Reverse, f.Has("weight"), true
}

func (t trackers) process(name string) (int, bool, bool, bool) {
	p, ok := t.processes[name]
	if !ok {
		return 0, false, false, false
	}
	return p.Weight, p.Reverse, true, true
}

// groupWeights is keepalived's sync_group_tracking_weight, which the
// deprecated global_tracking also sets (vrrp/vrrp_parser.c).
func groupWeights(sg *config.SyncGroup) bool { return sg.SyncGroupTrackingWeight || sg.GlobalTracking }

// commandLine joins a script's words back into one line for status and
// logs; the supervisor runs config.Script.Args, never this string.
func commandLine(s *config.Script) string {
	if s == nil {
		return ""
	}
	return strings.Join(s.Args, " ")
}

func notifyOf(n *config.Notify) *pb.Notify {
	out := &pb.Notify{
		Master:           commandLine(n.Master),
		Backup:           commandLine(n.Backup),
		Fault:            commandLine(n.Fault),
		Stop:             commandLine(n.Stop),
		Any:              commandLine(n.Any),
		MasterRxLowerPri: commandLine(n.MasterRxLowerPri),
	}
	if proto.Equal(out, &pb.Notify{}) {
		return nil
	}
	return out
}

func scriptOf(s *config.VRRPScript) *pb.VrrpScript {
	out := &pb.VrrpScript{
		Name:          s.Name,
		DefinedAt:     s.Pos.String(),
		Script:        commandLine(s.Script),
		Interval:      durationpb.New(s.Interval.Std()),
		Timeout:       durationpb.New(s.Timeout.Std()),
		Weight:        int32(s.Weight),
		WeightReverse: s.Reverse,
		Rise:          s.Rise,
		Fall:          s.Fall,
		User:          s.User,
		Group:         s.Group,
		InitFail:      s.InitFail,
	}
	if s.Script != nil && out.User == "" {
		out.User, out.Group = s.Script.User, s.Script.Group
	}
	// keepalived: a timeout of 0 means the interval (vrrp/vrrp_parser.c:
	// vrrp_script_timeout_handler's default, set in vrrp_script_end_handler).
	if s.Timeout == 0 {
		out.Timeout = durationpb.New(s.Interval.Std())
	}
	return out
}

func trackFileOf(f *config.TrackFileDef) *pb.VrrpTrackFile {
	out := &pb.VrrpTrackFile{Name: f.Name, DefinedAt: f.Pos.String(), Path: f.File, Weight: int32(f.Weight), WeightReverse: f.Reverse}
	if f.InitFile != nil {
		out.InitFile, out.InitValue, out.InitOverwrite = true, int32(f.InitFile.Value), f.InitFile.Overwrite
	}
	return out
}

func trackProcessOf(p *config.TrackProcess) *pb.VrrpTrackProcess {
	return &pb.VrrpTrackProcess{
		Name: p.Name, DefinedAt: p.Pos.String(), Process: p.Process, ParamMatch: p.ParamMatch,
		Weight: int32(p.Weight), WeightReverse: p.Reverse, Quorum: p.Quorum, QuorumMax: p.QuorumMax,
		DelayDown: durationpb.New(max(p.Delay, p.TerminateDelay).Std()), DelayUp: durationpb.New(max(p.Delay, p.ForkDelay).Std()),
		FullCommand: p.FullCommand,
	}
}

// routeTables are iproute2's reserved table names (rt_tables(5)); other
// names are read from /etc/iproute2/rt_tables by the caller of tableID.
var routeTables = map[string]uint32{"unspec": 0, "default": 253, "main": 254, "local": 255}

// tableID resolves a table name or number; 0 means main (unset).
func tableID(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := routeTables[s]; ok {
		return id
	}
	n, _ := strconv.ParseUint(s, 0, 32)
	return uint32(n)
}

func routeOf(r config.Route) *pb.Route {
	out := &pb.Route{
		DefinedAt: r.Pos.String(), Type: r.Type, Dev: r.Dev, Table: tableID(r.Table), Scope: r.Scope,
		NoTrack: r.NoTrack, Ipv6: r.To.Addr().Is6(),
	}
	if r.To.IsValid() {
		out.To = r.To.String()
	}
	if r.Via.IsValid() {
		out.Via = r.Via.String()
	}
	if r.Src.IsValid() {
		out.Src = r.Src.String()
	}
	if r.Metric != nil {
		out.Metric = *r.Metric
	}
	return out
}

func ruleOf(r config.Rule) *pb.Rule {
	out := &pb.Rule{DefinedAt: r.Pos.String(), Table: tableID(r.Table), Iif: r.Iif, Oif: r.Oif, Action: r.Action, NoTrack: r.NoTrack}
	if r.From.IsValid() {
		out.From, out.Ipv6 = r.From.String(), r.From.Addr().Is6()
	}
	if r.To.IsValid() {
		out.To, out.Ipv6 = r.To.String(), r.To.Addr().Is6()
	}
	if r.Preference != nil {
		out.Priority = *r.Preference
	}
	if r.Fwmark != "" {
		mark, mask, _ := strings.Cut(r.Fwmark, "/")
		m, _ := strconv.ParseUint(mark, 0, 32)
		out.Fwmark = uint32(m)
		if mask != "" {
			k, _ := strconv.ParseUint(mask, 0, 32)
			out.Fwmask = uint32(k)
		}
	}
	return out
}

// nameVMACs gives each use_vmac instance without a configured name
// keepalived's: "<vmac_prefix>.<VRID>" ("vrrp" by default) for both
// families; when that is taken (the same VRID on another interface, or for
// the other family), an IPv6 instance tries "<prefix>6." first, then either
// family "<prefix>1.", "<prefix>2.", ... (vrrp/vrrp.c: create_vmac_name).
func nameVMACs(prefix string, instances []*pb.VrrpInstance) {
	if prefix == "" {
		prefix = "vrrp"
	}
	used := map[string]bool{}
	for _, in := range instances {
		if in.GetUseVmac() && in.GetVmacInterface() != "" {
			used[in.GetVmacInterface()] = true
		}
	}
	for _, in := range instances {
		if !in.GetUseVmac() || in.GetVmacInterface() != "" {
			continue
		}
		vrid := "." + strconv.Itoa(int(in.GetVrid()))
		candidates := []string{prefix + vrid}
		if in.GetIpv6() {
			candidates = append(candidates, prefix+"6"+vrid)
		}
		for i := 1; i <= 9; i++ {
			candidates = append(candidates, prefix+strconv.Itoa(i)+vrid)
		}
		for _, c := range candidates {
			if !used[c] {
				in.VmacInterface = c
				used[c] = true
				break
			}
		}
	}
}
