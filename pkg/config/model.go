package config

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"time"
)

// Config is a keepalived.conf as vrrpkit understands it. JSON keys are
// keepalived's keywords, so `supervisor --dump-conf` reads like the file.
type Config struct {
	GlobalDefs          GlobalDefs            `json:"global_defs"`
	StaticIPAddresses   []VirtualAddress      `json:"static_ipaddress,omitempty"`
	StaticRoutes        []Route               `json:"static_routes,omitempty"`
	StaticRules         []Rule                `json:"static_rules,omitempty"`
	TrackGroups         []*TrackGroup         `json:"track_groups,omitempty"`
	GarpGroups          []*GarpGroup          `json:"garp_groups,omitempty"`
	VRRPScripts         []*VRRPScript         `json:"vrrp_scripts,omitempty"`
	VRRPTrackFiles      []*TrackFileDef       `json:"vrrp_track_files,omitempty"`
	VRRPTrackProcesses  []*TrackProcess       `json:"vrrp_track_processes,omitempty"`
	VRRPSyncGroups      []*SyncGroup          `json:"vrrp_sync_groups,omitempty"`
	VRRPInstances       []*VRRPInstance       `json:"vrrp_instances,omitempty"`
	VirtualServerGroups []*VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	VirtualServers      []*VirtualServer      `json:"virtual_servers,omitempty"`
	SSL                 *SSL                  `json:"SSL,omitempty"`
	// Ignored lists top-level blocks vrrpkit accepts but does not act on
	// (bfd_instance, linkbeat_interfaces, ...).
	Ignored []Ignored `json:"ignored,omitempty"`
}

// Block is embedded in every block of the model: where it starts and where
// each of its keywords was set, so that later stages can report file:line.
type Block struct {
	Pos  Pos            `json:"-"`
	Keys map[string]Pos `json:"-"`
}

// At returns where keyword was set in this block, or the block's own
// position if it was not.
func (b *Block) At(keyword string) Pos {
	if p, ok := b.Keys[keyword]; ok {
		return p
	}
	return b.Pos
}

// Has reports whether keyword was set in this block.
func (b *Block) Has(keyword string) bool {
	_, ok := b.Keys[keyword]
	return ok
}

func (b *Block) mark(keyword string, p Pos) {
	if b.Keys == nil {
		b.Keys = map[string]Pos{}
	}
	b.Keys[keyword] = p
}

// Ignored is a keyword vrrpkit parses and accepts but does not act on.
type Ignored struct {
	Keyword string   `json:"keyword"`
	Args    []string `json:"args,omitempty"`
	Pos     Pos      `json:"pos"`
}

// Duration is a keepalived time value: seconds with up to microsecond
// resolution in the file, a time.Duration in Go, seconds in JSON.
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalJSON writes seconds, the unit of keepalived.conf.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// Script is a command line keepalived would run: notify scripts,
// vrrp_script, MISC_CHECK. Args[0] is the program.
type Script struct {
	Args  []string `json:"args"`
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
	Pos   Pos      `json:"-"`
}

