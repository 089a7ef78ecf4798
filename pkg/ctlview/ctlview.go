// Package ctlview is what vrrpctl prints for the supervisor's status: the
// conversion of pb.SupervisorStatusResponse into view structs, their JSON
// and their text table.
//
// The JSON is for people and jq, so it does not follow protojson: keys are
// snake_case and named after keepalived's keywords (virtual_router_id,
// virtual_ipaddress), states are words ("MASTER"), every number is a JSON
// number (protojson writes uint64 as a string), times are RFC 3339 in UTC
// with nine fractional digits, and key order and spacing never change.
// Empty lists are [], something unknown or absent is null. README.md
// ("vrrpctl status --json") documents every key; testdata/status.golden.json
// pins the output, so a change to it shows up in review.
package ctlview

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Status is the supervisor's status as vrrpctl shows it. Field order is the
// JSON key order.
type Status struct {
	// Generation of the running (last accepted) configuration.
	Generation     uint64 `json:"generation"`
	ConfigPath     string `json:"config_path"`
	ConfigLoadedAt *Time  `json:"config_loaded_at"`
	// When the supervisor started, and its version.
	StartedAt *Time  `json:"started_at"`
	Version   string `json:"version"`
	// The last rejected reload, if it came after the running configuration.
	LastReloadFailure *ReloadFailure `json:"last_reload_failure"`
	Processes         []Process      `json:"processes"`
	VRRPInstances     []Instance     `json:"vrrp_instances"`
	// keepalived's virtual_server blocks, as vrrpd programs them.
	VirtualServers []VirtualServer `json:"virtual_servers"`
}

// VirtualServer is one virtual_server: its service, the real servers'
// health and the weights vrrpd gives IPVS.
type VirtualServer struct {
	// "192.0.2.1:80/TCP", "fwmark 5", "group NAME/TCP".
	Name string `json:"name"`
	// The service; for a group or an address range (several services) ip,
	// port, protocol and fwmark are null and name says which. A fwmark
	// service has fwmark and no ip, port or protocol.
	IP       *string `json:"ip"`
	Port     *uint32 `json:"port"`
	Protocol *string `json:"protocol"`
	Fwmark   *uint32 `json:"fwmark"`
	LbAlgo   string  `json:"lb_algo"`
	// "NAT", "DR" or "TUN"; "mixed" when its real servers differ.
	LbKind string `json:"lb_kind"`
	// Quorum met: the real servers are in the pool (else the sorry server).
	QuorumUp    bool         `json:"quorum_up"`
	RealServers []RealServer `json:"real_servers"`
	SorryServer *RealServer  `json:"sorry_server"`
}

// RealServer is a real_server (or sorry_server) and its health.
type RealServer struct {
	// "ip:port" ("[2001:db8::1]:80").
	Address string `json:"address"`
	// The weight vrrpd programs: 0 while it is down or replaced by the
	// sorry server (removed, or kept at 0 by inhibit_on_failure).
	Weight  uint32 `json:"weight"`
	Healthy bool   `json:"healthy"`
	// When healthy last changed, and when a check last ended; null before
	// a first result (and for a server without checkers).
	Since     *Time `json:"since"`
	LastCheck *Time `json:"last_check"`
	// Why it is down (the failing checker and its error), or what the last
	// check that passed saw.
	Reason string `json:"reason"`
}

// ReloadFailure is a reload the supervisor refused; the running
// configuration stayed.
type ReloadFailure struct {
	At *Time `json:"at"`
	// "file:line: message" lines.
	Errors []string `json:"errors"`
}

// Process is one child of the supervisor (vrrpd, checkerd).
type Process struct {
	Name string `json:"name"`
	// 0 when not running.
	PID     int32 `json:"pid"`
	Running bool  `json:"running"`
	// Restarts since the supervisor started.
	Restarts uint32 `json:"restarts"`
	// Configuration generation the process has acknowledged.
	Generation uint64 `json:"generation"`
	StartedAt  *Time  `json:"started_at"`
	// How the previous run ended ("exit status 1", "signal: killed"); nil if
	// it never ended.
	LastExit *string `json:"last_exit"`
}

// Instance is one vrrp_instance.
type Instance struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Configured priority, and the one after track_* weights (what adverts
	// carry).
	Priority          uint32   `json:"priority"`
	EffectivePriority uint32   `json:"effective_priority"`
	VirtualRouterID   uint32   `json:"virtual_router_id"`
	Interface         string   `json:"interface"`
	VirtualIPAddress  []string `json:"virtual_ipaddress"`
	// The current master as last heard (this host's address when MASTER);
	// nil when unknown.
	MasterAddress *string  `json:"master_address"`
	StateSince    *Time    `json:"state_since"`
	FaultReasons  []string `json:"fault_reasons"`
	// The vrrp_sync_group it is in; nil if none.
	SyncGroup *string `json:"sync_group"`
	// Every tracker of the instance (and of its sync group) and what it
	// does to the priority now.
	Tracking []Tracker `json:"tracking"`
	Counters Counters  `json:"counters"`
	// Other routers heard on the VRID (vrrpctl peers shows them).
	Peers []Peer `json:"peers"`
}

