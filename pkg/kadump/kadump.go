// Package kadump renders keepalived's dump files from vrrpkit's status: the
// text keepalived 2.2.7 writes to /tmp/keepalived.data on SIGUSR1
// (vrrp_print_data, keepalived/vrrp/vrrp_print.c, which calls
// dump_data_vrrp in vrrp_data.c) and to /tmp/keepalived.stats on SIGUSR2
// (vrrp_print_stats). Scripts and habits built on those files (grep the
// State line, count "Sent:") keep working against vrrpkit.
//
// The layout is keepalived's: the same "------< Section >------" headers,
// the same " Entry = name" lines and "   Key = value" lines in the same
// order, for what vrrpkit knows. What vrrpkit has no notion of is either
// left out (whole sections and keys keepalived prints only when set, such
// as the sync group and script sections, which are not rendered yet) or
// filled conservatively, and each such place says so where it is written.
// The golden tests compare the section and key structure with files the
// real keepalived wrote for the same configuration (testdata/).
//
// The package is pure: its inputs are the supervisor's status, the running
// configuration snapshot and the host's interfaces, which the caller reads.
package kadump

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Interface is one network interface as the data file's Interfaces section
// shows it (keepalived's dump_if, vrrp_if.c).
type Interface struct {
	Name  string
	Index int
	// IPv4 is the primary address ("" none); IPv6 the link-local address
	// keepalived prefers for VRRP ("" none).
	IPv4, IPv6 string
	// MAC and Broadcast: "" for an interface without a hardware address.
	MAC, Broadcast string
	Up, Running    bool
	// The IFF_ flags State lists.
	Broadcasting, Loopback, PointToPoint, NoARP, Multicast bool
	MTU                                                    int
	// HWType is keepalived's name of the link type: "ETHERNET",
	// "LOOPBACK", ...
	HWType string
}

// Input is what Data renders.
type Input struct {
	Status *pb.SupervisorStatusResponse
	// Config is the running configuration (its generation should be the
	// status's); instances missing from it are rendered from status alone.
	Config *pb.ConfigSnapshot
	// Interfaces of the host (vrrpd's network namespace); nil omits the
	// Interfaces section.
	Interfaces []Interface
	// Location for times (Last transition); nil means time.Local, as
	// keepalived's ctime.
	Location *time.Location
}

// Data renders keepalived.data.
func Data(in Input) string {
	var w writer
	cfg := in.Config
	if cfg == nil {
		cfg = &pb.ConfigSnapshot{}
	}
	loc := in.Location
	if loc == nil {
		loc = time.Local
	}
	confs := map[string]*pb.VrrpInstance{}
	for _, c := range cfg.GetInstances() {
		confs[c.GetName()] = c
	}
	ifaces := map[string]Interface{}
	for _, ifc := range in.Interfaces {
		ifaces[ifc.Name] = ifc
	}

	writeGlobals(&w, cfg.GetGlobal())
	if len(cfg.GetStaticIpaddress()) > 0 {
		w.line("------< Static Addresses >------")
		for _, a := range cfg.GetStaticIpaddress() {
			// Static addresses are always held (keepalived sets them at
			// start); vrrpkit's vrrpd does too.
			w.line("     %s", formatAddress(a, "", true))
		}
	}
	insts := in.Status.GetInstances()
	if len(insts) > 0 {
		w.line("------< VRRP Topology >------")
		for _, st := range insts {
			writeInstance(&w, st, confs[st.GetName()], cfg.GetGlobal(), ifaces, loc)
		}
		writeSockpool(&w, insts, confs)
	}
	writeSyncGroups(&w, cfg, insts)
	writeScripts(&w, cfg, insts)
	writeTrackFiles(&w, cfg, insts)
	writeTrackProcesses(&w, cfg, insts)
	if len(in.Interfaces) > 0 {
		w.line("------< Interfaces >------")
		list := append([]Interface(nil), in.Interfaces...)
		sort.SliceStable(list, func(i, j int) bool { return list[i].Index < list[j].Index })
		for _, ifc := range list {
			writeInterface(&w, ifc, insts, confs)
		}
	}
	return w.String()
}

// writer is conf_write: one line per call, newline-terminated.
type writer struct{ b strings.Builder }