// GlobalDefs is the global_defs block. Keywords that only tune keepalived's
// own process (scheduling priority, netlink buffers, SNMP, DBus, iptables)
// are kept in Ignored.
type GlobalDefs struct {
	Block
	RouterID                    string              `json:"router_id,omitempty"`
	NotificationEmail           []string            `json:"notification_email,omitempty"`
	NotificationEmailFrom       string              `json:"notification_email_from,omitempty"`
	SMTPServer                  string              `json:"smtp_server,omitempty"`
	SMTPServerPort              uint16              `json:"smtp_server_port,omitempty"`
	SMTPHeloName                string              `json:"smtp_helo_name,omitempty"`
	SMTPConnectTimeout          Duration            `json:"smtp_connect_timeout,omitempty"`
	SMTPAlert                   *bool               `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP               *bool               `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker            *bool               `json:"smtp_alert_checker,omitempty"`
	NoEmailFaults               bool                `json:"no_email_faults,omitempty"`
	StartupScript               *Script             `json:"startup_script,omitempty"`
	StartupScriptTimeout        Duration            `json:"startup_script_timeout,omitempty"`
	ShutdownScript              *Script             `json:"shutdown_script,omitempty"`
	ShutdownScriptTimeout       Duration            `json:"shutdown_script_timeout,omitempty"`
	ScriptUser                  string              `json:"script_user,omitempty"`
	ScriptGroup                 string              `json:"script_group,omitempty"`
	EnableScriptSecurity        bool                `json:"enable_script_security,omitempty"`
	DynamicInterfaces           bool                `json:"dynamic_interfaces,omitempty"`
	DefaultInterface            string              `json:"default_interface,omitempty"`
	CheckerLogAllFailures       bool                `json:"checker_log_all_failures,omitempty"`
	LVSFlush                    bool                `json:"lvs_flush,omitempty"`
	LVSFlushOnStop              string              `json:"lvs_flush_on_stop,omitempty"` // "", "full" or "VS": lvsFlushOnStop
	LVSTimeouts                 map[string]Duration `json:"lvs_timeouts,omitempty"`
	LVSSyncDaemon               *LVSSyncDaemon      `json:"lvs_sync_daemon,omitempty"`
	VRRPMcastGroup4             netip.Addr          `json:"vrrp_mcast_group4,omitzero"`
	VRRPMcastGroup6             netip.Addr          `json:"vrrp_mcast_group6,omitzero"`
	VRRPGarpMasterDelay         *Duration           `json:"vrrp_garp_master_delay,omitempty"`
	VRRPGarpMasterRepeat        *uint32             `json:"vrrp_garp_master_repeat,omitempty"`
	VRRPGarpMasterRefresh       *Duration           `json:"vrrp_garp_master_refresh,omitempty"`
	VRRPGarpMasterRefreshRepeat *uint32             `json:"vrrp_garp_master_refresh_repeat,omitempty"`
	VRRPGarpLowerPrioDelay      *Duration           `json:"vrrp_garp_lower_prio_delay,omitempty"`
	VRRPGarpLowerPrioRepeat     *uint32             `json:"vrrp_garp_lower_prio_repeat,omitempty"`
	VRRPGarpInterval            *Duration           `json:"vrrp_garp_interval,omitempty"`
	VRRPGnaInterval             *Duration           `json:"vrrp_gna_interval,omitempty"`
	VRRPMinGarp                 bool                `json:"vrrp_min_garp,omitempty"`
	VRRPDownTimerAdverts        uint32              `json:"vrrp_down_timer_adverts,omitempty"`
	VRRPLowerPrioNoAdvert       *bool               `json:"vrrp_lower_prio_no_advert,omitempty"`
	VRRPHigherPrioSendAdvert    *bool               `json:"vrrp_higher_prio_send_advert,omitempty"`
	VRRPVersion                 uint8               `json:"vrrp_version,omitempty"`
	VRRPCheckUnicastSrc         bool                `json:"vrrp_check_unicast_src,omitempty"`
	VRRPSkipCheckAdvAddr        bool                `json:"vrrp_skip_check_adv_addr,omitempty"`
	VRRPStrict                  bool                `json:"vrrp_strict,omitempty"`
	VRRPStartupDelay            Duration            `json:"vrrp_startup_delay,omitempty"`
	VRRPNotifyPriorityChanges   bool                `json:"vrrp_notify_priority_changes,omitempty"`
	MaxAutoPriority             *int                `json:"max_auto_priority,omitempty"`
	NotifyFIFO                  *FIFO               `json:"notify_fifo,omitempty"`
	VRRPNotifyFIFO              *FIFO               `json:"vrrp_notify_fifo,omitempty"`
	LVSNotifyFIFO               *FIFO               `json:"lvs_notify_fifo,omitempty"`
	VMACPrefix                  string              `json:"vmac_prefix,omitempty"`
	VMACAddrPrefix              string              `json:"vmac_addr_prefix,omitempty"`
	// NFTables is set by "nftables [TABLE]"; NFTablesTable is TABLE, ""
	// when none is given. vrrpkit then uses its own name ("vrrpkit"), not
	// keepalived's "keepalived", so that the two daemons on one host never
	// share or delete each other's table.
	NFTables      bool   `json:"nftables,omitempty"`
	NFTablesTable string `json:"nftables_table,omitempty"`
	// NFTablesPriority is nftables_priority, nil when absent (keepalived's
	// default is -1).
	NFTablesPriority *int32    `json:"nftables_priority,omitempty"`
	NFTablesIfindex  bool      `json:"nftables_ifindex,omitempty"`
	NFTablesCounters bool      `json:"nftables_counters,omitempty"`
	Ignored          []Ignored `json:"ignored,omitempty"`
}