// Tracker is one track_interface / track_script / track_file /
// track_process as an instance sees it.
type Tracker struct {
	// "interface", "script", "file" or "process" (keepalived's track_*).
	Kind string `json:"kind"`
	Name string `json:"name"`
	// The configured weight; 0 means the instance goes to FAULT when the
	// tracker fails.
	Weight int32 `json:"weight"`
	Up     bool  `json:"up"`
	// What it adds to the priority now (negative: lowers it).
	Delta  int32  `json:"delta"`
	Detail string `json:"detail"`
}

// Counters are an instance's monotonic counters since it started.
type Counters struct {
	AdvertsSent              uint64 `json:"adverts_sent"`
	AdvertsReceived          uint64 `json:"adverts_received"`
	PriorityZeroSent         uint64 `json:"priority_zero_sent"`
	PriorityZeroReceived     uint64 `json:"priority_zero_received"`
	BecameMaster             uint64 `json:"became_master"`
	ReleasedMaster           uint64 `json:"released_master"`
	SendErrors               uint64 `json:"send_errors"`
	LowerPriorityMasterHeard uint64 `json:"lower_priority_master_heard"`
	ResumedLate              uint64 `json:"resumed_late"`
	// Adverts from another master while this one was MASTER: the
	// split-brain counter.
	OtherMasterHeard  uint64 `json:"other_master_heard"`
	SocketUnknownVRID uint64 `json:"socket_unknown_vrid"`
	SocketBadPackets  uint64 `json:"socket_bad_packets"`
	// Received packets dropped, by reason. A map so that jq can say
	// .drops.bad_ttl; encoding/json writes its keys sorted.
	Drops map[string]uint64 `json:"drops"`
}

// TimeFormat is how times appear in the JSON: RFC 3339, always UTC ("Z") and
// always nine fractional digits, so that they sort as strings and line up.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Time is a point in time that marshals with TimeFormat.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(TimeFormat) + `"`), nil
}

// FromProto converts the supervisor's answer. It never returns nil lists or
// maps, so the JSON has [] and {} rather than null for them.
func FromProto(st *pb.SupervisorStatusResponse) *Status {
	s := &Status{
		Generation:     st.GetGeneration(),
		ConfigPath:     st.GetConfigPath(),
		ConfigLoadedAt: fromTimestamp(st.GetConfigLoadedAt()),
		StartedAt:      fromTimestamp(st.GetStartedAt()),
		Version:        st.GetVersion(),
		Processes:      []Process{},
		VRRPInstances:  []Instance{},
		VirtualServers: virtualServers(st.GetVirtualServers()),
	}
	if f := st.GetLastReloadFailure(); f != nil {
		s.LastReloadFailure = &ReloadFailure{At: fromTimestamp(f.GetAt()), Errors: strs(f.GetErrors())}
	}
	for _, c := range st.GetChildren() {
		s.Processes = append(s.Processes, Process{
			Name:       c.GetName(),
			PID:        c.GetPid(),
			Running:    c.GetRunning(),
			Restarts:   c.GetRestarts(),
			Generation: c.GetGeneration(),
			StartedAt:  fromTimestamp(c.GetStartedAt()),
			LastExit:   optional(c.GetLastExit()),
		})
	}
	for _, in := range st.GetInstances() {
		s.VRRPInstances = append(s.VRRPInstances, Instance{
			Name:              in.GetName(),
			State:             State(in.GetState()),
			Priority:          in.GetPriority(),
			EffectivePriority: in.GetEffectivePriority(),
			VirtualRouterID:   in.GetVrid(),
			Interface:         in.GetInterface(),
			VirtualIPAddress:  virtualIPAddresses(in),
			MasterAddress:     optional(in.GetMasterAddr()),
			StateSince:        fromTimestamp(in.GetStateSince()),
			FaultReasons:      strs(in.GetFaultReasons()),
			SyncGroup:         optional(in.GetSyncGroup()),
			Tracking:          trackers(in.GetTracking()),
			Counters:          counters(in.GetCounters()),
			Peers:             peers(in.GetPeers()),
		})
	}
	return s
}

