// Package metrics turns what the supervisor knows (its status, the running
// configuration, and the events it hears) into Prometheus metrics, at
// scrape time.
//
// It exports two families of names. vrrpkit's own (vrrpkit_*) follow
// Prometheus' naming rules: labels vrrp_instance, interface, vrid; a stateset for
// the VRRP state. Beside them are the names of mehdy/keepalived-exporter
// (keepalived_*), with its labels (iname, intf, vrid, ip_address) and value
// encodings (keepalived_vrrp_state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT), so
// that dashboards and alerts written for keepalived keep working
// (keepalived-exporter internal/collector/collector.go, fillMetrics and
// Collect).
//
// The package holds no global state and does no I/O: the supervisor hands
// it a function returning a Snapshot, and feeds Events with its watch
// events; tests do the same with fixtures.
package metrics

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Snapshot is what one scrape reads.
type Snapshot struct {
	// Status is what Supervisor.Status answers (nil: nothing to report).
	Status *pb.SupervisorStatusResponse
	// Config is the running configuration; it says which addresses are
	// virtual_ipaddress_excluded and on which dev each one is, which status
	// does not. Nil: every address of status counts as a VIP on the
	// instance's interface.
	Config *pb.ConfigSnapshot
	// VrrpdUp: vrrpd answered its status with a configuration applied.
	VrrpdUp bool
}

// Collector is a prometheus.Collector over a Snapshot source and Events.
type Collector struct {
	source func() Snapshot
	events *Events
}

// New returns a collector that calls source once per scrape. events may be
// nil (no event counters).
func New(source func() Snapshot, events *Events) *Collector {
	return &Collector{source: source, events: events}
}