// LVSSyncDaemon is global_defs lvs_sync_daemon INTERFACE [[inst]
// VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group IP]
// (or a vrrp_instance's deprecated lvs_sync_daemon_interface): the kernel's
// IPVS connection-sync daemon, master while Instance is MASTER, backup
// otherwise. Zero MaxLen, Port, TTL and an invalid Group leave the kernel's
// defaults.
type LVSSyncDaemon struct {
	Interface string `json:"interface"`
	// Instance is the vrrp_instance the daemon follows; "" runs a master
	// and a backup daemon at once, as keepalived's checker then does
	// (check/check_daemon.c: IPVS_MASTER_BACKUP).
	Instance string `json:"instance,omitempty"`
	// SyncID is the effective sync id after validation: id SYNC_ID, else
	// the instance's virtual_router_id, else 0 (vrrp/vrrp.c
	// vrrp_complete_init).
	SyncID    uint8      `json:"sync_id"`
	SyncIDSet bool       `json:"-"`
	MaxLen    uint16     `json:"maxlen,omitempty"`
	Port      uint16     `json:"port,omitempty"`
	TTL       uint8      `json:"ttl,omitempty"`
	Group     netip.Addr `json:"group,omitzero"`
	Pos       Pos        `json:"-"`
}

// FIFO is a notify FIFO and the optional script keepalived starts to read it.
type FIFO struct {
	Path   string  `json:"path"`
	User   string  `json:"user,omitempty"`
	Group  string  `json:"group,omitempty"`
	Script *Script `json:"script,omitempty"`
}

// VirtualAddress is one line of virtual_ipaddress, virtual_ipaddress_excluded
// or static_ipaddress: "ADDR[/LEN] [brd B] [dev IF] [scope S] [label L]
// [peer P] [home] [-nodad] [noprefixroute] [autojoin] [no_track] [preferred_lft T]".
type VirtualAddress struct {
	Prefix        netip.Prefix `json:"prefix"`
	Peer          netip.Prefix `json:"peer,omitzero"`
	Broadcast     netip.Addr   `json:"brd,omitzero"`
	Dev           string       `json:"dev,omitempty"`
	Scope         string       `json:"scope,omitempty"`
	Label         string       `json:"label,omitempty"`
	Home          bool         `json:"home,omitempty"`
	NoDAD         bool         `json:"nodad,omitempty"`
	NoPrefixRoute bool         `json:"noprefixroute,omitempty"`
	AutoJoin      bool         `json:"autojoin,omitempty"`
	NoTrack       bool         `json:"no_track,omitempty"`
	Track         bool         `json:"track,omitempty"`
	PreferredLft  *uint32      `json:"preferred_lft,omitempty"`
	MngTmpAddr    bool         `json:"mngtmpaddr,omitempty"`
	UseVMAC       bool         `json:"use_vmac,omitempty"`
	TrackGroup    string       `json:"track_group,omitempty"`
	Pos           Pos          `json:"-"`
}

// MarshalJSON keeps the dump compact: a bare address line is a string
// ("10.0.0.1/24"), like it is in keepalived.conf.
func (v VirtualAddress) MarshalJSON() ([]byte, error) {
	if v == (VirtualAddress{Prefix: v.Prefix, Pos: v.Pos}) {
		return json.Marshal(v.Prefix.String())
	}
	type plain VirtualAddress
	return json.Marshal(plain(v))
}