func virtualServers(list []*pb.VirtualServerStatus) []VirtualServer {
	out := []VirtualServer{}
	for _, v := range list {
		vs := VirtualServer{Name: v.GetName(), LbAlgo: v.GetScheduler(), LbKind: LbKind(v.GetLbKind()),
			QuorumUp: v.GetQuorumUp(), RealServers: []RealServer{}}
		if v.GetLbKindMixed() {
			vs.LbKind = "mixed"
		}
		if ss := v.GetServices(); len(ss) == 1 {
			if s := ss[0]; s.GetFwmark() != 0 {
				vs.Fwmark = ptr(s.GetFwmark())
			} else {
				vs.IP, vs.Port, vs.Protocol = ptr(s.GetAddress()), ptr(s.GetPort()), ptr(Protocol(s.GetProtocol()))
			}
		}
		for _, rs := range v.GetRealServers() {
			vs.RealServers = append(vs.RealServers, realServer(rs))
		}
		if s := v.GetSorryServer(); s != nil {
			rs := realServer(s)
			vs.SorryServer = &rs
		}
		out = append(out, vs)
	}
	return out
}

func realServer(rs *pb.RealServerStatus) RealServer {
	return RealServer{Address: hostPort(rs.GetAddress(), rs.GetPort()), Weight: rs.GetWeight(), Healthy: rs.GetHealthy(),
		Since: fromTimestamp(rs.GetSince()), LastCheck: fromTimestamp(rs.GetLastCheck()), Reason: rs.GetReason()}
}

// hostPort is "ip:port", brackets around an IPv6 address.
func hostPort(ip string, port uint32) string {
	return net.JoinHostPort(ip, strconv.FormatUint(uint64(port), 10))
}

// LbKind is keepalived's lb_kind word of m.
func LbKind(m pb.LvsMethod) string {
	switch m {
	case pb.LvsMethod_LVS_METHOD_NAT:
		return "NAT"
	case pb.LvsMethod_LVS_METHOD_DR:
		return "DR"
	case pb.LvsMethod_LVS_METHOD_TUN:
		return "TUN"
	}
	return "UNKNOWN"
}

// Protocol is keepalived's protocol word of p ("TCP").
func Protocol(p pb.LvsProtocol) string {
	switch p {
	case pb.LvsProtocol_LVS_PROTOCOL_TCP:
		return "TCP"
	case pb.LvsProtocol_LVS_PROTOCOL_UDP:
		return "UDP"
	case pb.LvsProtocol_LVS_PROTOCOL_SCTP:
		return "SCTP"
	}
	return "UNKNOWN"
}

func ptr[T any](v T) *T { return &v }

// virtualIPAddresses is the instance's virtual_ipaddress (and _excluded)
// list in prefix form; [] when it has none, never null.
func virtualIPAddresses(in *pb.InstanceStatus) []string { return strs(in.GetVirtualIpaddress()) }

func trackers(list []*pb.TrackedStatus) []Tracker {
	out := []Tracker{}
	for _, t := range list {
		out = append(out, Tracker{Kind: TrackerKind(t.GetKind()), Name: t.GetName(), Weight: t.GetWeight(),
			Up: t.GetUp(), Delta: t.GetDelta(), Detail: t.GetDetail()})
	}
	return out
}

// TrackerKind is a tracker's kind as vrrpctl, watch and the metrics name
// it: the word after keepalived's "track_", and "real_server" for a real
// server's checks.
func TrackerKind(k pb.TrackerKind) string {
	switch k {
	case pb.TrackerKind_TRACKER_KIND_REAL_SERVER:
		return "real_server"
	case pb.TrackerKind_TRACKER_KIND_INTERFACE:
		return "interface"
	case pb.TrackerKind_TRACKER_KIND_SCRIPT:
		return "script"
	case pb.TrackerKind_TRACKER_KIND_FILE:
		return "file"
	case pb.TrackerKind_TRACKER_KIND_PROCESS:
		return "process"
	}
	return "unknown"
}

func counters(c *pb.InstanceCounters) Counters {
	v := Counters{
		AdvertsSent:              c.GetAdvertsSent(),
		AdvertsReceived:          c.GetAdvertsReceived(),
		OtherMasterHeard:         c.GetOtherMasterHeard(),
		PriorityZeroSent:         c.GetPriorityZeroSent(),
		PriorityZeroReceived:     c.GetPriorityZeroReceived(),
		BecameMaster:             c.GetBecameMaster(),
		ReleasedMaster:           c.GetReleasedMaster(),
		SendErrors:               c.GetSendErrors(),
		LowerPriorityMasterHeard: c.GetLowerPriorityMasterHeard(),
		ResumedLate:              c.GetResumedLate(),
		SocketUnknownVRID:        c.GetSocketUnknownVrid(),
		SocketBadPackets:         c.GetSocketBadPackets(),
		Drops:                    map[string]uint64{},
	}
	for _, d := range c.GetDrops() {
		// Summed: a repeated reason must not hide a count.
		v.Drops[d.GetReason()] += d.GetCount()
	}
	return v
}