func (w *writer) line(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

func (w *writer) String() string { return w.b.String() }

// writeGlobals is the part of dump_global_data (core/global_data.c) that
// vrrpkit's snapshot carries, in keepalived's order. keepalived prints
// some eighty lines here, most of them about features vrrpkit does not
// have (SNMP, DBus, process priorities, netlink buffer sizes); printing
// keepalived's defaults for those would claim settings vrrpkit does not
// apply, so they are left out.
func writeGlobals(w *writer, g *pb.GlobalDefs) {
	w.line("------< Global definitions >------")
	// vrrpkit runs in the namespace it is started in (no net_namespace).
	w.line(" Network namespace = (default)")
	if id := g.GetRouterId(); id != "" {
		w.line(" Router ID = %s", id)
	}
	w.line(" VRRP IPv4 mcast group = %s", orDefault(g.GetVrrpMcastGroup4(), "224.0.0.18"))
	w.line(" VRRP IPv6 mcast group = %s", orDefault(g.GetVrrpMcastGroup6(), "ff02::12"))
	w.line(" VRRP strict mode = %t", g.GetVrrpStrict())
	if g.GetEnableScriptSecurity() {
		w.line(" Script security enabled")
	} else {
		w.line(" Script security disabled")
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stateStr is keepalived's get_state_str.
func stateStr(s pb.VrrpState) string {
	switch s {
	case pb.VrrpState_VRRP_STATE_BACKUP:
		return "BACKUP"
	case pb.VrrpState_VRRP_STATE_MASTER:
		return "MASTER"
	case pb.VrrpState_VRRP_STATE_FAULT:
		return "FAULT"
	case pb.VrrpState_VRRP_STATE_STOP:
		return "STOP"
	}
	return "INIT"
}

// writeInstance is dump_vrrp (vrrp/vrrp_data.c) for one instance; c may be
// nil (an instance vrrpd reports that the snapshot lacks).
func writeInstance(w *writer, st *pb.InstanceStatus, c *pb.VrrpInstance, g *pb.GlobalDefs, ifaces map[string]Interface, loc *time.Location) {
	if c == nil {
		c = &pb.VrrpInstance{Name: st.GetName(), Interface: st.GetInterface(), Vrid: st.GetVrid(), Priority: st.GetPriority(), Version: 2}
	}
	version := c.GetVersion()
	if version == 0 {
		version = 2
	}
	state := st.GetState()
	backup := state == pb.VrrpState_VRRP_STATE_BACKUP
	w.line(" VRRP Instance = %s", st.GetName())
	w.line("   VRRP Version = %d", version)
	if sg := orDefault(st.GetSyncGroup(), c.GetSyncGroup()); sg != "" {
		w.line("   Sync group = %s", sg)
	}
	if c.GetIpv6() {
		w.line("   Using Native IPv6")
	}
	w.line("   State = %s", stateStr(state))
	advert := c.GetAdvertInt().AsDuration()
	if advert <= 0 {
		advert = time.Second
	}
	masterAdvert := advert
	if backup {
		// The master is the peer whose address status reports; its
		// priority and interval are from its last advert.
		var prio uint32
		for _, p := range st.GetPeers() {
			if p.GetAddress() == st.GetMasterAddr() {
				prio = p.GetPriority()
				if d := p.GetAdvertInterval().AsDuration(); d > 0 {
					masterAdvert = d
				}
			}
		}
		w.line("   Master router = %s", orDefault(st.GetMasterAddr(), unknownAddr(c.GetIpv6())))
		w.line("   Master priority = %d", prio)
		if version == 3 {
			w.line("   Master advert int = %.2f sec", masterAdvert.Seconds())
		}
	}
	unicast := len(c.GetUnicastPeer()) > 0
	// keepalived prints "Flags: none" only when no flag bit at all is set;
	// bits it does not list (nopreempt, a configured source address, ...)
	// still make it print a bare "Flags:" (captured from 2.2.7). These are
	// the configuration settings that set one.
	flagged := unicast || c.GetNopreempt() || c.GetDontTrackPrimary() || c.GetSkipCheckAdvAddr() ||
		c.GetUnicastSrcIp() != "" || c.GetUnicastFaultNoPeer() || c.GetUseVmac()
	if flagged {
		w.line("   Flags:")
		if unicast {
			w.line("     Using unicast")
		}
		if c.GetUnicastFaultNoPeer() {
			w.line("     If unicast go to fault state if no peers")
		}
	} else {
		w.line("   Flags: none")
	}
	// vrrpd moves to a state as soon as it wants it: the wanted state is
	// the state.
	w.line("   Wantstate = %s", stateStr(state))
	w.line("   Number of config faults = 0")
	w.line("   Number of interface and track script faults = %d", len(st.GetFaultReasons()))
	// vrrpd starts a script tracker as down or up, never "init".
	w.line("   Number of track scripts init = 0")
	since := st.GetStateSince().AsTime()
	if st.GetStateSince() == nil {
		since = time.Unix(0, 0)
	}
	w.line("   Last transition = %d.%06d (%s)", since.Unix(), since.Nanosecond()/1000, ctimeUS(since.In(loc)))
	// vrrpd's timer deadlines are not in its status: keepalived's
	// disabled-timer spelling, rather than a made-up time.
	w.line("   Read timeout = DISABLED")
	// RFC 5798 §6.1 Master_Down_Interval as keepalived computes it
	// (vrrp.c vrrp_init_instance_sands: 3 * master_adver_int + skew, with
	// skew = (256 - priority) * master_adver_int / 256), in microseconds.
	// keepalived's VRRP_TIMER_SKEW uses the effective priority; VRRPv2's
	// skew is (256 - priority) / 256 of a second whatever the interval.
	us := masterAdvert.Microseconds()
	prio := int64(st.GetEffectivePriority())
	if prio == 0 {
		prio = int64(c.GetPriority())
	}
	skew := (256 - prio) * us / 256
	if version == 2 {
		skew = (256 - prio) * 1000000 / 256
	}
	w.line("   Master down timer = %d usecs", 3*us+skew)
	iface := orDefault(c.GetInterface(), st.GetInterface())
	vipDev := iface
	if c.GetUseVmac() {
		vname := vmacName(c)
		// keepalived's format_ipaddress: the VMAC and its base interface.
		vipDev = vname + "@" + iface
		up := state == pb.VrrpState_VRRP_STATE_MASTER || state == pb.VrrpState_VRRP_STATE_BACKUP
		w.line("   Use VMAC, i/f name %s, is_up = %t, xmit_base = %t", vname, up, c.GetVmacXmitBase())
		w.line("   Interface = %s, vmac on %s%s", vname, iface, map[bool]string{true: ", xmit base i/f"}[c.GetVmacXmitBase()])
	} else {
		w.line("   Interface = %s", orDefault(iface, "not configured"))
	}
	if c.GetDontTrackPrimary() {
		w.line("   VRRP interface tracking disabled")
	}
	if c.GetSkipCheckAdvAddr() {
		w.line("   Skip checking advert IP addresses")
	}
	if g.GetVrrpStrict() {
		w.line("   Enforcing strict VRRP compliance")
	}
	src, fromConfig := c.GetUnicastSrcIp(), c.GetUnicastSrcIp() != ""
	if src == "" && state == pb.VrrpState_VRRP_STATE_MASTER {
		src = st.GetMasterAddr()
	}
	if src == "" {
		if ifc, ok := ifaces[iface]; ok {
			src = ifc.IPv4
			if c.GetIpv6() {
				src = ifc.IPv6
			}
		}
	}
	w.line("   Using src_ip = %s%s", orDefault(src, "(none)"), map[bool]string{true: " (from configuration)"}[fromConfig])
	if !unicast {
		if c.GetIpv6() {
			group := orDefault(c.GetMcastGroup(), orDefault(g.GetVrrpMcastGroup6(), "ff02::12"))
			w.line("   Multicast address %s, ifindex %d", group, ifaces[iface].Index)
		} else {
			w.line("   Multicast address %s", orDefault(c.GetMcastGroup(), orDefault(g.GetVrrpMcastGroup4(), "224.0.0.18")))
		}
	}
	// The snapshot's garp settings are effective values (the supervisor
	// folds in keepalived's defaults); without any, keepalived's defaults
	// (global_data.c: delay 5 s, repeat 5, refresh 0, refresh repeat 1,
	// lower priority ones as delay and repeat).
	garp := c.GetGarp()
	if garp == nil {
		garp = &pb.GarpSettings{MasterDelay: durationpb.New(5 * time.Second), MasterRepeat: 5, MasterRefreshRepeat: 1,
			LowerPrioDelay: durationpb.New(5 * time.Second), LowerPrioRepeat: 5}
	}
	w.line("   Gratuitous ARP delay = %d", seconds(garp.GetMasterDelay()))
	w.line("   Gratuitous ARP repeat = %d", garp.GetMasterRepeat())
	w.line("   Gratuitous ARP refresh = %d", seconds(garp.GetMasterRefresh()))
	w.line("   Gratuitous ARP refresh repeat = %d", garp.GetMasterRefreshRepeat())
	w.line("   Gratuitous ARP lower priority delay = %d", seconds(garp.GetLowerPrioDelay()))
	w.line("   Gratuitous ARP lower priority repeat = %d", garp.GetLowerPrioRepeat())
	// vrrp_down_timer_adverts is not configurable in vrrpkit: RFC 5798's 3.
	w.line("   Down timer adverts = 3")
	w.line("   Send advert after receive lower priority advert = %t", !c.GetLowerPrioNoAdvert())
	w.line("   Send advert after receive higher priority advert = %t", c.GetHigherPrioSendAdvert())
	w.line("   Virtual Router ID = %d", c.GetVrid())
	w.line("   Priority = %d", c.GetPriority())
	w.line("   Effective priority = %d", st.GetEffectivePriority())
	// keepalived's total priority is the effective one before it is
	// clamped to 1..254; vrrpd reports only the clamped value.
	w.line("   Total priority = %d", st.GetEffectivePriority())
	if version == 2 {
		w.line("   Advert interval = %d sec", int64(advert/time.Second))
	} else {
		w.line("   Advert interval = %d milli-sec", advert.Milliseconds())
	}
	if backup && version == 3 {
		w.line("   Master advert interval = %d milli-sec", masterAdvert.Milliseconds())
	}
	w.line("   Accept = %s", enabled(c.GetAccept()))
	w.line("   Preempt = %s", enabled(!c.GetNopreempt()))
	if d := c.GetPreemptDelay().AsDuration(); d > 0 {
		w.line("   Preempt delay = %s secs", strconv.FormatFloat(d.Seconds(), 'g', 6, 64))
	}
	// vrrpkit has no promote_secondaries.
	w.line("   Promote_secondaries = disabled")
	switch c.GetAuthType() {
	case pb.AuthType_AUTH_TYPE_PASS:
		w.line("   Authentication type = SIMPLE_PASSWORD")
		w.line("   Password = %s", c.GetAuthPass())
	case pb.AuthType_AUTH_TYPE_AH:
		w.line("   Authentication type = IPSEC_AH")
	default:
		if version == 2 {
			w.line("   Authentication type = none")
		}
	}
	held := state == pb.VrrpState_VRRP_STATE_MASTER
	if vips := c.GetVirtualIpaddress(); len(vips) > 0 {
		w.line("   Virtual IP (%d):", len(vips))
		for _, a := range vips {
			w.line("     %s", formatAddress(a, vipDev, held))
		}
	} else if len(st.GetVirtualIpaddress()) > 0 && len(c.GetVirtualIpaddressExcluded()) == 0 {
		// No snapshot: status has the prefixes.
		w.line("   Virtual IP (%d):", len(st.GetVirtualIpaddress()))
		for _, p := range st.GetVirtualIpaddress() {
			w.line("     %s", formatAddress(&pb.VirtualAddress{Prefix: p}, vipDev, held))
		}
	}
	if evips := c.GetVirtualIpaddressExcluded(); len(evips) > 0 {
		w.line("   Virtual IP Excluded :")
		for _, a := range evips {
			w.line("     %s", formatAddress(a, vipDev, held))
		}
	}
	if unicast {
		// vrrpkit sends unicast adverts with TTL 255, as keepalived does
		// when unicast_ttl is not set, and checks no TTL range.
		w.line("   Unicast TTL = 255")
		w.line("   Check unicast src : no")
		w.line("   Unicast Peer :")
		for _, p := range c.GetUnicastPeer() {
			w.line("     %s min_ttl 0 max_ttl 255", p)
		}
		// vrrpkit has no old-keepalived checksum compatibility mode.
		w.line("   Unicast checksum compatibility = no")
	}
	// The socket descriptors are vrrpd's and not in its status: -1, the
	// value that names no descriptor.
	w.line("   fd_in -1, fd_out -1")
	if rs := c.GetVirtualRoutes(); len(rs) > 0 {
		w.line("   Virtual Routes :")
		for _, r := range rs {
			w.line("     %s", formatRoute(r))
		}
	}
	if rs := c.GetVirtualRules(); len(rs) > 0 {
		w.line("   Virtual Rules :")
		for _, r := range rs {
			w.line("     %s", formatRule(r))
		}
	}
	if ts := c.GetTrackInterface(); len(ts) > 0 {
		w.line("   Tracked interfaces :")
		for _, t := range ts {
			w.line("     %s weight %d%s", t.GetName(), t.GetWeight(), reverse(t.GetReverse()))
		}
	}
	if ts := c.GetTrackScript(); len(ts) > 0 {
		w.line("   Tracked scripts :")
		for _, t := range ts {
			w.line("     %s weight %d%s", t.GetName(), t.GetWeight(), reverse(t.GetReverse()))
		}
	}
	if ts := c.GetTrackFile(); len(ts) > 0 {
		w.line("   Tracked files :")
		for _, t := range ts {
			w.line("     %s, weight %d%s", t.GetName(), t.GetWeight(), reverse(t.GetReverse()))
		}
	}
	if ts := c.GetTrackProcess(); len(ts) > 0 {
		w.line("   Tracked processes :")
		for _, t := range ts {
			w.line("     %s, weight %d%s", t.GetName(), t.GetWeight(), reverse(t.GetReverse()))
		}
	}
	// vrrpkit's smtp_alert is not in the snapshot per instance; keepalived's
	// default is no.
	w.line("   Using smtp notification = no")
	// notify_deleted is not in the snapshot: keepalived's default.
	w.line("   Notify deleted = Fault")
	n := c.GetNotify()
	for _, s := range []struct{ kind, cmd string }{
		{"Backup", n.GetBackup()}, {"Master", n.GetMaster()}, {"Fault", n.GetFault()}, {"Stop", n.GetStop()},
		{"Generic", n.GetAny()}, {"Master rx lower pri", n.GetMasterRxLowerPri()},
	} {
		if s.cmd != "" {
			// The uid:gid the script runs as is resolved by the supervisor
			// when it runs it; the names configured stand in for them.
			w.line("   %s state transition script = %s, uid:gid %s:%s", s.kind, cmdStr(s.cmd),
				orDefault(n.GetUser(), orDefault(g.GetScriptUser(), "0")), orDefault(n.GetGroup(), orDefault(g.GetScriptGroup(), "0")))
		}
	}
	w.line("   Notify priority changes = %t", c.GetNotifyPriorityChanges())
}

// vmacName is the instance's VMAC interface: vmac_interface, else
// keepalived's default vrrp.VRID.
func vmacName(c *pb.VrrpInstance) string {
	return orDefault(c.GetVmacInterface(), fmt.Sprintf("vrrp.%d", c.GetVrid()))
}

// cmdStr is keepalived's cmd_str (lib/notify.c): each word of the command
// in single quotes. (keepalived also shows the path it resolved the
// program to; the command is shown as configured here.)
func cmdStr(cmd string) string {
	words := strings.Fields(cmd)
	if len(words) == 0 {
		return ""
	}
	return "'" + strings.Join(words, "' '") + "'"
}

func unknownAddr(ipv6 bool) string {
	if ipv6 {
		return "::"
	}
	return "0.0.0.0"
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func reverse(b bool) string {
	if b {
		return " reverse"
	}
	return ""
}

// ctimeUS is keepalived's ctime_us_r (lib/utils.c): asctime with
// microseconds before the year.
func ctimeUS(t time.Time) string {
	return t.Format("Mon Jan _2 15:04:05.000000 2006")
}

// seconds is a duration in whole seconds, as keepalived prints timers
// (value / TIMER_HZ).
func seconds(d *durationpb.Duration) int64 {
	return int64(d.AsDuration() / time.Second)
}

// formatAddress is format_ipaddress (vrrp/vrrp_ipaddress.c) for what the
// snapshot has: prefix, brd, dev, scope, label, no_track, and " set" when
// the address is on the interface.
func formatAddress(a *pb.VirtualAddress, iface string, held bool) string {
	var b strings.Builder
	b.WriteString(a.GetPrefix())
	if a.GetBroadcast() != "" {
		b.WriteString(" brd " + a.GetBroadcast())
	}
	b.WriteString(" dev " + orDefault(a.GetDev(), iface))
	b.WriteString(" scope " + orDefault(a.GetScope(), "global"))
	if a.GetLabel() != "" {
		b.WriteString(" label " + a.GetLabel())
	}
	if a.GetNoTrack() {
		b.WriteString(" no_track")
	}
	if p, err := netip.ParsePrefix(a.GetPrefix()); err == nil && p.Addr().Is6() {
		// keepalived's default lifetime for a VIP.
		b.WriteString(" preferred_lft forever")
	}
	if held {
		b.WriteString(" set")
	}
	return b.String()
}

// formatRoute is an abridged format_iproute (vrrp/vrrp_iproute.c).
func formatRoute(r *pb.Route) string {
	var b strings.Builder
	if r.GetType() != "" {
		b.WriteString(r.GetType() + " ")
	}
	b.WriteString(r.GetTo())
	if r.GetVia() != "" {
		b.WriteString(" via " + r.GetVia())
	}
	if r.GetSrc() != "" {
		b.WriteString(" src " + r.GetSrc())
	}
	if r.GetDev() != "" {
		b.WriteString(" dev " + r.GetDev())
	}
	if r.GetTable() != 0 {
		fmt.Fprintf(&b, " table %d", r.GetTable())
	}
	if r.GetMetric() != 0 {
		fmt.Fprintf(&b, " metric %d", r.GetMetric())
	}
	if r.GetScope() != "" {
		b.WriteString(" scope " + r.GetScope())
	}
	if r.GetNoTrack() {
		b.WriteString(" no_track")
	}
	return b.String()
}

// formatRule is an abridged format_iprule (vrrp/vrrp_iprule.c).
func formatRule(r *pb.Rule) string {
	var parts []string
	if r.GetFrom() != "" {
		parts = append(parts, "from "+r.GetFrom())
	}
	if r.GetTo() != "" {
		parts = append(parts, "to "+r.GetTo())
	}
	if r.GetPriority() != 0 {
		parts = append(parts, fmt.Sprintf("priority %d", r.GetPriority()))
	}
	if r.GetFwmark() != 0 {
		parts = append(parts, fmt.Sprintf("fwmark 0x%x", r.GetFwmark()))
	}
	if r.GetIif() != "" {
		parts = append(parts, "iif "+r.GetIif())
	}
	if r.GetOif() != "" {
		parts = append(parts, "oif "+r.GetOif())
	}
	if r.GetAction() != "" {
		parts = append(parts, r.GetAction())
	} else if r.GetTable() != 0 {
		parts = append(parts, fmt.Sprintf("lookup %d", r.GetTable()))
	}
	if r.GetNoTrack() {
		parts = append(parts, "no_track")
	}
	return strings.Join(parts, " ")
}

// writeSockpool is dump_sock_pool (vrrp/vrrp_data.c): keepalived shares a
// socket among the instances of one interface, family and unicast source,
// which is how vrrpd groups them too.
func writeSockpool(w *writer, insts []*pb.InstanceStatus, confs map[string]*pb.VrrpInstance) {
	type key struct {
		iface   string
		ipv6    bool
		unicast string
	}
	var order []key
	members := map[key][]*pb.InstanceStatus{}
	for _, st := range insts {
		c := confs[st.GetName()]
		k := key{iface: orDefault(c.GetInterface(), st.GetInterface()), ipv6: c.GetIpv6()}
		if c.GetUseVmac() {
			// A VMAC instance sends and receives on its macvlan.
			k.iface = vmacName(c)
		}
		if len(c.GetUnicastPeer()) > 0 {
			k.unicast = orDefault(c.GetUnicastSrcIp(), "(none)")
		}
		if _, ok := members[k]; !ok {
			order = append(order, k)
		}
		members[k] = append(members[k], st)
	}
	w.line("------< VRRP Sockpool >------")
	for _, k := range order {
		// As in the instances: vrrpd's descriptors are not known here.
		w.line(" fd_in -1 fd_out = -1")
		w.line("   Interface = %s", k.iface)
		w.line("   Family = %s", map[bool]string{false: "IPv4", true: "IPv6"}[k.ipv6])
		// vrrpkit has no IPsec AH socket: AH adverts go over proto 112 too.
		w.line("   Protocol = VRRP")
		if k.unicast != "" {
			w.line("   Type = Unicast")
			w.line("   Address = %s", k.unicast)
		} else {
			w.line("   Type = Multicast")
		}
		// vrrpd leaves the receive buffer at the kernel's default, which is
		// what keepalived's 0 means.
		w.line("   Rx buf size = 0")
		w.line("   VRRP instances")
		ms := members[k]
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].GetVrid() < ms[j].GetVrid() })
		for _, st := range ms {
			w.line("     %s vrid %d", st.GetName(), st.GetVrid())
		}
	}
}

// writeInterface is the part of dump_if (vrrp/vrrp_if.c) that the host's
// interface list gives; keepalived's internal state (debounce timers,
// saved sysctls) is left out.
func writeInterface(w *writer, ifc Interface, insts []*pb.InstanceStatus, confs map[string]*pb.VrrpInstance) {
	w.line(" Name = %s", ifc.Name)
	w.line("   index = %d", ifc.Index)
	w.line("   IPv4 address = %s", orDefault(ifc.IPv4, "(none)"))
	w.line("   IPv6 address = %s", orDefault(ifc.IPv6, "(none)"))
	if ifc.MAC != "" {
		w.line("   MAC = %s", ifc.MAC)
		w.line("   MAC broadcast = %s", ifc.Broadcast)
	}
	var s strings.Builder
	s.WriteString(map[bool]string{false: "not "}[ifc.Up] + "UP, " + map[bool]string{false: "not "}[ifc.Running] + "RUNNING")
	if !ifc.Broadcasting {
		s.WriteString(", no broadcast")
	}
	if ifc.Loopback {
		s.WriteString(", loopback")
	}
	if ifc.PointToPoint {
		s.WriteString(", point to point")
	}
	if ifc.NoARP {
		s.WriteString(", no arp")
	}
	if !ifc.Multicast {
		s.WriteString(", no multicast")
	}
	w.line("   State = %s", s.String())
	w.line("   MTU = %d", ifc.MTU)
	w.line("   HW Type = %s", orDefault(ifc.HWType, "UNKNOWN"))
	// The instances on this interface (keepalived lists every tracking
	// instance, weight 0 for the instance's own interface).
	var tracking []string
	for _, st := range insts {
		c := confs[st.GetName()]
		if orDefault(c.GetInterface(), st.GetInterface()) == ifc.Name || (c.GetUseVmac() && vmacName(c) == ifc.Name) {
			tracking = append(tracking, fmt.Sprintf("     %s, weight 0", st.GetName()))
		}
		for _, t := range c.GetTrackInterface() {
			if t.GetName() == ifc.Name {
				tracking = append(tracking, fmt.Sprintf("     %s, weight %d%s", st.GetName(), t.GetWeight(), reverse(t.GetReverse())))
			}
		}
	}
	if len(tracking) > 0 {
		w.line("   Tracking VRRP instances :")
		for _, t := range tracking {
			w.line("%s", t)
		}
	}
}

// Stats renders keepalived.stats (vrrp_print_stats, vrrp/vrrp_print.c):
// each instance's counters, with vrrpkit's drop reasons folded into
// keepalived's error counters.
func Stats(st *pb.SupervisorStatusResponse) string {
	var w writer
	for _, in := range st.GetInstances() {
		c := in.GetCounters()
		drops := map[string]uint64{}
		for _, d := range c.GetDrops() {
			drops[d.GetReason()] += d.GetCount()
		}
		n := func(rs ...vrrp.DropReason) uint64 {
			var sum uint64
			for _, r := range rs {
				sum += drops[r.String()]
			}
			return sum
		}
		w.line("VRRP Instance: %s", in.GetName())
		w.line("  Advertisements:")
		w.line("    Received: %d", c.GetAdvertsReceived())
		w.line("    Sent: %d", c.GetAdvertsSent())
		w.line("  Became master: %d", c.GetBecameMaster())
		w.line("  Released master: %d", c.GetReleasedMaster())
		w.line("  Packet Errors:")
		// keepalived's packet_len_err counts both a short packet and a
		// length that disagrees with the address count.
		w.line("    Length: %d", n(vrrp.DropTooShort, vrrp.DropBadLength))
		w.line("    TTL: %d", n(vrrp.DropBadTTL))
		w.line("    Invalid Type: %d", n(vrrp.DropBadType))
		w.line("    Advertisement Interval: %d", n(vrrp.DropIntervalMismatch))
		w.line("    Address List: %d", n(vrrp.DropAddrListMismatch))
		w.line("  Authentication Errors:")
		w.line("    Invalid Type: %d", n(vrrp.DropBadAuthType))
		w.line("    Type Mismatch: %d", n(vrrp.DropAuthTypeMismatch))
		w.line("    Failure: %d", n(vrrp.DropAuthMismatch))
		w.line("  Priority Zero:")
		w.line("    Received: %d", c.GetPriorityZeroReceived())
		w.line("    Sent: %d", c.GetPriorityZeroSent())
	}
	return w.String()
}

// memberState is a sync group's state from its members' (vrrp_sync.c):
// FAULT if any is, MASTER if all are, else BACKUP (INIT before any ran).
func memberState(members []string, byName map[string]*pb.InstanceStatus) string {
	all, fault, seen := true, false, false
	for _, m := range members {
		st, ok := byName[m]
		if !ok {
			continue
		}
		seen = true
		switch st.GetState() {
		case pb.VrrpState_VRRP_STATE_FAULT:
			fault = true
		case pb.VrrpState_VRRP_STATE_MASTER:
		default:
			all = false
		}
	}
	switch {
	case !seen:
		return "INIT"
	case fault:
		return "FAULT"
	case all:
		return "MASTER"
	}
	return "BACKUP"
}

// writeSyncGroups is dump_sync_group (vrrp/vrrp_data.c).
func writeSyncGroups(w *writer, cfg *pb.ConfigSnapshot, insts []*pb.InstanceStatus) {
	if len(cfg.GetSyncGroups()) == 0 {
		return
	}
	byName := map[string]*pb.InstanceStatus{}
	for _, st := range insts {
		byName[st.GetName()] = st
	}
	w.line("------< VRRP Sync groups >------")
	for _, g := range cfg.GetSyncGroups() {
		nfault, ninit := 0, 0
		for _, m := range g.GetInstances() {
			switch byName[m].GetState() {
			case pb.VrrpState_VRRP_STATE_FAULT:
				nfault++
			case pb.VrrpState_VRRP_STATE_INIT, pb.VrrpState_VRRP_STATE_UNSPECIFIED:
				ninit++
			}
		}
		w.line(" VRRP Sync Group = %s, %s", g.GetName(), memberState(g.GetInstances(), byName))
		w.line("   Num member fault %d, num member init %d", nfault, ninit)
		if len(g.GetInstances()) > 0 {
			w.line("   VRRP member instances :")
			for _, m := range g.GetInstances() {
				w.line("     %s", m)
			}
		}
		if g.GetSyncGroupTrackingWeight() {
			w.line("   sync group tracking weight set")
		}
		w.line("   Using smtp notification = no")
		for _, list := range []struct {
			title string
			ts    []*pb.TrackScript
		}{{"Tracked scripts", g.GetTrackScript()}, {"Tracked files", g.GetTrackFile()}, {"Tracked process", g.GetTrackProcess()}} {
			if list.title == "Tracked scripts" && len(g.GetTrackInterface()) > 0 {
				w.line("   Tracked interfaces :")
				for _, t := range g.GetTrackInterface() {
					w.line("     %s weight %d%s", t.GetName(), t.GetWeight(), reverse(t.GetReverse()))
				}
			}
			if len(list.ts) == 0 {
				continue
			}
			w.line("   %s :", list.title)
			for _, t := range list.ts {
				w.line("     %s weight %d%s", t.GetName(), t.GetWeight(), reverse(t.GetReverse()))
			}
		}
		n := g.GetNotify()
		for _, s := range []struct{ kind, cmd string }{
			{"Backup", n.GetBackup()}, {"Master", n.GetMaster()}, {"Fault", n.GetFault()}, {"Stop", n.GetStop()}, {"Generic", n.GetAny()},
		} {
			if s.cmd != "" {
				w.line("   %s state transition script = %s, uid:gid %s:%s", s.kind, cmdStr(s.cmd),
					orDefault(n.GetUser(), orDefault(cfg.GetGlobal().GetScriptUser(), "0")), orDefault(n.GetGroup(), orDefault(cfg.GetGlobal().GetScriptGroup(), "0")))
			}
		}
	}
}

// trackers are, for one tracker kind, the instances that track each
// tracker name with their weight, and what vrrpd last saw of it.
type trackers struct {
	users  map[string][]string // name -> "     VI_1, weight 10" lines
	status map[string]*pb.TrackedStatus
}

// collectTrackers gathers the instances tracking each tracker of a kind;
// keepalived only lists, and only keeps, the trackers something uses
// ("Warning - script chk is not used").
func collectTrackers(cfg *pb.ConfigSnapshot, insts []*pb.InstanceStatus, kind pb.TrackerKind, list func(*pb.VrrpInstance) []*pb.TrackScript) trackers {
	tr := trackers{users: map[string][]string{}, status: map[string]*pb.TrackedStatus{}}
	for _, c := range cfg.GetInstances() {
		for _, t := range list(c) {
			tr.users[t.GetName()] = append(tr.users[t.GetName()], fmt.Sprintf("     %s, weight %d%s", c.GetName(), t.GetWeight(), reverse(t.GetReverse())))
		}
	}
	for _, st := range insts {
		for _, t := range st.GetTracking() {
			if t.GetKind() == kind {
				if _, ok := tr.status[t.GetName()]; !ok {
					tr.status[t.GetName()] = t
				}
			}
		}
	}
	return tr
}

// writeScripts is dump_vscript (vrrp/vrrp_data.c), for the vrrp_scripts
// an instance tracks.
func writeScripts(w *writer, cfg *pb.ConfigSnapshot, insts []*pb.InstanceStatus) {
	tr := collectTrackers(cfg, insts, pb.TrackerKind_TRACKER_KIND_SCRIPT, (*pb.VrrpInstance).GetTrackScript)
	header := false
	for _, sc := range cfg.GetScripts() {
		users := tr.users[sc.GetName()]
		if len(users) == 0 {
			continue
		}
		if !header {
			w.line("------< VRRP Scripts >------")
			header = true
		}
		st := tr.status[sc.GetName()]
		w.line(" VRRP Script = %s", sc.GetName())
		w.line("   Command = %s", cmdStr(sc.GetScript()))
		w.line("   Interval = %d sec", seconds(sc.GetInterval()))
		w.line("   Timeout = %d sec", seconds(sc.GetTimeout()))
		w.line("   Weight = %d%s", sc.GetWeight(), reverse(sc.GetWeightReverse()))
		w.line("   Rise = %d", sc.GetRise())
		w.line("   Fall = %d", sc.GetFall())
		// keepalived's result counts successes towards rise; vrrpd knows
		// only up or down: rise when up, 0 when down.
		result := uint32(0)
		if st.GetUp() {
			result = max(sc.GetRise(), 1)
		}
		w.line("   Result = %d", result)
		w.line("   Insecure = no")
		// Past start-up keepalived's init state reads "unknown".
		w.line("   Init state = unknown")
		w.line("   Status = %s", map[bool]string{true: "GOOD", false: "BAD"}[st.GetUp()])
		// As for notify scripts: the configured names stand in for the
		// numbers keepalived resolved them to.
		w.line("   Script uid:gid = %s:%s", orDefault(sc.GetUser(), orDefault(cfg.GetGlobal().GetScriptUser(), "0")),
			orDefault(sc.GetGroup(), orDefault(cfg.GetGlobal().GetScriptGroup(), "0")))
		w.line("   VRRP instances :")
		w.line("   Tracking instances :")
		for _, u := range users {
			w.line("%s", u)
		}
		// checkerd runs the script; whether it is running at this instant
		// is not in status.
		w.line("   State = idle")
	}
}

// writeTrackFiles is dump_track_file (trackers/track_file.c).
func writeTrackFiles(w *writer, cfg *pb.ConfigSnapshot, insts []*pb.InstanceStatus) {
	tr := collectTrackers(cfg, insts, pb.TrackerKind_TRACKER_KIND_FILE, (*pb.VrrpInstance).GetTrackFile)
	header := false
	for _, f := range cfg.GetTrackFiles() {
		users := tr.users[f.GetName()]
		if len(users) == 0 {
			continue
		}
		if !header {
			w.line("------< VRRP Track files >------")
			header = true
		}
		// The file's number is not in status; what it adds is (delta =
		// value * weight), so the value is recovered when the weight is
		// not 0, else 0.
		var value int64
		if st := tr.status[f.GetName()]; st != nil && st.GetWeight() != 0 {
			value = int64(st.GetDelta() / st.GetWeight())
		}
		w.line(" Track file = %s", f.GetName())
		w.line("   File = %s", f.GetPath())
		w.line("   Status = %d", value)
		w.line("   Weight = %d%s", f.GetWeight(), reverse(f.GetWeightReverse()))
		w.line("   Tracking instances :")
		for _, u := range users {
			w.line("%s", u)
		}
	}
}

// writeTrackProcesses is dump_vprocess (vrrp/vrrp_data.c). Not checked
// against a keepalived capture yet.
func writeTrackProcesses(w *writer, cfg *pb.ConfigSnapshot, insts []*pb.InstanceStatus) {
	tr := collectTrackers(cfg, insts, pb.TrackerKind_TRACKER_KIND_PROCESS, (*pb.VrrpInstance).GetTrackProcess)
	header := false
	for _, p := range cfg.GetTrackProcesses() {
		users := tr.users[p.GetName()]
		if len(users) == 0 {
			continue
		}
		if !header {
			w.line("------< VRRP Track processes >------")
			header = true
		}
		st := tr.status[p.GetName()]
		w.line(" VRRP Track process = %s", p.GetName())
		var proc string
		if args := p.GetProcess(); len(args) > 0 {
			proc = args[0]
			if len(args) > 1 {
				w.line("   Process = %s", proc)
				w.line("   Parameters = %s", strings.Join(args[1:], " "))
			} else {
				w.line("   Process = %s", proc)
			}
		}
		if p.GetParamMatch() != "" {
			w.line("   Param match%s", map[bool]string{true: " = " + p.GetParamMatch()}[true])
		}
		w.line("   Min processes = %d", p.GetQuorum())
		if p.GetQuorumMax() != 0 {
			w.line("   Max processes = %d", p.GetQuorumMax())
		}
		// The count of matching processes is checkerd's, not in status.
		w.line("   Have quorum = %t", st.GetUp())
		w.line("   Weight = %d%s", p.GetWeight(), reverse(p.GetWeightReverse()))
		w.line("   Terminate delay = %fs", p.GetDelayDown().AsDuration().Seconds())
		w.line("   Fork delay = %fs", p.GetDelayUp().AsDuration().Seconds())
		w.line("   Full command = %t", p.GetFullCommand())
		w.line("   Tracking instances :")
		for _, u := range users {
			w.line("%s", u)
		}
	}
}