// Route is one line of virtual_routes or static_routes. vrrpkit keeps the
// words after the destination as ip-route(8) options.
type Route struct {
	To      netip.Prefix      `json:"to"`
	Type    string            `json:"type,omitempty"` // blackhole, unreachable, prohibit, ...
	Via     netip.Addr        `json:"via,omitzero"`
	Src     netip.Addr        `json:"src,omitzero"`
	Dev     string            `json:"dev,omitempty"`
	Table   string            `json:"table,omitempty"`
	Metric  *uint32           `json:"metric,omitempty"`
	Scope   string            `json:"scope,omitempty"`
	NoTrack bool              `json:"no_track,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	Pos     Pos               `json:"-"`
}

// Rule is one line of virtual_rules or static_rules, in ip-rule(8) syntax.
type Rule struct {
	From       netip.Prefix      `json:"from,omitzero"`
	To         netip.Prefix      `json:"to,omitzero"`
	Table      string            `json:"table,omitempty"`
	Preference *uint32           `json:"preference,omitempty"`
	Fwmark     string            `json:"fwmark,omitempty"`
	Iif        string            `json:"iif,omitempty"`
	Oif        string            `json:"oif,omitempty"`
	Action     string            `json:"action,omitempty"`
	NoTrack    bool              `json:"no_track,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	Pos        Pos               `json:"-"`
}

// TrackedInterface is an entry of track_interface.
type TrackedInterface struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	Pos     Pos    `json:"-"`
}