var (
	// vrrp_instance, not instance: Prometheus gives every scraped series
	// the target's "instance" label and would rename a clashing one to
	// exported_instance (honor_labels: false, the default); keepalived-
	// exporter's iname avoids the clash the same way.
	instLabels = []string{"vrrp_instance", "interface", "vrid"}
	kaLabels   = []string{"iname", "intf", "vrid"}
	kaVIP      = []string{"iname", "intf", "vrid", "ip_address"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func withInst(extra ...string) []string { return append(append([]string{}, instLabels...), extra...) }

var (
	dBuildInfo     = desc("vrrpkit_build_info", "vrrpkit's version; always 1.", "version")
	dVrrpdUp       = desc("vrrpkit_vrrpd_up", "1 when vrrpd answered its status with a configuration applied, else 0.")
	dGeneration    = desc("vrrpkit_config_generation", "Generation of the running (last accepted) configuration; it rises by one per accepted reload.")
	dLoaded        = desc("vrrpkit_config_loaded_timestamp_seconds", "When the running configuration was accepted, in seconds since the Unix epoch.")
	dReloadOK      = desc("vrrpkit_config_last_reload_successful", "0 when the last reload was refused (the previous generation keeps running), else 1.")
	dReloads       = desc("vrrpkit_reloads_total", "Reloads (SIGHUP or vrrpctl reload, not dry runs) since the supervisor started, by result: accepted or refused.", "result")
	dChildUp       = desc("vrrpkit_child_up", "1 when the child process is running, else 0.", "child")
	dChildRestarts = desc("vrrpkit_child_restarts_total", "Times the supervisor restarted the child since it started.", "child")
	dChildGen      = desc("vrrpkit_child_config_generation", "Configuration generation the child acknowledged last (0: none yet).", "child")

	dState      = desc("vrrpkit_vrrp_state", "VRRP state of the instance as a stateset: 1 for the state it is in, 0 for the others.", withInst("state")...)
	dStateSince = desc("vrrpkit_vrrp_state_change_timestamp_seconds", "When the instance entered its state, in seconds since the Unix epoch.", instLabels...)
	dPriority   = desc("vrrpkit_vrrp_priority", "Configured priority of the instance.", instLabels...)
	dEffPrio    = desc("vrrpkit_vrrp_effective_priority", "Priority after track_interface and track_script weights: the one the instance advertises.", instLabels...)
	dSent       = desc("vrrpkit_vrrp_adverts_sent_total", "VRRP adverts the instance sent.", instLabels...)
	dRcvd       = desc("vrrpkit_vrrp_adverts_received_total", "VRRP adverts the instance accepted.", instLabels...)
	dPZSent     = desc("vrrpkit_vrrp_priority_zero_sent_total", "Priority 0 adverts (stepping down) the instance sent.", instLabels...)
	dPZRcvd     = desc("vrrpkit_vrrp_priority_zero_received_total", "Priority 0 adverts (a master stepping down) the instance received.", instLabels...)
	dBecame     = desc("vrrpkit_vrrp_became_master_total", "Times the instance entered MASTER.", instLabels...)
	dReleased   = desc("vrrpkit_vrrp_released_master_total", "Times the instance left MASTER.", instLabels...)
	dSendErr    = desc("vrrpkit_vrrp_send_errors_total", "Adverts the socket refused to send.", instLabels...)
	dDrops      = desc("vrrpkit_vrrp_drops_total", "Received VRRP packets dropped, by reason (bad_ttl, auth_mismatch, interval_mismatch, ...).", withInst("reason")...)
	dOther      = desc("vrrpkit_vrrp_other_master_heard_total", "Adverts from another master heard while this instance was MASTER: rising means a split brain.", instLabels...)
	dLower      = desc("vrrpkit_vrrp_lower_priority_master_heard_total", "Times the instance, as MASTER, heard a lower-priority master and answered it.", instLabels...)
	dLate       = desc("vrrpkit_vrrp_resumed_late_total", "Times the instance's timers ran later than the backups' Master_Down_Interval (the process was frozen) and it re-announced.", instLabels...)
	dPeers      = desc("vrrpkit_vrrp_peers", "Other routers heard on the instance's VRID (up to 32).", instLabels...)
	dPeerPrio   = desc("vrrpkit_vrrp_peer_priority", "Priority in the peer's last advert.", withInst("peer")...)
	dPeerLast   = desc("vrrpkit_vrrp_peer_last_heard_timestamp_seconds", "When the peer was last heard, in seconds since the Unix epoch.", withInst("peer")...)
	dTrans      = desc("vrrpkit_vrrp_transitions_total", "State transitions the supervisor heard from vrrpd's event stream since it started, by the state entered (a starting vrrpd's first state may come in the stream's snapshot instead, uncounted).", "vrrp_instance", "to")
	dTracker    = desc("vrrpkit_tracker_up", "1 when the tracker (track_script, track_file, track_process, track_interface) is up, else 0.", "kind", "name")
	dTrackerChg = desc("vrrpkit_health_changes_total", "Changed results checkerd reported since the supervisor started, by tracker.", "kind", "name")
	dRSUp       = desc("vrrpkit_real_server_up", "1 when the real server passes its health checks, else 0.", "virtual_server", "real_server")
	dRSWeight   = desc("vrrpkit_real_server_weight", "Weight of the real server in vrrpd's IPVS table (0: out of the pool or inhibited).", "virtual_server", "real_server")
	dQuorum     = desc("vrrpkit_virtual_server_quorum_up", "1 when the virtual server's live real servers meet its quorum, else 0 (the sorry server, if any, serves).", "virtual_server")

	// keepalived-exporter's names, labels and help, as it defines them.
	kUp       = desc("keepalived_up", "Status")
	kState    = desc("keepalived_vrrp_state", "State of vrrp", kaVIP...)
	kExcluded = desc("keepalived_vrrp_excluded_state", "State of vrrp with excluded VIP", kaVIP...)
	kGarp     = desc("keepalived_gratuitous_arp_delay_total", "Gratuitous ARP delay", kaLabels...)
	kRcvd     = desc("keepalived_advertisements_received_total", "Advertisements received", kaLabels...)
	kSent     = desc("keepalived_advertisements_sent_total", "Advertisements sent", kaLabels...)
	kBecome   = desc("keepalived_become_master_total", "Became master", kaLabels...)
	kRelease  = desc("keepalived_release_master_total", "Released master", kaLabels...)
	kLenErr   = desc("keepalived_packet_length_errors_total", "Packet length errors", kaLabels...)
	kIntErr   = desc("keepalived_advertisements_interval_errors_total", "Advertisement interval errors", kaLabels...)
	kTTLErr   = desc("keepalived_ip_ttl_errors_total", "TTL errors", kaLabels...)
	kTypeErr  = desc("keepalived_invalid_type_received_total", "Invalid type errors", kaLabels...)
	kAddrErr  = desc("keepalived_address_list_errors_total", "Address list errors", kaLabels...)
	kAuthInv  = desc("keepalived_authentication_invalid_total", "Authentication invalid", kaLabels...)
	kAuthMis  = desc("keepalived_authentication_mismatch_total", "Authentication mismatch", kaLabels...)
	kAuthFail = desc("keepalived_authentication_failure_total", "Authentication failure", kaLabels...)
	kPZRcvd   = desc("keepalived_priority_zero_received_total", "Priority zero received", kaLabels...)
	kPZSent   = desc("keepalived_priority_zero_sent_total", "Priority zero sent", kaLabels...)
	kScript   = desc("keepalived_script_status", "Tracker Script Status", "name")
)

var allDescs = []*prometheus.Desc{
	dBuildInfo, dVrrpdUp, dGeneration, dLoaded, dReloadOK, dReloads, dChildUp, dChildRestarts, dChildGen,
	dState, dStateSince, dPriority, dEffPrio, dSent, dRcvd, dPZSent, dPZRcvd, dBecame, dReleased, dSendErr,
	dDrops, dOther, dLower, dLate, dPeers, dPeerPrio, dPeerLast, dTrans, dTracker, dTrackerChg, dRSUp, dRSWeight, dQuorum,
	kUp, kState, kExcluded, kGarp, kRcvd, kSent, kBecome, kRelease, kLenErr, kIntErr, kTTLErr, kTypeErr, kAddrErr,
	kAuthInv, kAuthMis, kAuthFail, kPZRcvd, kPZSent, kScript,
}

// Names are the metric names the collector can export (besides the Go and
// process collectors'), for dashboards' tests.
func Names() []string {
	var out []string
	for _, d := range allDescs {
		// Desc has no accessor for its name; its String() is stable:
		// Desc{fqName: "NAME", ...}.
		s := d.String()
		if i := strings.Index(s, `fqName: "`); i >= 0 {
			s = s[i+len(`fqName: "`):]
			out = append(out, s[:strings.IndexByte(s, '"')])
		}
	}
	sort.Strings(out)
	return out
}

// Describe sends every descriptor: the collector is checked by the
// registry.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// stateNames are the stateset's states, in pb.VrrpState order.
var stateNames = []struct {
	s    pb.VrrpState
	name string
}{
	{pb.VrrpState_VRRP_STATE_INIT, "INIT"},
	{pb.VrrpState_VRRP_STATE_BACKUP, "BACKUP"},
	{pb.VrrpState_VRRP_STATE_MASTER, "MASTER"},
	{pb.VrrpState_VRRP_STATE_FAULT, "FAULT"},
	{pb.VrrpState_VRRP_STATE_STOP, "STOP"},
}

// keepalivedState is keepalived's number for s (vrrp.h VRRP_STATE_INIT 0,
// BACKUP 1, MASTER 2, FAULT 3), the value keepalived-exporter exports; ok
// is false for states keepalived-exporter cannot report (its text parser
// knows only those four), which are then left out.
func keepalivedState(s pb.VrrpState) (v float64, ok bool) {
	switch s {
	case pb.VrrpState_VRRP_STATE_INIT:
		return 0, true
	case pb.VrrpState_VRRP_STATE_BACKUP:
		return 1, true
	case pb.VrrpState_VRRP_STATE_MASTER:
		return 2, true
	case pb.VrrpState_VRRP_STATE_FAULT:
		return 3, true
	}
	return 0, false
}

// unixSeconds is t in seconds since the epoch, exact to the microsecond
// (a float64 of UnixNano/1e9 is not).
func unixSeconds(t *timestamppb.Timestamp) float64 {
	return float64(t.GetSeconds()) + float64(t.GetNanos()/1000)/1e6
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// send sends one sample. A label value the exposition cannot carry
// (invalid UTF-8 in a name) becomes an invalid metric, which the HTTP
// handler logs and skips, rather than a panic.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

// Collect reads one Snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.source()
	st := snap.Status
	gauge := func(d *prometheus.Desc, v float64, l ...string) { send(ch, d, prometheus.GaugeValue, v, l...) }
	counter := func(d *prometheus.Desc, v float64, l ...string) { send(ch, d, prometheus.CounterValue, v, l...) }
	gauge(dVrrpdUp, b2f(snap.VrrpdUp))
	gauge(kUp, b2f(snap.VrrpdUp))
	c.events.collect(counter)
	if st == nil {
		return
	}
	gauge(dBuildInfo, 1, st.GetVersion())
	gauge(dGeneration, float64(st.GetGeneration()))
	if t := st.GetConfigLoadedAt(); t != nil {
		gauge(dLoaded, unixSeconds(t))
	}
	gauge(dReloadOK, b2f(st.GetLastReloadFailure() == nil))
	for _, child := range st.GetChildren() {
		gauge(dChildUp, b2f(child.GetRunning()), child.GetName())
		counter(dChildRestarts, float64(child.GetRestarts()), child.GetName())
		gauge(dChildGen, float64(child.GetGeneration()), child.GetName())
	}

	cfg := map[string]*pb.VrrpInstance{}
	for _, in := range snap.Config.GetInstances() {
		cfg[in.GetName()] = in
	}
	type trackerKey struct{ kind, name string }
	trackers := map[trackerKey]bool{}
	var trackerOrder []trackerKey
	for _, in := range st.GetInstances() {
		l := []string{in.GetName(), in.GetInterface(), strconv.FormatUint(uint64(in.GetVrid()), 10)}
		with := func(extra string) []string { return append(append([]string{}, l...), extra) }
		for _, s := range stateNames {
			gauge(dState, b2f(in.GetState() == s.s), with(s.name)...)
		}
		if t := in.GetStateSince(); t != nil {
			gauge(dStateSince, unixSeconds(t), l...)
		}
		gauge(dPriority, float64(in.GetPriority()), l...)
		gauge(dEffPrio, float64(in.GetEffectivePriority()), l...)
		k := in.GetCounters() // nil reads as zeros
		counter(dSent, float64(k.GetAdvertsSent()), l...)
		counter(dRcvd, float64(k.GetAdvertsReceived()), l...)
		counter(dPZSent, float64(k.GetPriorityZeroSent()), l...)
		counter(dPZRcvd, float64(k.GetPriorityZeroReceived()), l...)
		counter(dBecame, float64(k.GetBecameMaster()), l...)
		counter(dReleased, float64(k.GetReleasedMaster()), l...)
		counter(dSendErr, float64(k.GetSendErrors()), l...)
		counter(dOther, float64(k.GetOtherMasterHeard()), l...)
		counter(dLower, float64(k.GetLowerPriorityMasterHeard()), l...)
		counter(dLate, float64(k.GetResumedLate()), l...)
		drops := map[string]uint64{}
		for _, d := range k.GetDrops() {
			drops[d.GetReason()] += d.GetCount()
			counter(dDrops, float64(d.GetCount()), with(d.GetReason())...)
		}
		gauge(dPeers, float64(len(in.GetPeers())), l...)
		for _, p := range in.GetPeers() {
			gauge(dPeerPrio, float64(p.GetPriority()), with(p.GetAddress())...)
			if t := p.GetLastHeard(); t != nil {
				gauge(dPeerLast, unixSeconds(t), with(p.GetAddress())...)
			}
		}
		for _, t := range in.GetTracking() {
			key := trackerKey{ctlview.TrackerKind(t.GetKind()), t.GetName()}
			if _, seen := trackers[key]; !seen {
				trackers[key] = t.GetUp()
				trackerOrder = append(trackerOrder, key)
			}
		}
		c.collectKeepalived(ch, in, cfg[in.GetName()], drops)
	}
	for _, key := range trackerOrder {
		gauge(dTracker, b2f(trackers[key]), key.kind, key.name)
		if key.kind == "script" {
			// keepalived-exporter: VRRPScriptStatuses BAD 0, GOOD 1.
			gauge(kScript, b2f(trackers[key]), key.name)
		}
	}
	for _, vs := range st.GetVirtualServers() {
		gauge(dQuorum, b2f(vs.GetQuorumUp()), vs.GetName())
		seen := map[string]bool{}
		for _, rs := range vs.GetRealServers() {
			name := net.JoinHostPort(rs.GetAddress(), strconv.FormatUint(uint64(rs.GetPort()), 10))
			if seen[name] {
				continue // the registry refuses duplicate series
			}
			seen[name] = true
			gauge(dRSUp, b2f(rs.GetHealthy()), vs.GetName(), name)
			gauge(dRSWeight, float64(rs.GetWeight()), vs.GetName(), name)
		}
	}
}

// keepalivedDrops maps keepalived's receive-error counters (vrrp_data.h
// vrrp_stats; keepalived-exporter's VRRPStats) to the vrrp.DropReason names
// that count the same failures.
var keepalivedDrops = []struct {
	d       *prometheus.Desc
	reasons []string
}{
	{kLenErr, []string{"too_short", "bad_length"}},
	{kIntErr, []string{"interval_mismatch"}},
	{kTTLErr, []string{"bad_ttl"}},
	{kTypeErr, []string{"bad_type"}},
	{kAddrErr, []string{"addr_list_mismatch"}},
	{kAuthInv, []string{"bad_auth_type"}},
	{kAuthMis, []string{"auth_type_mismatch"}},
	{kAuthFail, []string{"auth_mismatch"}},
}

// collectKeepalived sends keepalived-exporter's series of one instance.
func (c *Collector) collectKeepalived(ch chan<- prometheus.Metric, in *pb.InstanceStatus, cfg *pb.VrrpInstance, drops map[string]uint64) {
	ifp := keepalivedIfp(in, cfg)
	l := []string{in.GetName(), ifp, strconv.FormatUint(uint64(in.GetVrid()), 10)}
	counter := func(d *prometheus.Desc, v float64) { send(ch, d, prometheus.CounterValue, v, l...) }
	k := in.GetCounters()
	counter(kRcvd, float64(k.GetAdvertsReceived()))
	counter(kSent, float64(k.GetAdvertsSent()))
	counter(kBecome, float64(k.GetBecameMaster()))
	counter(kRelease, float64(k.GetReleasedMaster()))
	for _, kd := range keepalivedDrops {
		var n uint64
		for _, r := range kd.reasons {
			n += drops[r]
		}
		counter(kd.d, float64(n))
	}
	counter(kPZRcvd, float64(k.GetPriorityZeroReceived()))
	counter(kPZSent, float64(k.GetPriorityZeroSent()))
	// keepalived-exporter exports garp_master_delay (seconds) as a counter
	// under this name; kept as it is for its dashboards.
	if d := cfg.GetGarp().GetMasterDelay(); d != nil {
		counter(kGarp, d.AsDuration().Seconds())
	}

	state, ok := keepalivedState(in.GetState())
	if !ok {
		return
	}
	// One keepalived_vrrp_state series per VIP, labelled with the VIP's dev
	// and its address as keepalived's data dump writes it; one with the
	// instance's interface and an empty ip_address when it has none
	// (keepalived-exporter's Collect).
	emit := func(d *prometheus.Desc, intf, ip string) {
		send(ch, d, prometheus.GaugeValue, state, in.GetName(), intf, l[2], ip)
	}
	seen := map[[3]string]bool{}
	once := func(d *prometheus.Desc, intf, ip string) {
		key := [3]string{d.String(), intf, ip}
		if !seen[key] {
			seen[key] = true
			emit(d, intf, ip)
		}
	}
	vips := 0
	if cfg != nil {
		for _, v := range cfg.GetVirtualIpaddress() {
			once(kState, vipDev(v, ifp), keepalivedAddress(v.GetPrefix()))
			vips++
		}
		for _, v := range cfg.GetVirtualIpaddressExcluded() {
			once(kExcluded, vipDev(v, ifp), keepalivedAddress(v.GetPrefix()))
		}
	} else {
		for _, p := range in.GetVirtualIpaddress() {
			once(kState, ifp, keepalivedAddress(p))
			vips++
		}
	}
	if vips == 0 {
		emit(kState, ifp, "")
	}
}

// keepalivedIfp is keepalived's vrrp->ifp, the intf label of
// keepalived-exporter: the use_vmac interface when there is one (keepalived's
// JSON dump names it in ifp_ifname, its data dump "Interface = vrrp.51, vmac
// on eth0"), else the instance's interface.
func keepalivedIfp(in *pb.InstanceStatus, cfg *pb.VrrpInstance) string {
	if cfg.GetUseVmac() && cfg.GetVmacInterface() != "" {
		return cfg.GetVmacInterface()
	}
	return in.GetInterface()
}

// vipDev is where an address without dev goes: ifp, as vrrpd's addrDev
// (pkg/vrrpd/vmac.go) puts it on the VMAC with use_vmac.
func vipDev(v *pb.VirtualAddress, ifp string) string {
	if v.GetDev() != "" {
		return v.GetDev()
	}
	return ifp
}

// keepalivedAddress writes a VIP as keepalived 2.2.7's data dump does
// (SIGUSR1, /tmp/keepalived.data "Virtual IP" lines, which
// keepalived-exporter's ip_address label is cut from): the address, and
// "/len" only when the prefix is shorter than a host's. Checked against
// keepalived 2.2.7: "10.9.0.1", "10.9.0.2/24", "2001:db8::2/64".
func keepalivedAddress(prefix string) string {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		if a, err := netip.ParseAddr(prefix); err == nil {
			return a.String()
		}
		return prefix
	}
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.Addr().String() + "/" + strconv.Itoa(p.Bits())
}

// Events counts what exists only as events: transitions, reloads and
// health changes. Feed it every watch event with Observe; it is safe for
// concurrent use.
type Events struct {
	mu          sync.Mutex
	transitions map[[2]string]uint64 // instance, state entered
	reloads     map[string]uint64    // accepted, refused
	health      map[[2]string]uint64 // kind, name
}

// NewEvents returns empty counts; both reload results start at 0 so that
// rate() sees the first one.
func NewEvents() *Events {
	return &Events{
		transitions: map[[2]string]uint64{},
		reloads:     map[string]uint64{"accepted": 0, "refused": 0},
		health:      map[[2]string]uint64{},
	}
}

// Observe counts one event; others are ignored.
func (e *Events) Observe(ev *pb.WatchEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch x := ev.GetEvent().(type) {
	case *pb.WatchEvent_Vrrp:
		if tr := x.Vrrp.GetTransition(); tr != nil {
			to := strings.TrimPrefix(tr.GetTo().String(), "VRRP_STATE_")
			e.transitions[[2]string{tr.GetInstance(), to}]++
		}
	case *pb.WatchEvent_Reload:
		if x.Reload.GetDryRun() {
			return
		}
		if x.Reload.GetAccepted() {
			e.reloads["accepted"]++
		} else {
			e.reloads["refused"]++
		}
	case *pb.WatchEvent_Health:
		if r := x.Health.GetResult(); r != nil {
			e.health[[2]string{ctlview.TrackerKind(r.GetKind()), r.GetName()}]++
		}
	}
}

func (e *Events) collect(counter func(*prometheus.Desc, float64, ...string)) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, n := range e.transitions {
		counter(dTrans, float64(n), k[0], k[1])
	}
	for k, n := range e.reloads {
		counter(dReloads, float64(n), k)
	}
	for k, n := range e.health {
		counter(dTrackerChg, float64(n), k[0], k[1])
	}
}