// State is the keepalived name of a state ("MASTER"); "UNKNOWN" for a value
// this vrrpctl does not know (unset, or newer than it).
func State(s pb.VrrpState) string {
	switch s {
	case pb.VrrpState_VRRP_STATE_INIT:
		return "INIT"
	case pb.VrrpState_VRRP_STATE_BACKUP:
		return "BACKUP"
	case pb.VrrpState_VRRP_STATE_MASTER:
		return "MASTER"
	case pb.VrrpState_VRRP_STATE_FAULT:
		return "FAULT"
	case pb.VrrpState_VRRP_STATE_STOP:
		return "STOP"
	}
	return "UNKNOWN"
}

func fromTimestamp(ts *timestamppb.Timestamp) *Time {
	if ts == nil {
		return nil
	}
	return &Time{ts.AsTime()}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// WriteJSON writes s as indented JSON followed by a newline.
func WriteJSON(w io.Writer, s *Status) error { return writeJSON(w, s, "the status") }

func writeJSON(w io.Writer, v any, what string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Addresses and messages are printed for terminals and jq, not embedded
	// in HTML: "<" stays "<".
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing %s as JSON: %w", what, err)
	}
	return nil
}

// WriteText writes s as vrrpctl's table, with times in loc.
func WriteText(w io.Writer, s *Status, loc *time.Location) error {
	when := func(t *Time, layout string) string {
		if t == nil {
			return "-"
		}
		return t.In(loc).Format(layout)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s, generation %d, loaded %s\n", s.ConfigPath, s.Generation, when(s.ConfigLoadedAt, time.DateTime))
	if f := s.LastReloadFailure; f != nil {
		fmt.Fprintf(&b, "last reload REFUSED at %s:\n  %s\n", when(f.At, time.DateTime), strings.Join(f.Errors, "\n  "))
	}
	for _, p := range s.Processes {
		state := "down"
		if p.Running {
			state = fmt.Sprintf("pid %d", p.PID)
		}
		fmt.Fprintf(&b, "%s: %s, %d restarts", p.Name, state, p.Restarts)
		if p.LastExit != nil {
			fmt.Fprintf(&b, ", last exit: %s", *p.LastExit)
		}
		b.WriteString("\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tINTERFACE\tVRID\tSTATE\tPRIO\tMASTER\tSINCE\tDROPS")
	for _, in := range s.VRRPInstances {
		master := "-"
		if in.MasterAddress != nil {
			master = *in.MasterAddress
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", in.Name, in.Interface, in.VirtualRouterID,
			in.State, in.EffectivePriority, master, when(in.StateSince, time.TimeOnly), drops(in.Counters.Drops))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the status table: %w", err)
	}
	if len(s.VirtualServers) > 0 {
		b.WriteString("\n")
		writeVirtualServers(&b, s.VirtualServers, loc)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the status: %w", err)
	}
	return nil
}

// writeVirtualServers is the virtual server table: one line per real
// server, the virtual server named on its first.
func writeVirtualServers(b *strings.Builder, vss []VirtualServer, loc *time.Location) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIRTUAL SERVER\tALGO\tKIND\tQUORUM\tREAL SERVER\tWEIGHT\tHEALTH")
	for _, vs := range vss {
		quorum := "down"
		if vs.QuorumUp {
			quorum = "up"
		}
		lead := fmt.Sprintf("%s\t%s\t%s\t%s", vs.Name, vs.LbAlgo, vs.LbKind, quorum)
		rows := vs.RealServers
		if vs.SorryServer != nil {
			rows = append(slices.Clip(rows), *vs.SorryServer)
		}
		if len(rows) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\n", lead)
		}
		for i, rs := range rows {
			addr := rs.Address
			if vs.SorryServer != nil && i == len(rows)-1 {
				addr += " (sorry)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", lead, addr, rs.Weight, health(rs, loc))
			lead = "\t\t\t"
		}
	}
	tw.Flush() // writes to a strings.Builder: no error
}

// health is a real server's health in a few words: "up since 09:20:01",
// "down since 09:21:00: HTTP_GET: ...", "up (not checked yet)".
func health(rs RealServer, loc *time.Location) string {
	word := "down"
	if rs.Healthy {
		word = "up"
	}
	if rs.Since == nil {
		if rs.Reason == "" {
			return word
		}
		return word + " (" + rs.Reason + ")"
	}
	out := word + " since " + rs.Since.In(loc).Format(time.TimeOnly)
	if !rs.Healthy && rs.Reason != "" {
		out += ": " + rs.Reason
	}
	return out
}

// drops lists drop counters by reason, sorted: "bad_checksum=1 bad_ttl=3".
func drops(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, r := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", r, m[r]))
	}
	return strings.Join(parts, " ")
}