// TrackedRef refers to a vrrp_script, vrrp_track_file or
// vrrp_track_process by name, with an optional weight that overrides the
// tracker's own.
type TrackedRef struct {
	Name    string `json:"name"`
	Weight  *int   `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	Pos     Pos    `json:"-"`
}

// Notify holds the notify scripts of an instance or a sync group.
type Notify struct {
	Master           *Script `json:"notify_master,omitempty"`
	Backup           *Script `json:"notify_backup,omitempty"`
	Fault            *Script `json:"notify_fault,omitempty"`
	Stop             *Script `json:"notify_stop,omitempty"`
	Deleted          *Script `json:"notify_deleted,omitempty"`
	Any              *Script `json:"notify,omitempty"`
	MasterRxLowerPri *Script `json:"notify_master_rx_lower_pri,omitempty"`
}

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	Block
	Name string `json:"name"`
	// State is the start hint, "MASTER" or "BACKUP" (the default).
	State                      string             `json:"state"`
	Interface                  string             `json:"interface"`
	VirtualRouterID            uint8              `json:"virtual_router_id"`
	Priority                   uint8              `json:"priority"`
	AdvertInt                  Duration           `json:"advert_int"`
	Version                    uint8              `json:"version"`
	VirtualIPAddresses         []VirtualAddress   `json:"virtual_ipaddress"`
	VirtualIPAddressesExcluded []VirtualAddress   `json:"virtual_ipaddress_excluded,omitempty"`
	VirtualRoutes              []Route            `json:"virtual_routes,omitempty"`
	VirtualRules               []Rule             `json:"virtual_rules,omitempty"`
	Authentication             *Authentication    `json:"authentication,omitempty"`
	UnicastSrcIP               netip.Addr         `json:"unicast_src_ip,omitzero"`
	UnicastPeers               []UnicastPeer      `json:"unicast_peer,omitempty"`
	UnicastTTL                 *uint8             `json:"unicast_ttl,omitempty"`
	UnicastFaultNoPeer         bool               `json:"unicast_fault_no_peer,omitempty"`
	CheckUnicastSrc            bool               `json:"check_unicast_src,omitempty"`
	McastSrcIP                 netip.Addr         `json:"mcast_src_ip,omitzero"`
	McastDstIP                 netip.Addr         `json:"mcast_dst_ip,omitzero"`
	TrackSrcIP                 bool               `json:"track_src_ip,omitempty"`
	NativeIPv6                 bool               `json:"native_ipv6,omitempty"`
	UseVMAC                    *VMAC              `json:"use_vmac,omitempty"`
	VMACXmitBase               bool               `json:"vmac_xmit_base,omitempty"`
	UseIPVLAN                  string             `json:"use_ipvlan,omitempty"`
	DontTrackPrimary           bool               `json:"dont_track_primary,omitempty"`
	TrackInterfaces            []TrackedInterface `json:"track_interface,omitempty"`
	TrackScripts               []TrackedRef       `json:"track_script,omitempty"`
	TrackFiles                 []TrackedRef       `json:"track_file,omitempty"`
	TrackProcesses             []TrackedRef       `json:"track_process,omitempty"`
	Preempt                    bool               `json:"preempt"`
	PreemptDelay               Duration           `json:"preempt_delay,omitempty"`
	Accept                     *bool              `json:"accept,omitempty"`
	SkipCheckAdvAddr           bool               `json:"skip_check_adv_addr,omitempty"`
	StrictMode                 *bool              `json:"strict_mode,omitempty"`
	PromoteSecondaries         bool               `json:"promote_secondaries,omitempty"`
	GarpMasterDelay            *Duration          `json:"garp_master_delay,omitempty"`
	GarpMasterRepeat           *uint32            `json:"garp_master_repeat,omitempty"`
	GarpMasterRefresh          *Duration          `json:"garp_master_refresh,omitempty"`
	GarpMasterRefreshRepeat    *uint32            `json:"garp_master_refresh_repeat,omitempty"`
	GarpLowerPrioDelay         *Duration          `json:"garp_lower_prio_delay,omitempty"`
	GarpLowerPrioRepeat        *uint32            `json:"garp_lower_prio_repeat,omitempty"`
	GarpExtraIf                *GarpExtraIf       `json:"garp_extra_if,omitempty"`
	DownTimerAdverts           uint32             `json:"down_timer_adverts,omitempty"`
	LowerPrioNoAdvert          *bool              `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert       *bool              `json:"higher_prio_send_advert,omitempty"`
	Notify
	SMTPAlert             *bool  `json:"smtp_alert,omitempty"`
	NotifyPriorityChanges *bool  `json:"notify_priority_changes,omitempty"`
	Debug                 uint8  `json:"debug,omitempty"`
	KernelRxBufSize       uint32 `json:"kernel_rx_buf_size,omitempty"`
	// SyncGroup is filled in from vrrp_sync_group blocks.
	SyncGroup string    `json:"sync_group,omitempty"`
	Ignored   []Ignored `json:"ignored,omitempty"`
}

// Authentication is VRRPv2's authentication block (RFC 3768 §5.3.6).
type Authentication struct {
	AuthType string `json:"auth_type"` // PASS or AH
	AuthPass string `json:"auth_pass"`
}

// UnicastPeer is one line of unicast_peer.
type UnicastPeer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL *uint8     `json:"min_ttl,omitempty"`
	MaxTTL *uint8     `json:"max_ttl,omitempty"`
	Pos    Pos        `json:"-"`
}

// MarshalJSON writes a peer without TTL limits as its address.
func (u UnicastPeer) MarshalJSON() ([]byte, error) {
	if u.MinTTL == nil && u.MaxTTL == nil {
		return json.Marshal(u.Addr)
	}
	type plain UnicastPeer
	return json.Marshal(plain(u))
}

