package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"time"
)

// Host answers questions about the machine the configuration will run on.
// Its findings are warnings: a config is often tested on another machine.
type Host interface {
	InterfaceExists(name string) bool
	// Executable returns nil when path (or a name found in $PATH) is an
	// executable file.
	Executable(path string) error
	UserExists(name string) bool
}

// OSHost is the Host this process runs on.
type OSHost struct{}

// InterfaceExists reports whether a network interface of that name exists.
func (OSHost) InterfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// Executable checks the file a script would run.
func (OSHost) Executable(path string) error {
	if !filepath.IsAbs(path) {
		_, err := exec.LookPath(path)
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() || info.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// UserExists reports whether the user name (or uid) is known.
func (OSHost) UserExists(name string) bool {
	if _, err := user.Lookup(name); err == nil {
		return true
	}
	_, err := user.LookupId(name)
	return err == nil
}

func (dc *decoder) checkInterface(pos Pos, name, what string) {
	if dc.opts.Host == nil || name == "" {
		return
	}
	// Each lookup is a netlink dump; a generated config names the same
	// interfaces thousands of times.
	exists, ok := dc.ifaces[name]
	if !ok {
		exists = dc.opts.Host.InterfaceExists(name)
		if dc.ifaces == nil {
			dc.ifaces = map[string]bool{}
		}
		dc.ifaces[name] = exists
	}
	if !exists {
		dc.d.hostf(pos, "%s %s does not exist on this host", what, name)
	}
}

func (dc *decoder) checkScript(pos Pos, s *Script) {
	if dc.opts.Host == nil || s == nil || len(s.Args) == 0 {
		return
	}
	if err := dc.opts.Host.Executable(s.Args[0]); err != nil {
		dc.d.hostf(pos, "script %s cannot be run on this host: %v", s.Args[0], err)
	}
	if s.User != "" {
		dc.checkUser(pos, s.User)
	}
}

func (dc *decoder) checkUser(pos Pos, name string) {
	if dc.opts.Host != nil && name != "" && !dc.opts.Host.UserExists(name) {
		dc.d.hostf(pos, "user %s does not exist on this host", name)
	}
}

// validate checks what no single keyword can: defaults, references between
// blocks and conflicts between instances.
func (dc *decoder) validate() {
	dc.validateTrackers()
	dc.validateInstances()
	dc.validateSyncGroups()
	dc.validateVirtualServers()
	dc.validateLVSSyncDaemon() // decode_vrrp.go
}

func (dc *decoder) validateTrackers() {
	seen := map[string]Pos{}
	for _, s := range dc.cfg.VRRPScripts {
		if p, dup := seen[s.Name]; dup {
			dc.d.errorf(s.Pos, "vrrp_script %s is already defined at %s", s.Name, p)
		}
		seen[s.Name] = s.Pos
		if s.Script == nil {
			dc.d.errorf(s.Pos, "vrrp_script %s has no script", s.Name)
		}
		if s.Timeout == 0 {
			// keepalived's default: the interval.
			s.Timeout = s.Interval
		}
	}
	for _, f := range dc.cfg.VRRPTrackFiles {
		if f.File == "" {
			dc.d.errorf(f.Pos, "%s %s has no file", "vrrp_track_file", f.Name)
		}
	}
	for _, p := range dc.cfg.VRRPTrackProcesses {
		if len(p.Process) == 0 {
			dc.d.errorf(p.Pos, "vrrp_track_process %s has no process", p.Name)
		}
		if p.QuorumMax != 0 && p.QuorumMax < p.Quorum {
			dc.d.errorf(p.At("quorum_max"), "vrrp_track_process %s: quorum_max %d is below quorum %d", p.Name, p.QuorumMax, p.Quorum)
		}
	}
}

// family returns 4 or 6 for the instance's addresses, 0 if it has none.
func instanceFamily(v *VRRPInstance) int {
	if len(v.VirtualIPAddresses) == 0 {
		return 0
	}
	return famOf(v.VirtualIPAddresses[0].Prefix.Addr())
}

func famOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func (dc *decoder) validateInstances() {
	g := &dc.cfg.GlobalDefs
	names := map[string]*VRRPInstance{}
	type vridKey struct {
		iface  string
		vrid   uint8
		family int
	}
	vrids := map[vridKey]*VRRPInstance{}
	scripts := map[string]bool{}
	for _, s := range dc.cfg.VRRPScripts {
		scripts[s.Name] = true
	}
	files := map[string]bool{}
	for _, f := range dc.cfg.VRRPTrackFiles {
		files[f.Name] = true
	}
	procs := map[string]bool{}
	for _, p := range dc.cfg.VRRPTrackProcesses {
		procs[p.Name] = true
	}

	for _, v := range dc.cfg.VRRPInstances {
		if prev, dup := names[v.Name]; dup {
			dc.d.errorf(v.Pos, "vrrp_instance %s is already defined at %s", v.Name, prev.Pos)
			continue
		}
		names[v.Name] = v

		if v.Interface == "" {
			if g.DefaultInterface == "" {
				dc.d.errorf(v.Pos, "vrrp_instance %s: no interface (set interface, or default_interface in global_defs)", v.Name)
			}
			v.Interface = g.DefaultInterface
		}
		if v.VirtualRouterID == 0 && !v.Has("virtual_router_id") {
			dc.d.errorf(v.Pos, "vrrp_instance %s: virtual_router_id is not set", v.Name)
		}
		if !v.Has("priority") {
			v.Priority = 100
		}
		if v.Version == 0 {
			v.Version = g.VRRPVersion
			if v.Version == 0 {
				v.Version = 2
			}
		}
		fam := instanceFamily(v)
		if v.Version == 2 && fam == 6 {
			if v.Has("version") || g.VRRPVersion == 2 {
				dc.d.errorf(v.At("version"), "vrrp_instance %s: VRRPv2 (RFC 3768) carries only IPv4 addresses, but the virtual addresses are IPv6; use version 3", v.Name)
			} else {
				// keepalived's default version is 2 but it switches an IPv6
				// instance to 3 on its own; do the same, silently.
				v.Version = 3
			}
		}
		if !v.Has("advert_int") {
			v.AdvertInt = Duration(time.Second)
		}
		dc.checkAdvertInt(v)
		for _, a := range v.VirtualIPAddresses {
			if famOf(a.Prefix.Addr()) != fam {
				dc.d.errorf(a.Pos, "vrrp_instance %s: %s is IPv%d but the instance's first address is IPv%d; use another instance for the other family", v.Name, a.Prefix, famOf(a.Prefix.Addr()), fam)
			}
		}
		if v.Authentication != nil {
			if v.Version == 3 {
				dc.d.warnf(v.At("authentication"), "vrrp_instance %s: authentication is not part of VRRPv3 (RFC 5798) and is ignored", v.Name)
			} else if v.Authentication.AuthType == "" {
				dc.d.errorf(v.At("authentication"), "vrrp_instance %s: authentication without auth_type", v.Name)
			} else if v.Authentication.AuthType == "AH" {
				// Peers that insist on AH would drop vrrpkit's adverts and
				// both sides would become master: refuse rather than split.
				dc.d.errorf(v.At("authentication"), "vrrp_instance %s: AH authentication (removed from VRRP by RFC 3768) is not supported by vrrpkit; use PASS or none", v.Name)
			}
		}
		if fam != 0 {
			if v.UnicastSrcIP.IsValid() && famOf(v.UnicastSrcIP) != fam {
				dc.d.errorf(v.At("unicast_src_ip"), "vrrp_instance %s: unicast_src_ip %s is not IPv%d like the virtual addresses", v.Name, v.UnicastSrcIP, fam)
			}
			for _, p := range v.UnicastPeers {
				if famOf(p.Addr) != fam {
					dc.d.errorf(p.Pos, "vrrp_instance %s: unicast_peer %s is not IPv%d like the virtual addresses", v.Name, p.Addr, fam)
				}
			}
		}
		if len(v.VirtualIPAddresses) == 0 {
			dc.d.warnf(v.Pos, "vrrp_instance %s has no virtual_ipaddress", v.Name)
		}
		if !v.Preempt && v.State == "MASTER" {
			dc.d.warnf(v.At("nopreempt"), "vrrp_instance %s: nopreempt only works with state BACKUP; the instance still starts as master", v.Name)
		}
		if v.Priority == 255 && v.Has("priority") && !v.Preempt {
			dc.d.warnf(v.At("nopreempt"), "vrrp_instance %s: an address owner (priority 255) always preempts; nopreempt is ignored", v.Name)
			v.Preempt = true
		}
		dc.checkRefs(v.Name, v.TrackScripts, scripts, "track_script", "vrrp_script")
		dc.checkRefs(v.Name, v.TrackFiles, files, "track_file", "vrrp_track_file")
		dc.checkRefs(v.Name, v.TrackProcesses, procs, "track_process", "vrrp_track_process")

		if v.Interface != "" && v.VirtualRouterID != 0 && fam != 0 {
			k := vridKey{v.Interface, v.VirtualRouterID, fam}
			// Unicast instances may share a VRID: their peers tell them apart.
			if len(v.UnicastPeers) == 0 {
				if prev, dup := vrids[k]; dup {
					dc.d.errorf(v.At("virtual_router_id"), "vrrp_instance %s: virtual_router_id %d is already used on %s for IPv%d by vrrp_instance %s (%s)",
						v.Name, v.VirtualRouterID, v.Interface, fam, prev.Name, prev.At("virtual_router_id"))
				} else {
					vrids[k] = v
				}
			}
		}
	}
}

// checkAdvertInt applies RFC 5798 §5.2.7 (v3: 12 bits of centiseconds) and
// RFC 3768 §5.3.7 (v2: 8 bits of seconds).
func (dc *decoder) checkAdvertInt(v *VRRPInstance) {
	d := v.AdvertInt.Std()
	pos := v.At("advert_int")
	switch v.Version {
	case 2:
		if d%time.Second != 0 {
			dc.d.errorf(pos, "vrrp_instance %s: VRRPv2 advert_int must be whole seconds (RFC 3768 §5.3.7), not %v", v.Name, d)
		}
	case 3:
		if d > 4095*10*time.Millisecond {
			dc.d.errorf(pos, "vrrp_instance %s: VRRPv3 advert_int must be at most 40.95 s (RFC 5798 §5.2.7), not %v", v.Name, d)
		} else if d%(10*time.Millisecond) != 0 {
			dc.d.errorf(pos, "vrrp_instance %s: VRRPv3 advert_int must be a multiple of 10 ms (RFC 5798 §5.2.7), not %v", v.Name, d)
		}
	}
}

func (dc *decoder) checkRefs(owner string, refs []TrackedRef, defined map[string]bool, kw, block string) {
	for _, r := range refs {
		if !defined[r.Name] {
			dc.d.errorf(r.Pos, "%s %s: %s %s is not defined", owner, kw, block, r.Name)
		}
	}
}

func (dc *decoder) validateSyncGroups() {
	byName := map[string]*VRRPInstance{}
	for _, v := range dc.cfg.VRRPInstances {
		if _, dup := byName[v.Name]; !dup {
			byName[v.Name] = v
		}
	}
	seen := map[string]bool{}
	for _, g := range dc.cfg.VRRPSyncGroups {
		if seen[g.Name] {
			dc.d.errorf(g.Pos, "vrrp_sync_group %s is already defined", g.Name)
		}
		seen[g.Name] = true
		if len(g.Group) == 0 {
			dc.d.errorf(g.Pos, "vrrp_sync_group %s has no group { } of instances", g.Name)
			continue
		}
		for _, name := range g.Group {
			v, ok := byName[name]
			if !ok {
				dc.d.errorf(g.At("group"), "vrrp_sync_group %s: vrrp_instance %s is not defined", g.Name, name)
				continue
			}
			if v.SyncGroup != "" && v.SyncGroup != g.Name {
				dc.d.errorf(g.At("group"), "vrrp_sync_group %s: vrrp_instance %s is already in vrrp_sync_group %s", g.Name, name, v.SyncGroup)
				continue
			}
			v.SyncGroup = g.Name
		}
		if len(g.Group) == 1 {
			dc.d.warnf(g.At("group"), "vrrp_sync_group %s has only one instance", g.Name)
		}
	}
	dc.warnSyncGroupWeights()
}

// warnSyncGroupWeights says which members' trackers keepalived ignores: in
// a sync group without sync_group_tracking_weight (or global_tracking) a
// weighted tracker of a member is dropped, since one member's priority
// moving alone would split the group (keepalived 2.2.7 logs "(VI_1)
// ignoring tracked script chk with weights due to SYNC group"); a tracked
// interface's weight is ignored, the interface still faults the instance.
// pkg/snapshot applies the same rule.
func (dc *decoder) warnSyncGroupWeights() {
	groups := map[string]*SyncGroup{}
	for _, g := range dc.cfg.VRRPSyncGroups {
		groups[g.Name] = g
	}
	weights := map[string]map[string]struct {
		w        int
		explicit bool
	}{"script": {}, "file": {}, "process": {}}
	for _, s := range dc.cfg.VRRPScripts {
		weights["script"][s.Name] = struct {
			w        int
			explicit bool
		}{s.Weight, true}
	}
	for _, f := range dc.cfg.VRRPTrackFiles {
		weights["file"][f.Name] = struct {
			w        int
			explicit bool
		}{f.Weight, f.Has("weight")}
	}
	for _, p := range dc.cfg.VRRPTrackProcesses {
		weights["process"][p.Name] = struct {
			w        int
			explicit bool
		}{p.Weight, true}
	}
	for _, v := range dc.cfg.VRRPInstances {
		g := groups[v.SyncGroup]
		if g == nil || g.SyncGroupTrackingWeight || g.GlobalTracking {
			continue
		}
		for kind, refs := range map[string][]TrackedRef{"script": v.TrackScripts, "file": v.TrackFiles, "process": v.TrackProcesses} {
			for _, r := range refs {
				def, ok := weights[kind][r.Name]
				if !ok {
					continue
				}
				w, explicit := def.w, def.explicit
				if r.Weight != nil {
					w, explicit = *r.Weight, true
				}
				if w != 0 && explicit {
					dc.d.warnf(r.Pos, "(%s) ignoring tracked %s %s with weights due to SYNC group %s (set sync_group_tracking_weight in it to keep them)", v.Name, kind, r.Name, g.Name)
				}
			}
		}
		for _, t := range v.TrackInterfaces {
			if t.Weight != 0 {
				dc.d.warnf(t.Pos, "(%s) ignoring weight %d of track_interface %s due to SYNC group %s: it faults the instance instead", v.Name, t.Weight, t.Name, g.Name)
			}
		}
	}
}

func (dc *decoder) validateVirtualServers() {
	groups := map[string]*VirtualServerGroup{}
	for _, g := range dc.cfg.VirtualServerGroups {
		if _, dup := groups[g.Name]; dup {
			dc.d.errorf(g.Pos, "virtual_server_group %s is already defined", g.Name)
		}
		groups[g.Name] = g
	}
	for _, vs := range dc.cfg.VirtualServers {
		name := vs.Name()
		fam := 0
		switch {
		case vs.Group != "":
			g, ok := groups[vs.Group]
			if !ok {
				dc.d.errorf(vs.Pos, "virtual_server group %s: virtual_server_group %s is not defined", vs.Group, vs.Group)
			} else if len(g.Entries) == 0 {
				dc.d.warnf(vs.Pos, "virtual_server group %s: the group is empty", vs.Group)
			} else if vs.IPFamily == "" && groupMixesFamilies(g) {
				dc.d.errorf(g.Pos, "virtual_server_group %s has IPv4 and IPv6 addresses and fwmarks without a family; give the fwmarks inet or inet6, or set ip_family in %s", vs.Group, name)
			}
		case vs.Fwmark != 0:
			if vs.Has("protocol") {
				dc.d.warnf(vs.At("protocol"), "%s: protocol is ignored for a fwmark service", name)
			}
		default:
			fam = famOf(vs.IP)
			if vs.Port == 0 && !vs.Has("persistence_timeout") {
				dc.d.warnf(vs.Pos, "%s: port 0 (all ports) is only useful with persistence_timeout", name)
			}
		}
		if vs.IPFamily != "" {
			want := map[string]int{"inet": 4, "inet6": 6}[vs.IPFamily]
			if fam != 0 && fam != want {
				dc.d.errorf(vs.At("ip_family"), "%s: ip_family %s does not match the address", name, vs.IPFamily)
			}
			fam = want
		}
		for _, rs := range vs.RealServers {
			method := rs.LVSMethod
			if method == "" {
				method = vs.LBKind
			}
			// A tunnelled real server may be of the other family (IPVS
			// encapsulates); any other method forwards the packet as is.
			if fam != 0 && method != "TUN" && famOf(rs.IP) != fam {
				dc.d.errorf(rs.Pos, "%s: real_server %s is not of the virtual server's address family (only TUN can mix families)", name, rs.IP)
			}
			if vs.Port == 0 && rs.Port != 0 && vs.Fwmark == 0 && vs.Group == "" {
				dc.d.warnf(rs.Pos, "%s: real_server port %d is ignored for a port-0 service", name, rs.Port)
			}
			// check_data.c validate_check_config: DR and TUN forward to the
			// destination's port unchanged, so keepalived resets a real
			// server's own port to the service's (none under a fwmark).
			if method != "NAT" && method != "" && rs.Port != 0 && vs.Group == "" {
				switch {
				case vs.Fwmark != 0:
					dc.d.warnf(rs.Pos, "%s: real_server %s port %d is ignored: %s keeps the packet's port", name, rs.IP, rs.Port, method)
				case vs.Port != 0 && rs.Port != vs.Port:
					dc.d.warnf(rs.Pos, "%s: real_server %s port %d does not match the service's port %d; %s keeps the packet's port, so %d is used", name, rs.IP, rs.Port, vs.Port, method, vs.Port)
				}
			}
			for _, c := range rs.Checkers {
				dc.validateChecker(name, rs, c)
			}
		}
	}
}

// Name is how messages refer to a virtual server: "virtual_server 10.0.0.1 80".
func (vs *VirtualServer) Name() string {
	switch {
	case vs.Group != "":
		return "virtual_server group " + vs.Group
	case vs.Fwmark != 0:
		return fmt.Sprintf("virtual_server fwmark %d", vs.Fwmark)
	}
	return fmt.Sprintf("virtual_server %s %d", vs.IP, vs.Port)
}

func (dc *decoder) validateChecker(vsName string, rs *RealServer, c *Checker) {
	where := fmt.Sprintf("%s: real_server %s %s", vsName, rs.IP, c.Type)
	switch c.Type {
	case "HTTP_GET", "SSL_GET":
		if len(c.URLs) == 0 {
			dc.d.errorf(c.Pos, "%s has no url { } block", where)
		}
	case "MISC_CHECK":
		if c.MiscPath == nil {
			dc.d.errorf(c.Pos, "%s has no misc_path", where)
		}
	case "FILE_CHECK":
		if c.TrackFile == "" {
			dc.d.errorf(c.Pos, "%s has no track_file", where)
		} else if !dc.hasTrackFile(c.TrackFile) {
			dc.d.errorf(c.At("track_file"), "%s: track_file %s is not defined", where, c.TrackFile)
		}
	}
}

func (dc *decoder) hasTrackFile(name string) bool {
	for _, f := range dc.cfg.VRRPTrackFiles {
		if f.Name == name {
			return true
		}
	}
	return false
}

// groupMixesFamilies reports a group whose fwmark entries' family cannot be
// told from its addresses.
func groupMixesFamilies(g *VirtualServerGroup) bool {
	var v4, v6, mark bool
	for _, e := range g.Entries {
		switch {
		case e.Fwmark != 0:
			mark = mark || e.Family == ""
		case e.IP.Is4():
			v4 = true
		default:
			v6 = true
		}
	}
	return v4 && v6 && mark
}