// VMAC is use_vmac: an optional interface name and MAC.
type VMAC struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"use_vmac_addr,omitempty"`
}

// GarpExtraIf is garp_extra_if: the refresh delay for the base interface
// when sending from a VMAC.
type GarpExtraIf struct {
	Delay Duration `json:"delay"`
	All   bool     `json:"all,omitempty"`
}

// SyncGroup is a vrrp_sync_group: instances that change state together.
type SyncGroup struct {
	Block
	Name            string             `json:"name"`
	Group           []string           `json:"group"`
	TrackInterfaces []TrackedInterface `json:"track_interface,omitempty"`
	TrackScripts    []TrackedRef       `json:"track_script,omitempty"`
	TrackFiles      []TrackedRef       `json:"track_file,omitempty"`
	TrackProcesses  []TrackedRef       `json:"track_process,omitempty"`
	Notify
	SMTPAlert               *bool `json:"smtp_alert,omitempty"`
	GlobalTracking          bool  `json:"global_tracking,omitempty"`
	SyncGroupTrackingWeight bool  `json:"sync_group_tracking_weight,omitempty"`
	NotifyPriorityChanges   *bool `json:"notify_priority_changes,omitempty"`
}

// TrackGroup is a track_group: instances listed to share tracking.
type TrackGroup struct {
	Block
	Name  string   `json:"name"`
	Group []string `json:"group"`
}

// GarpGroup is a garp_group: gratuitous ARP/NA settings for interfaces.
type GarpGroup struct {
	Block
	GarpInterval *Duration `json:"garp_interval,omitempty"`
	GnaInterval  *Duration `json:"gna_interval,omitempty"`
	Interfaces   []string  `json:"interfaces,omitempty"`
}

// VRRPScript is a vrrp_script: a command run every interval whose result
// moves the priority of the instances that track it.
type VRRPScript struct {
	Block
	Name     string   `json:"name"`
	Script   *Script  `json:"script"`
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout,omitempty"`
	Weight   int      `json:"weight,omitempty"`
	Reverse  bool     `json:"weight_reverse,omitempty"`
	Rise     uint32   `json:"rise"`
	Fall     uint32   `json:"fall"`
	User     string   `json:"user,omitempty"`
	Group    string   `json:"group,omitempty"`
	InitFail bool     `json:"init_fail,omitempty"`
}

// TrackFileDef is a vrrp_track_file (or track_file): a file holding a
// number that moves priority.
type TrackFileDef struct {
	Block
	Name     string    `json:"name"`
	File     string    `json:"file"`
	Weight   int       `json:"weight,omitempty"`
	Reverse  bool      `json:"weight_reverse,omitempty"`
	InitFile *InitFile `json:"init_file,omitempty"`
}

// InitFile is init_file [VALUE] [overwrite].
type InitFile struct {
	Value     int  `json:"value"`
	Overwrite bool `json:"overwrite,omitempty"`
}

// TrackProcess is a vrrp_track_process.
type TrackProcess struct {
	Block
	Name           string   `json:"name"`
	Process        []string `json:"process"`
	ParamMatch     string   `json:"param_match,omitempty"`
	Weight         int      `json:"weight,omitempty"`
	Reverse        bool     `json:"weight_reverse,omitempty"`
	Quorum         uint32   `json:"quorum"`
	QuorumMax      uint32   `json:"quorum_max,omitempty"`
	Delay          Duration `json:"delay,omitempty"`
	TerminateDelay Duration `json:"terminate_delay,omitempty"`
	ForkDelay      Duration `json:"fork_delay,omitempty"`
	FullCommand    bool     `json:"full_command,omitempty"`
}

// VirtualServerGroup is a virtual_server_group: addresses and fwmarks that
// share one set of real servers.
type VirtualServerGroup struct {
	Block
	Name    string         `json:"name"`
	Entries []VSGroupEntry `json:"entries"`
}

// VSGroupEntry is "IP PORT", "IP-LASTOCTET PORT" (a range) or "fwmark N".
type VSGroupEntry struct {
	IP       netip.Addr `json:"ip,omitzero"`
	RangeEnd netip.Addr `json:"range_end,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	Fwmark   uint32     `json:"fwmark,omitempty"`
	// Family is "inet" or "inet6" when a fwmark entry names it.
	Family string `json:"family,omitempty"`
	Pos    Pos    `json:"-"`
}

// VirtualServer is a virtual_server block: an IPVS service.
type VirtualServer struct {
	Block
	// Exactly one of (IP, Port), Fwmark and Group identifies the service.
	IP                     netip.Addr   `json:"ip,omitzero"`
	Port                   uint16       `json:"port,omitempty"`
	Fwmark                 uint32       `json:"fwmark,omitempty"`
	Group                  string       `json:"group,omitempty"`
	IPFamily               string       `json:"ip_family,omitempty"`
	Protocol               string       `json:"protocol"`
	LBAlgo                 string       `json:"lb_algo"`
	LBKind                 string       `json:"lb_kind"`
	Tunnel                 *Tunnel      `json:"tunnel,omitempty"`
	Hashed                 bool         `json:"hashed,omitempty"`
	Flag1                  bool         `json:"flag-1,omitempty"`
	Flag2                  bool         `json:"flag-2,omitempty"`
	Flag3                  bool         `json:"flag-3,omitempty"`
	SHFallback             bool         `json:"sh-fallback,omitempty"`
	SHPort                 bool         `json:"sh-port,omitempty"`
	MHFallback             bool         `json:"mh-fallback,omitempty"`
	MHPort                 bool         `json:"mh-port,omitempty"`
	OPS                    bool         `json:"ops,omitempty"`
	PersistenceEngine      string       `json:"persistence_engine,omitempty"`
	PersistenceTimeout     Duration     `json:"persistence_timeout,omitempty"`
	PersistenceGranularity string       `json:"persistence_granularity,omitempty"`
	HASuspend              bool         `json:"ha_suspend,omitempty"`
	Virtualhost            string       `json:"virtualhost,omitempty"`
	Alpha                  bool         `json:"alpha,omitempty"`
	Omega                  bool         `json:"omega,omitempty"`
	Quorum                 uint32       `json:"quorum,omitempty"`
	QuorumUp               *Script      `json:"quorum_up,omitempty"`
	QuorumDown             *Script      `json:"quorum_down,omitempty"`
	Hysteresis             uint32       `json:"hysteresis,omitempty"`
	Weight                 *int32       `json:"weight,omitempty"`
	SorryServer            *SorryServer `json:"sorry_server,omitempty"`
	SorryServerInhibit     bool         `json:"sorry_server_inhibit,omitempty"`
	SMTPAlert              *bool        `json:"smtp_alert,omitempty"`
	// Checker defaults inherited by real servers and their checks.
	CheckDefaults
	InhibitOnFailure bool          `json:"inhibit_on_failure,omitempty"`
	RealServers      []*RealServer `json:"real_servers"`
	Ignored          []Ignored     `json:"ignored,omitempty"`
}

// CheckDefaults are the timing keywords that virtual_server, real_server and
// each checker may set; inner blocks inherit from outer ones.
type CheckDefaults struct {
	DelayLoop        *Duration `json:"delay_loop,omitempty"`
	Retry            *uint32   `json:"retry,omitempty"`
	DelayBeforeRetry *Duration `json:"delay_before_retry,omitempty"`
	Warmup           *Duration `json:"warmup,omitempty"`
	ConnectTimeout   *Duration `json:"connect_timeout,omitempty"`
}

// SorryServer is the server IPVS sends traffic to when no real server is up.
type SorryServer struct {
	IP        netip.Addr `json:"ip"`
	Port      uint16     `json:"port,omitempty"`
	LVSMethod string     `json:"lvs_method,omitempty"`
	Tunnel    *Tunnel    `json:"tunnel,omitempty"`
}

// Tunnel is the encapsulation of a TUN server (lvs_method TUN type ...).
type Tunnel struct {
	Type     string `json:"type"`           // ipip, gue or gre
	Port     uint16 `json:"port,omitempty"` // gue only
	Checksum string `json:"checksum"`       // nocsum, csum or remcsum
}

// RealServer is a real_server block.
type RealServer struct {
	Block
	IP               netip.Addr `json:"ip"`
	Port             uint16     `json:"port,omitempty"`
	Weight           int32      `json:"weight"`
	LVSMethod        string     `json:"lvs_method,omitempty"`
	Tunnel           *Tunnel    `json:"tunnel,omitempty"`
	UThreshold       uint32     `json:"uthreshold,omitempty"`
	LThreshold       uint32     `json:"lthreshold,omitempty"`
	InhibitOnFailure *bool      `json:"inhibit_on_failure,omitempty"`
	NotifyUp         *Script    `json:"notify_up,omitempty"`
	NotifyDown       *Script    `json:"notify_down,omitempty"`
	Alpha            *bool      `json:"alpha,omitempty"`
	SMTPAlert        *bool      `json:"smtp_alert,omitempty"`
	Virtualhost      string     `json:"virtualhost,omitempty"`
	CheckDefaults
	Checkers []*Checker `json:"checkers,omitempty"`
	Ignored  []Ignored  `json:"ignored,omitempty"`
}

// Checker is one health check of a real server. Type is the block keyword
// (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK, DNS_CHECK, MISC_CHECK,
// UDP_CHECK, PING_CHECK, FILE_CHECK, BFD_CHECK); the fields that apply to
// it are set.
type Checker struct {
	Block
	Type string `json:"type"`
	// Common connection options (keepalived's check_api).
	ConnectIP      netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort    uint16     `json:"connect_port,omitempty"`
	BindTo         netip.Addr `json:"bindto,omitzero"`
	BindPort       uint16     `json:"bind_port,omitempty"`
	BindIf         string     `json:"bind_if,omitempty"`
	Fwmark         uint32     `json:"fwmark,omitempty"`
	Alpha          *bool      `json:"alpha,omitempty"`
	LogAllFailures *bool      `json:"log_all_failures,omitempty"`
	CheckDefaults
	// HTTP_GET / SSL_GET.
	URLs         []*URL `json:"url,omitempty"`
	HTTPProtocol string `json:"http_protocol,omitempty"`
	Virtualhost  string `json:"virtualhost,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	FastRecovery bool   `json:"fast_recovery,omitempty"`
	// SMTP_CHECK.
	HeloName string     `json:"helo_name,omitempty"`
	Hosts    []*Checker `json:"host,omitempty"`
	// DNS_CHECK.
	DNSType string `json:"type_query,omitempty"`
	DNSName string `json:"name,omitempty"`
	// MISC_CHECK.
	MiscPath    *Script  `json:"misc_path,omitempty"`
	MiscTimeout Duration `json:"misc_timeout,omitempty"`
	MiscDynamic bool     `json:"misc_dynamic,omitempty"`
	User        string   `json:"user,omitempty"`
	Group       string   `json:"group,omitempty"`
	// UDP_CHECK.
	Payload        string `json:"payload,omitempty"`
	RequireReply   string `json:"require_reply,omitempty"`
	MinReplyLength uint32 `json:"min_reply_length,omitempty"`
	MaxReplyLength uint32 `json:"max_reply_length,omitempty"`
	// FILE_CHECK.
	TrackFile string `json:"track_file,omitempty"`
	Weight    *int   `json:"weight,omitempty"`
	Reverse   bool   `json:"weight_reverse,omitempty"`
	// BFD_CHECK.
	BFDName string    `json:"bfd_name,omitempty"`
	Ignored []Ignored `json:"ignored,omitempty"`
}

// URL is a url block of HTTP_GET / SSL_GET.
type URL struct {
	Block
	Path           string   `json:"path"`
	Digest         string   `json:"digest,omitempty"`
	StatusCode     []string `json:"status_code,omitempty"`
	Virtualhost    string   `json:"virtualhost,omitempty"`
	Regex          string   `json:"regex,omitempty"`
	RegexNoMatch   bool     `json:"regex_no_match,omitempty"`
	RegexOptions   []string `json:"regex_options,omitempty"`
	RegexMinOffset uint32   `json:"regex_min_offset,omitempty"`
	RegexMaxOffset uint32   `json:"regex_max_offset,omitempty"`
	RegexStack     uint32   `json:"regex_stack,omitempty"`
}
