package config

import (
	"cmp"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Keepalived's limits: timers are stored in microseconds in 32 bits.
const (
	maxTimer  = time.Duration(math32) * time.Microsecond
	math32    = 1<<32 - 1
	maxUint32 = math32
	// maxTimerSeconds is the largest whole-second timer keepalived stores.
	maxTimerSeconds = math32 / 1_000_000
)

var globalDefsTable = table[*GlobalDefs]{
	"router_id": func(dc *decoder, n *Node, g *GlobalDefs) { g.RouterID = dc.str(n) },
	"notification_email": func(dc *decoder, n *Node, g *GlobalDefs) {
		g.NotificationEmail = append(g.NotificationEmail, dc.values(n)...)
	},
	"notification_email_from": func(dc *decoder, n *Node, g *GlobalDefs) { g.NotificationEmailFrom = dc.str(n) },
	"smtp_server": func(dc *decoder, n *Node, g *GlobalDefs) {
		if s, ok := dc.arg(n, 1); ok {
			if _, err := netip.ParseAddr(s); err != nil && !isHostname(s) {
				dc.d.errorf(n.Pos, "smtp_server: %q is neither an IP address nor a host name", s)
			}
			g.SMTPServer = s
		}
		if len(n.Words) > 2 {
			if p, ok := dc.uintAt(n, 2, 1, 65535); ok {
				g.SMTPServerPort = uint16(p)
			}
		}
	},
	"smtp_helo_name": func(dc *decoder, n *Node, g *GlobalDefs) { g.SMTPHeloName = dc.str(n) },
	"smtp_connect_timeout": func(dc *decoder, n *Node, g *GlobalDefs) {
		if v, ok := dc.uint(n, 1, 100_000); ok {
			g.SMTPConnectTimeout = Duration(time.Duration(v) * time.Second)
		}
	},
	"smtp_alert":              func(dc *decoder, n *Node, g *GlobalDefs) { g.SMTPAlert = dc.boolPtr(n) },
	"smtp_alert_vrrp":         func(dc *decoder, n *Node, g *GlobalDefs) { g.SMTPAlertVRRP = dc.boolPtr(n) },
	"smtp_alert_checker":      func(dc *decoder, n *Node, g *GlobalDefs) { g.SMTPAlertChecker = dc.boolPtr(n) },
	"no_email_faults":         func(dc *decoder, n *Node, g *GlobalDefs) { g.NoEmailFaults = dc.boolean(n) },
	"startup_script":          func(dc *decoder, n *Node, g *GlobalDefs) { g.StartupScript = dc.script(n) },
	"shutdown_script":         func(dc *decoder, n *Node, g *GlobalDefs) { g.ShutdownScript = dc.script(n) },
	"startup_script_timeout":  func(dc *decoder, n *Node, g *GlobalDefs) { g.StartupScriptTimeout = dc.secondsUint(n, 1, 1000) },
	"shutdown_script_timeout": func(dc *decoder, n *Node, g *GlobalDefs) { g.ShutdownScriptTimeout = dc.secondsUint(n, 1, 1000) },
	"script_user": func(dc *decoder, n *Node, g *GlobalDefs) {
		g.ScriptUser, _ = dc.arg(n, 1)
		if len(n.Words) > 2 {
			g.ScriptGroup = n.Words[2]
		}
		dc.maxArgs(n, 2)
		dc.checkUser(n.Pos, g.ScriptUser)
	},
	"enable_script_security":   func(dc *decoder, n *Node, g *GlobalDefs) { g.EnableScriptSecurity = dc.boolean(n) },
	"dynamic_interfaces":       func(dc *decoder, n *Node, g *GlobalDefs) { g.DynamicInterfaces = true; dc.maxArgs(n, 0) },
	"default_interface":        func(dc *decoder, n *Node, g *GlobalDefs) { g.DefaultInterface = dc.str(n) },
	"checker_log_all_failures": func(dc *decoder, n *Node, g *GlobalDefs) { g.CheckerLogAllFailures = dc.boolean(n) },
	"lvs_flush":                func(dc *decoder, n *Node, g *GlobalDefs) { g.LVSFlush = dc.boolean(n) },
	"lvs_flush_on_stop":        lvsFlushOnStop,
	"lvs_flush_onstop":         deprecated("lvs_flush_on_stop", lvsFlushOnStop), // core/global_parser.c: deprecated after v2.1.5
	"lvs_sync_daemon":          lvsSyncDaemon,
	"lvs_timeouts": func(dc *decoder, n *Node, g *GlobalDefs) {
		a := n.Args()
		if len(a)%2 != 0 || len(a) == 0 {
			dc.d.errorf(n.Pos, "lvs_timeouts: want pairs of tcp|tcpfin|udp SECONDS")
			return
		}
		g.LVSTimeouts = map[string]Duration{}
		for i := 0; i < len(a); i += 2 {
			switch a[i] {
			case "tcp", "tcpfin", "udp":
			default:
				dc.d.errorf(n.Pos, "lvs_timeouts: unknown timeout %q (want tcp, tcpfin or udp)", a[i])
				continue
			}
			if v, err := strconv.ParseUint(a[i+1], 10, 32); err == nil && v <= 86400*31 {
				g.LVSTimeouts[a[i]] = Duration(time.Duration(v) * time.Second)
			} else {
				dc.d.errorf(n.Pos, "lvs_timeouts: %s timeout %q is not a number of seconds", a[i], a[i+1])
			}
		}
	},
	"vrrp_mcast_group4": func(dc *decoder, n *Node, g *GlobalDefs) {
		if a, ok := dc.addrAt(n, 1); ok {
			if !a.Is4() || !a.IsMulticast() {
				dc.d.errorf(n.Pos, "vrrp_mcast_group4: %s is not an IPv4 multicast address", a)
				return
			}
			g.VRRPMcastGroup4 = a
		}
	},
	"vrrp_mcast_group6": func(dc *decoder, n *Node, g *GlobalDefs) {
		if a, ok := dc.addrAt(n, 1); ok {
			if !a.Is6() || !a.IsMulticast() {
				dc.d.errorf(n.Pos, "vrrp_mcast_group6: %s is not an IPv6 multicast address", a)
				return
			}
			g.VRRPMcastGroup6 = a
		}
	},
	"vrrp_garp_master_delay": func(dc *decoder, n *Node, g *GlobalDefs) {
		g.VRRPGarpMasterDelay = dc.secondsPtr(n, 0, maxTimerSeconds)
	},
	"vrrp_garp_master_repeat":  func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPGarpMasterRepeat = dc.uint32Ptr(n, 0, maxUint32) },
	"vrrp_garp_master_refresh": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPGarpMasterRefresh = dc.secondsPtr(n, 0, maxUint32) },
	"vrrp_garp_master_refresh_repeat": func(dc *decoder, n *Node, g *GlobalDefs) {
		g.VRRPGarpMasterRefreshRepeat = dc.uint32Ptr(n, 0, maxUint32)
	},
	"vrrp_garp_lower_prio_delay": func(dc *decoder, n *Node, g *GlobalDefs) {
		g.VRRPGarpLowerPrioDelay = dc.secondsPtr(n, 0, maxTimerSeconds)
	},
	"vrrp_garp_lower_prio_repeat": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPGarpLowerPrioRepeat = dc.uint32Ptr(n, 0, 1<<31-1) },
	"vrrp_garp_interval": func(dc *decoder, n *Node, g *GlobalDefs) {
		if d, ok := dc.duration(n, time.Microsecond, maxTimer); ok {
			g.VRRPGarpInterval = &d
		}
	},
	"vrrp_gna_interval": func(dc *decoder, n *Node, g *GlobalDefs) {
		if d, ok := dc.duration(n, time.Microsecond, maxTimer); ok {
			g.VRRPGnaInterval = &d
		}
	},
	"vrrp_min_garp": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPMinGarp = dc.boolean(n) },
	"vrrp_down_timer_adverts": func(dc *decoder, n *Node, g *GlobalDefs) {
		if v, ok := dc.uint(n, 1, 100); ok {
			g.VRRPDownTimerAdverts = uint32(v)
		}
	},
	"vrrp_lower_prio_no_advert":    func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPLowerPrioNoAdvert = dc.boolPtr(n) },
	"vrrp_higher_prio_send_advert": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPHigherPrioSendAdvert = dc.boolPtr(n) },
	"vrrp_version": func(dc *decoder, n *Node, g *GlobalDefs) {
		if v, ok := dc.uint(n, 2, 3); ok {
			g.VRRPVersion = uint8(v)
		}
	},
	"vrrp_check_unicast_src":   func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPCheckUnicastSrc = dc.boolean(n) },
	"vrrp_skip_check_adv_addr": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPSkipCheckAdvAddr = dc.boolean(n) },
	"vrrp_strict":              func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPStrict = dc.boolean(n) },
	"vrrp_startup_delay": func(dc *decoder, n *Node, g *GlobalDefs) {
		if d, ok := dc.duration(n, 0, time.Hour); ok {
			g.VRRPStartupDelay = d
		}
	},
	"vrrp_notify_priority_changes": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPNotifyPriorityChanges = dc.boolean(n) },
	"max_auto_priority": func(dc *decoder, n *Node, g *GlobalDefs) {
		v := int64(99)
		if len(n.Words) > 1 {
			v, _ = dc.intAt(n, 1, -1, 99)
		}
		iv := int(v)
		g.MaxAutoPriority = &iv
	},
	"notify_fifo":             func(dc *decoder, n *Node, g *GlobalDefs) { g.NotifyFIFO = dc.fifo(n, g.NotifyFIFO) },
	"notify_fifo_script":      func(dc *decoder, n *Node, g *GlobalDefs) { g.NotifyFIFO = dc.fifoScript(n, g.NotifyFIFO) },
	"vrrp_notify_fifo":        func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPNotifyFIFO = dc.fifo(n, g.VRRPNotifyFIFO) },
	"vrrp_notify_fifo_script": func(dc *decoder, n *Node, g *GlobalDefs) { g.VRRPNotifyFIFO = dc.fifoScript(n, g.VRRPNotifyFIFO) },
	"nftables":                nftablesTable,
	"nftables_priority": func(dc *decoder, n *Node, g *GlobalDefs) {
		if v, ok := dc.intAt(n, 1, math.MinInt32, math.MaxInt32); ok {
			dc.maxArgs(n, 1)
			p := int32(v)
			g.NFTablesPriority = &p
		}
	},
	"nftables_ifindex":       func(dc *decoder, n *Node, g *GlobalDefs) { dc.maxArgs(n, 0); g.NFTablesIfindex = true },
	"nftables_counters":      func(dc *decoder, n *Node, g *GlobalDefs) { dc.maxArgs(n, 0); g.NFTablesCounters = true },
	"lvs_notify_fifo":        func(dc *decoder, n *Node, g *GlobalDefs) { g.LVSNotifyFIFO = dc.fifo(n, g.LVSNotifyFIFO) },
	"lvs_notify_fifo_script": func(dc *decoder, n *Node, g *GlobalDefs) { g.LVSNotifyFIFO = dc.fifoScript(n, g.LVSNotifyFIFO) },
	"vmac_prefix":            func(dc *decoder, n *Node, g *GlobalDefs) { g.VMACPrefix = dc.str(n) },
	"vmac_addr_prefix":       func(dc *decoder, n *Node, g *GlobalDefs) { g.VMACAddrPrefix = dc.str(n) },
	"vrrp_garp_extra_if":     globalIgnored("garp_extra_if is per instance in vrrpkit"),
	"vrrp_vmac_garp_intvl":   deprecated("vrrp_garp_extra_if", globalIgnored("garp_extra_if is per instance in vrrpkit")),
}

// isHostname accepts RFC 1123 names; smtp_server may name its relay.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(isAlpha(c) || isDigit(c) || c == '-') {
				return false
			}
		}
	}
	return true
}

// lvsFlushOnStop is "lvs_flush_on_stop [VS]" as core/global_parser.c
// lvs_flush_on_stop_handler reads it: alone, "full" (flush the whole IPVS
// table at stop); VS, "VS" (remove each virtual server, without removing
// its real servers one by one first); nothing else. Unset (""), each real
// server and then each virtual server is removed (check/ipwrapper.c
// clear_services).
func lvsFlushOnStop(dc *decoder, n *Node, g *GlobalDefs) {
	dc.maxArgs(n, 1)
	if len(n.Words) == 1 {
		g.LVSFlushOnStop = "full"
		return
	}
	if n.Words[1] != "VS" {
		dc.d.errorf(n.Pos, "%s: unknown type %q (want nothing, for a full flush, or VS)", n.Keyword(), n.Words[1])
		return
	}
	g.LVSFlushOnStop = "VS"
}

// validateLVSSyncDaemon resolves lvs_sync_daemon's instance and sync id as
// vrrp/vrrp.c vrrp_complete_init does: the sync id defaults to the
// instance's virtual_router_id. keepalived logs a missing instance as a
// config error at start ("Unable to find vrrp instance %s for lvs_syncd -
// clearing lvs_syncd config") and runs without the daemon; its -t never
// gets that far and passes. vrrpkit refuses the file, in -t too, rather
// than run without the daemon the file asks for.
func (dc *decoder) validateLVSSyncDaemon() {
	s := dc.cfg.GlobalDefs.LVSSyncDaemon
	if s == nil {
		return
	}
	// The kernel refuses a daemon on a missing interface (ip_vs_sync.c
	// start_sync_thread: ENODEV).
	dc.checkInterface(s.Pos, s.Interface, "lvs_sync_daemon interface")
	if s.Instance == "" {
		return
	}
	for _, v := range dc.cfg.VRRPInstances {
		if v.Name == s.Instance {
			if !s.SyncIDSet {
				s.SyncID = v.VirtualRouterID
			}
			return
		}
	}
	dc.d.errorf(s.Pos, "lvs_sync_daemon: unable to find vrrp instance %s for lvs_syncd", s.Instance)
}

// ifnameMax is the kernel's IP_VS_IFNAME_MAXLEN, counting the NUL.
const ifnameMax = 16

// lvsSyncDaemon is "lvs_sync_daemon INTERFACE [[inst] VRRP_INSTANCE] [id
// SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group IP]" as
// core/global_parser.c lvs_syncd_handler reads it, with its ranges and its
// old positional form (INTERFACE VRRP_INSTANCE [SYNC_ID]). keepalived
// ignores a bad value with a config error; so does vrrpkit, which refuses
// the file. Whether the instance exists is checked in validate.
func lvsSyncDaemon(dc *decoder, n *Node, g *GlobalDefs) {
	if s := g.LVSSyncDaemon; s != nil {
		// keepalived runs with the first; so do real configurations that
		// repeat it (one per instance, in the hope all are used).
		dc.d.warnf(n.Pos, "lvs_sync_daemon has already been specified as %s %s at %s; ignored", s.Interface, s.Instance, s.Pos)
		return
	}
	if len(n.Words) < 2 {
		dc.d.errorf(n.Pos, "lvs_sync_daemon requires interface")
		return
	}
	if len(n.Words[1]) >= ifnameMax {
		dc.d.errorf(n.Pos, "lvs_sync_daemon interface name '%s' too long (at most %d bytes)", n.Words[1], ifnameMax-1)
		return
	}
	s := &LVSSyncDaemon{Interface: n.Words[1], Pos: n.Pos}
	w := n.Words
	value := func(i int, what string, lo, hi uint64) (uint64, bool) {
		if i+1 >= len(w) {
			dc.d.errorf(n.Pos, "No value specified for lvs_sync_daemon %s", what)
			return 0, false
		}
		v, err := strconv.ParseUint(w[i+1], 10, 64)
		if err != nil || v < lo || v > hi {
			dc.d.errorf(n.Pos, "Invalid lvs_sync_daemon %s (%s): want a whole number in [%d, %d]", what, w[i+1], lo, hi)
			return 0, false
		}
		return v, true
	}
	for i := 2; i < len(w); i++ {
		switch w[i] {
		case "inst":
			if i+1 >= len(w) {
				dc.d.errorf(n.Pos, "No value specified for lvs_sync_daemon inst")
				continue
			}
			if s.Instance != "" {
				dc.d.errorf(n.Pos, "lvs_sync_daemon vrrp instance has already been specified as %s", s.Instance)
			} else {
				s.Instance = w[i+1]
			}
			i++
		case "id":
			if v, ok := value(i, "id", 0, 255); ok {
				s.SyncID, s.SyncIDSet = uint8(v), true
			}
			i++
		case "maxlen":
			// A UDP payload within an IPv4 datagram: 65535 - 20 - 8.
			if v, ok := value(i, "maxlen", 1, 65535-20-8); ok {
				s.MaxLen = uint16(v)
			}
			i++
		case "port":
			if v, ok := value(i, "port", 1, 65535); ok {
				s.Port = uint16(v)
			}
			i++
		case "ttl":
			if v, ok := value(i, "ttl", 1, 255); ok {
				s.TTL = uint8(v)
			}
			i++
		case "group":
			i++
			if i >= len(w) {
				dc.d.errorf(n.Pos, "No value specified for lvs_sync_daemon group")
				continue
			}
			a, err := netip.ParseAddr(w[i])
			switch {
			case err != nil:
				dc.d.errorf(n.Pos, "Invalid lvs_sync_daemon group (%s)", w[i])
			case !a.Unmap().IsMulticast():
				dc.d.errorf(n.Pos, "lvs_sync_daemon group address %s is not multicast", w[i])
			default:
				s.Group = a.Unmap()
			}
		default:
			// The old form: INTERFACE VRRP_INSTANCE [SYNC_ID].
			switch {
			case i == 2:
				s.Instance = w[i]
			case i == 3:
				v, err := strconv.ParseUint(w[i], 10, 8)
				if err != nil {
					dc.d.errorf(n.Pos, "Invalid syncid (%s): want a whole number in [0, 255]", w[i])
					continue
				}
				dc.d.warnf(n.Pos, "Please use keyword \"id\" before lvs_sync_daemon SYNCID")
				s.SyncID, s.SyncIDSet = uint8(v), true
			default:
				dc.d.errorf(n.Pos, "Unknown option %s specified for lvs_sync_daemon", w[i])
			}
		}
	}
	g.LVSSyncDaemon = s
}

// nftTableMaxName is the kernel's NFT_TABLE_MAXNAMELEN, counting the NUL.
const nftTableMaxName = 256

// nftablesTable is "nftables [TABLE]", as core/global_parser.c
// vrrp_nftables_handler reads it: a second one is ignored, a name too long
// for the kernel is ignored, and it resets nftables_priority to -1, so a
// nftables_priority written before it is lost there too.
func nftablesTable(dc *decoder, n *Node, g *GlobalDefs) {
	if g.NFTables {
		dc.d.warnf(n.Pos, "nftables already specified; ignored")
		return
	}
	dc.maxArgs(n, 1)
	name := ""
	if len(n.Words) > 1 {
		name = n.Words[1]
		if len(name) >= nftTableMaxName {
			dc.d.warnf(n.Pos, "nftables: table name is longer than %d bytes; ignored", nftTableMaxName-1)
			return
		}
	}
	if g.NFTablesPriority != nil {
		dc.d.warnf(n.Pos, "nftables resets the nftables_priority given before it to -1, as keepalived does; write nftables_priority after nftables")
		g.NFTablesPriority = nil
	}
	g.NFTables, g.NFTablesTable = true, name
}

func globalIgnored(why string) handler[*GlobalDefs] {
	return ignoredIn(func(g *GlobalDefs) *[]Ignored { return &g.Ignored }, why)
}

func init() {
	// keepalived's knobs for its own process and the integrations vrrpkit
	// replaces (SNMP, DBus, firewall) are accepted so existing files load.
	why := map[string][]string{
		"process tuning is systemd's job under vrrpkit": {
			"vrrp_priority", "vrrp_no_swap", "vrrp_rt_priority", "vrrp_cpu_affinity", "vrrp_rlimit_rttime", "vrrp_rlimit_rtime",
			"checker_priority", "checker_no_swap", "checker_rt_priority", "checker_cpu_affinity", "checker_rlimit_rttime", "checker_rlimit_rtime",
			"bfd_priority", "bfd_no_swap", "bfd_rt_priority", "bfd_cpu_affinity", "bfd_rlimit_rttime", "bfd_rlimit_rtime",
			"process_names", "process_name", "vrrp_process_name", "checker_process_name", "lvs_process_name", "bfd_process_name",
			"child_wait_time", "use_pid_dir", "instance", "umask", "min_auto_priority_delay",
		},
		"netlink buffer sizes are managed by vrrpkit": {
			"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
			"process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
			"lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
		},
		"SNMP and DBus are replaced by vrrpctl and Prometheus metrics": {
			"snmp_socket", "enable_traps", "enable_snmp_vrrp", "enable_snmp_keepalived", "enable_snmp_rfc", "enable_snmp_rfcv2",
			"enable_snmp_rfcv3", "enable_snmp_checker", "enable_dbus", "dbus_service_name",
		},
		"vrrpkit enforces no_accept with nftables (global_defs nftables), never iptables": {
			"vrrp_iptables", "vrrp_ipsets",
		},
		"vrrpkit does not mark IPVS traffic with nftables": {
			"nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark",
		},
		"not supported by vrrpkit": {
			"linkbeat_use_polling", "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
			"disable_local_igmp", "vrrp_no_swap", "rs_init_notifies", "no_checker_emails", "log_unknown_vrids",
			"random_seed", "reload_check_config", "reload_time_file", "reload_repeat", "reload_file", "include_check",
			"config_save_dir", "tmp_config_directory", "data_use_instance", "fifo_write_vrrp_states_on_reload",
		},
	}
	for reason, kws := range why {
		for _, kw := range kws {
			if _, ok := globalDefsTable[kw]; !ok {
				globalDefsTable[kw] = globalIgnored(reason)
			}
		}
	}
}

func (dc *decoder) secondsUint(n *Node, lo, hi uint64) Duration {
	v, _ := dc.uint(n, lo, hi)
	return Duration(time.Duration(v) * time.Second)
}

func (dc *decoder) secondsPtr(n *Node, lo, hi uint64) *Duration {
	v, ok := dc.uint(n, lo, hi)
	if !ok {
		return nil
	}
	d := Duration(time.Duration(v) * time.Second)
	return &d
}

func (dc *decoder) uint32Ptr(n *Node, lo, hi uint64) *uint32 {
	v, ok := dc.uint(n, lo, hi)
	if !ok {
		return nil
	}
	u := uint32(v)
	return &u
}

func (dc *decoder) fifo(n *Node, f *FIFO) *FIFO {
	if f == nil {
		f = &FIFO{}
	}
	f.Path, _ = dc.arg(n, 1)
	if len(n.Words) > 2 {
		f.User = n.Words[2]
	}
	if len(n.Words) > 3 {
		f.Group = n.Words[3]
	}
	dc.maxArgs(n, 3)
	return f
}

func (dc *decoder) fifoScript(n *Node, f *FIFO) *FIFO {
	if f == nil {
		f = &FIFO{}
	}
	f.Script = dc.script(n)
	return f
}

// --- VRRP blocks ------------------------------------------------------

var vrrpScriptTable = table[*VRRPScript]{
	"script": func(dc *decoder, n *Node, s *VRRPScript) { s.Script = dc.script(n) },
	"interval": func(dc *decoder, n *Node, s *VRRPScript) {
		if v, ok := dc.uint(n, 0, maxTimerSeconds); ok {
			s.Interval = Duration(time.Duration(v) * time.Second)
		}
	},
	"timeout": func(dc *decoder, n *Node, s *VRRPScript) {
		if v, ok := dc.uint(n, 0, maxTimerSeconds); ok {
			s.Timeout = Duration(time.Duration(v) * time.Second)
		}
	},
	"weight": func(dc *decoder, n *Node, s *VRRPScript) { s.Weight, s.Reverse = dc.weight(n, 253) },
	"rise": func(dc *decoder, n *Node, s *VRRPScript) {
		if v, ok := dc.uint(n, 1, 1<<31-1); ok {
			s.Rise = uint32(v)
		}
	},
	"fall": func(dc *decoder, n *Node, s *VRRPScript) {
		if v, ok := dc.uint(n, 1, 1<<31-1); ok {
			s.Fall = uint32(v)
		}
	},
	"user": func(dc *decoder, n *Node, s *VRRPScript) {
		s.User, _ = dc.arg(n, 1)
		if len(n.Words) > 2 {
			s.Group = n.Words[2]
		}
		dc.maxArgs(n, 2)
		dc.checkUser(n.Pos, s.User)
	},
	"init_fail": func(dc *decoder, n *Node, s *VRRPScript) { s.InitFail = true; dc.maxArgs(n, 0) },
}

// weight reads "weight N [reverse]" within ±limit.
func (dc *decoder) weight(n *Node, limit int64) (int, bool) {
	v, ok := dc.intAt(n, 1, -limit, limit)
	if !ok {
		return 0, false
	}
	reverse := false
	if len(n.Words) > 2 {
		if n.Words[2] == "reverse" {
			reverse = true
		} else {
			dc.d.errorf(n.Pos, "weight: unknown option %q (want reverse)", n.Words[2])
		}
	}
	dc.maxArgs(n, 2)
	return int(v), reverse
}

var trackFileTable = table[*TrackFileDef]{
	"file":   func(dc *decoder, n *Node, f *TrackFileDef) { f.File = dc.str(n) },
	"weight": func(dc *decoder, n *Node, f *TrackFileDef) { f.Weight, f.Reverse = dc.weight(n, 254) },
	"init_file": func(dc *decoder, n *Node, f *TrackFileDef) {
		f.InitFile = &InitFile{}
		for _, w := range n.Args() {
			if w == "overwrite" {
				f.InitFile.Overwrite = true
				continue
			}
			v, err := strconv.ParseInt(w, 10, 32)
			if err != nil {
				dc.d.errorf(n.Pos, "init_file: %q is neither a number nor \"overwrite\"", w)
				continue
			}
			f.InitFile.Value = int(v)
		}
	},
}

var trackProcessTable = table[*TrackProcess]{
	"process": func(dc *decoder, n *Node, p *TrackProcess) {
		words, err := quotedWords(n.Text)
		if err != nil || len(words) < 2 {
			dc.d.errorf(n.Pos, "process: missing process name")
			return
		}
		p.Process = words[1:]
	},
	"param_match": func(dc *decoder, n *Node, p *TrackProcess) {
		s := dc.str(n)
		switch s {
		case "initial", "partial":
			p.ParamMatch = s
		default:
			dc.d.errorf(n.Pos, "param_match: %q is not initial or partial", s)
		}
	},
	"weight": func(dc *decoder, n *Node, p *TrackProcess) { p.Weight, p.Reverse = dc.weight(n, 254) },
	"quorum": func(dc *decoder, n *Node, p *TrackProcess) {
		if v, ok := dc.uint(n, 1, 65535); ok {
			p.Quorum = uint32(v)
		}
	},
	"quorum_max": func(dc *decoder, n *Node, p *TrackProcess) {
		if v, ok := dc.uint(n, 0, 65535); ok {
			p.QuorumMax = uint32(v)
		}
	},
	"delay": func(dc *decoder, n *Node, p *TrackProcess) {
		p.Delay, _ = dc.duration(n, time.Microsecond, time.Hour)
	},
	"terminate_delay": func(dc *decoder, n *Node, p *TrackProcess) {
		p.TerminateDelay, _ = dc.duration(n, time.Microsecond, time.Hour)
	},
	"fork_delay": func(dc *decoder, n *Node, p *TrackProcess) {
		p.ForkDelay, _ = dc.duration(n, time.Microsecond, time.Hour)
	},
	"full_command": func(dc *decoder, n *Node, p *TrackProcess) { p.FullCommand = true; dc.maxArgs(n, 0) },
}

// trackRefs reads track_script / track_file / track_process blocks:
// "NAME [weight N [reverse]]" per line.
func (dc *decoder) trackRefs(n *Node, limit int64) []TrackedRef {
	var out []TrackedRef
	for _, c := range dc.valueLines(n) {
		ref := TrackedRef{Name: c.Words[0], Pos: c.Pos}
		rest := c.Words[1:]
		if len(rest) > 0 && rest[0] == "weight" {
			if len(rest) < 2 {
				dc.d.errorf(c.Pos, "%s %s: weight needs a value", n.Keyword(), ref.Name)
			} else if v, err := strconv.ParseInt(rest[1], 10, 32); err != nil || v < -limit || v > limit {
				dc.d.errorf(c.Pos, "%s %s: weight %q is not a whole number in [%d, %d]", n.Keyword(), ref.Name, rest[1], -limit, limit)
			} else {
				w := int(v)
				ref.Weight = &w
			}
			rest = rest[min(2, len(rest)):]
			if len(rest) > 0 && rest[0] == "reverse" {
				ref.Reverse = true
				rest = rest[1:]
			}
		}
		if len(rest) > 0 {
			dc.d.errorf(c.Pos, "%s %s: unexpected %q", n.Keyword(), ref.Name, strings.Join(rest, " "))
		}
		out = append(out, ref)
	}
	return out
}

// valueLines returns the lines of a value block; a one-line block such as
// "track_script { a b }" gives one line per word, as keepalived reads it.
func (dc *decoder) valueLines(n *Node) []*Node {
	if !n.HasBlock && len(n.Words) > 1 {
		var out []*Node
		for _, w := range n.Args() {
			out = append(out, &Node{Pos: n.Pos, Words: []string{w}, Text: w})
		}
		return out
	}
	return dc.lines(n)
}

func (dc *decoder) trackInterfaces(n *Node) []TrackedInterface {
	var out []TrackedInterface
	for _, c := range dc.valueLines(n) {
		ti := TrackedInterface{Name: c.Words[0], Pos: c.Pos}
		rest := c.Words[1:]
		if len(rest) >= 2 && rest[0] == "weight" {
			v, err := strconv.ParseInt(rest[1], 10, 32)
			if err != nil || v < -254 || v > 254 {
				dc.d.errorf(c.Pos, "track_interface %s: weight %q is not a whole number in [-254, 254]", ti.Name, rest[1])
			}
			ti.Weight = int(v)
			rest = rest[2:]
			if len(rest) > 0 && rest[0] == "reverse" {
				ti.Reverse = true
				rest = rest[1:]
			}
		}
		if len(rest) > 0 {
			dc.d.errorf(c.Pos, "track_interface %s: unexpected %q", ti.Name, strings.Join(rest, " "))
		}
		dc.checkInterface(c.Pos, ti.Name, "tracked interface")
		out = append(out, ti)
	}
	return out
}

func notifyHandlers[T any](get func(T) *Notify) map[string]handler[T] {
	set := func(pick func(*Notify) **Script) handler[T] {
		return func(dc *decoder, n *Node, t T) { *pick(get(t)) = dc.script(n) }
	}
	return map[string]handler[T]{
		"notify_master":              set(func(x *Notify) **Script { return &x.Master }),
		"notify_backup":              set(func(x *Notify) **Script { return &x.Backup }),
		"notify_fault":               set(func(x *Notify) **Script { return &x.Fault }),
		"notify_stop":                set(func(x *Notify) **Script { return &x.Stop }),
		"notify":                     set(func(x *Notify) **Script { return &x.Any }),
		"notify_deleted":             set(func(x *Notify) **Script { return &x.Deleted }),
		"notify_master_rx_lower_pri": set(func(x *Notify) **Script { return &x.MasterRxLowerPri }),
	}
}

var syncGroupTable = func() table[*SyncGroup] {
	t := table[*SyncGroup]{
		"group": func(dc *decoder, n *Node, g *SyncGroup) { g.Group = append(g.Group, dc.values(n)...) },
		"track_interface": func(dc *decoder, n *Node, g *SyncGroup) {
			g.TrackInterfaces = append(g.TrackInterfaces, dc.trackInterfaces(n)...)
		},
		"track_script": func(dc *decoder, n *Node, g *SyncGroup) {
			g.TrackScripts = append(g.TrackScripts, dc.trackRefs(n, 254)...)
		},
		"track_file": func(dc *decoder, n *Node, g *SyncGroup) { g.TrackFiles = append(g.TrackFiles, dc.trackRefs(n, 254)...) },
		"track_process": func(dc *decoder, n *Node, g *SyncGroup) {
			g.TrackProcesses = append(g.TrackProcesses, dc.trackRefs(n, 254)...)
		},
		"smtp_alert":                 func(dc *decoder, n *Node, g *SyncGroup) { g.SMTPAlert = dc.boolPtr(n) },
		"global_tracking":            deprecated("sync_group_tracking_weight", func(dc *decoder, n *Node, g *SyncGroup) { g.GlobalTracking = true }),
		"sync_group_tracking_weight": func(dc *decoder, n *Node, g *SyncGroup) { g.SyncGroupTrackingWeight = true },
		"notify_priority_changes":    func(dc *decoder, n *Node, g *SyncGroup) { g.NotifyPriorityChanges = dc.boolPtr(n) },
		"track_bfd": func(dc *decoder, n *Node, g *SyncGroup) {
			n.blockUsed = true
			dc.d.warnf(n.Pos, "track_bfd is accepted but not acted on by vrrpkit (BFD is not supported)")
		},
	}
	for k, h := range notifyHandlers(func(g *SyncGroup) *Notify { return &g.Notify }) {
		t[k] = h
	}
	return t
}()

var instanceTable = func() table[*VRRPInstance] {
	t := table[*VRRPInstance]{
		"state": func(dc *decoder, n *Node, v *VRRPInstance) {
			s := dc.str(n)
			switch s {
			case "MASTER", "BACKUP":
				v.State = s
			default:
				dc.d.errorf(n.Pos, "state: %q is not MASTER or BACKUP", s)
			}
		},
		"interface": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.Interface = dc.str(n)
			dc.checkInterface(n.Pos, v.Interface, "interface")
		},
		"virtual_router_id": func(dc *decoder, n *Node, v *VRRPInstance) {
			if x, ok := dc.uint(n, 1, 255); ok {
				v.VirtualRouterID = uint8(x)
			}
		},
		"priority": func(dc *decoder, n *Node, v *VRRPInstance) {
			if x, ok := dc.uint(n, 1, 255); ok {
				v.Priority = uint8(x)
			}
		},
		"advert_int": func(dc *decoder, n *Node, v *VRRPInstance) {
			if d, ok := dc.duration(n, 10*time.Millisecond, 255*time.Second); ok {
				v.AdvertInt = d
			}
		},
		"version": func(dc *decoder, n *Node, v *VRRPInstance) {
			if x, ok := dc.uint(n, 2, 3); ok {
				v.Version = uint8(x)
			}
		},
		"virtual_ipaddress": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.VirtualIPAddresses = append(v.VirtualIPAddresses, dc.addresses(n)...)
		},
		"virtual_ipaddress_excluded": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.VirtualIPAddressesExcluded = append(v.VirtualIPAddressesExcluded, dc.addresses(n)...)
		},
		"virtual_routes": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.VirtualRoutes = append(v.VirtualRoutes, dc.routes(n)...)
		},
		"virtual_rules": func(dc *decoder, n *Node, v *VRRPInstance) { v.VirtualRules = append(v.VirtualRules, dc.rules(n)...) },
		"authentication": func(dc *decoder, n *Node, v *VRRPInstance) {
			if !dc.needBlock(n) {
				return
			}
			v.Authentication = &Authentication{}
			decodeBlock(dc, n, "authentication", authTable, v.Authentication, nil)
		},
		"unicast_src_ip": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.UnicastSrcIP, _ = dc.addrAt(n, 1)
			dc.maxArgs(n, 1)
		},
		"unicast_peer": func(dc *decoder, n *Node, v *VRRPInstance) {
			peers := dc.unicastPeers(n)
			if len(n.Children) == 0 && len(n.Args()) == 0 && len(v.UnicastPeers) == 0 {
				// keepalived 2.2.7's words; it multicasts (or, with
				// unicast_fault_no_peer, stays in FAULT).
				dc.d.warnf(n.Pos, "(%s) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration.", v.Name)
			}
			v.UnicastPeers = append(v.UnicastPeers, peers...)
		},
		"unicast_ttl": func(dc *decoder, n *Node, v *VRRPInstance) {
			if x, ok := dc.uint(n, 0, 255); ok {
				t := uint8(x)
				v.UnicastTTL = &t
			}
		},
		"unicast_fault_no_peer": func(dc *decoder, n *Node, v *VRRPInstance) { v.UnicastFaultNoPeer = true; dc.maxArgs(n, 0) },
		"check_unicast_src":     func(dc *decoder, n *Node, v *VRRPInstance) { v.CheckUnicastSrc = dc.boolean(n) },
		"mcast_src_ip": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.McastSrcIP, _ = dc.addrAt(n, 1)
			dc.maxArgs(n, 1)
		},
		"mcast_dst_ip": func(dc *decoder, n *Node, v *VRRPInstance) {
			a, ok := dc.addrAt(n, 1)
			if ok && !a.IsMulticast() {
				dc.d.errorf(n.Pos, "mcast_dst_ip: %s is not a multicast address", a)
				return
			}
			v.McastDstIP = a
		},
		"track_src_ip": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.TrackSrcIP = true
			dc.maxArgs(n, 0)
			dc.d.warnf(n.Pos, "track_src_ip is accepted but not acted on by vrrpkit yet (a vanished source address is not a fault)")
		},
		"native_ipv6": func(dc *decoder, n *Node, v *VRRPInstance) { v.NativeIPv6 = true; dc.maxArgs(n, 0) },
		"use_vmac": func(dc *decoder, n *Node, v *VRRPInstance) {
			if v.UseVMAC == nil {
				v.UseVMAC = &VMAC{}
			}
			if len(n.Words) > 1 {
				v.UseVMAC.Name = n.Words[1]
			}
			dc.maxArgs(n, 1)
		},
		"use_vmac_addr": func(dc *decoder, n *Node, v *VRRPInstance) {
			if v.UseVMAC == nil {
				v.UseVMAC = &VMAC{}
			}
			v.UseVMAC.Addr = dc.str(n)
		},
		"vmac_xmit_base": func(dc *decoder, n *Node, v *VRRPInstance) { v.VMACXmitBase = true; dc.maxArgs(n, 0) },
		"use_ipvlan": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.UseIPVLAN = strings.Join(n.Args(), " ")
			if v.UseIPVLAN == "" {
				v.UseIPVLAN = "default"
			}
			dc.d.warnf(n.Pos, "use_ipvlan is accepted but not acted on by vrrpkit yet (the VIPs go on the interface itself)")
		},
		"dont_track_primary": func(dc *decoder, n *Node, v *VRRPInstance) { v.DontTrackPrimary = true; dc.maxArgs(n, 0) },
		"track_interface": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.TrackInterfaces = append(v.TrackInterfaces, dc.trackInterfaces(n)...)
		},
		"track_script": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.TrackScripts = append(v.TrackScripts, dc.trackRefs(n, 253)...)
		},
		"track_file": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.TrackFiles = append(v.TrackFiles, dc.trackRefs(n, 254)...)
		},
		"track_process": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.TrackProcesses = append(v.TrackProcesses, dc.trackRefs(n, 254)...)
		},
		"track_bfd": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.Ignored = append(v.Ignored, Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
			n.blockUsed = true
			dc.d.warnf(n.Pos, "track_bfd is accepted but not acted on by vrrpkit (BFD is not supported)")
		},
		"preempt": func(dc *decoder, n *Node, v *VRRPInstance) { v.Preempt = dc.boolean(n) },
		"nopreempt": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.Preempt = false
			dc.maxArgs(n, 0)
		},
		"preempt_delay": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.PreemptDelay, _ = dc.duration(n, 0, 1000*time.Second)
		},
		"accept":              func(dc *decoder, n *Node, v *VRRPInstance) { t := true; v.Accept = &t; dc.maxArgs(n, 0) },
		"no_accept":           func(dc *decoder, n *Node, v *VRRPInstance) { f := false; v.Accept = &f; dc.maxArgs(n, 0) },
		"skip_check_adv_addr": func(dc *decoder, n *Node, v *VRRPInstance) { v.SkipCheckAdvAddr = dc.boolean(n) },
		"strict_mode":         func(dc *decoder, n *Node, v *VRRPInstance) { v.StrictMode = dc.boolPtr(n) },
		"promote_secondaries": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.PromoteSecondaries = true
			dc.maxArgs(n, 0)
			dc.d.warnf(n.Pos, "promote_secondaries is accepted but not acted on by vrrpkit yet (set net.ipv4.conf.%s.promote_secondaries=1 yourself)", cmp.Or(v.Interface, "IFACE"))
		},
		"garp_master_delay": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.GarpMasterDelay = dc.secondsPtr(n, 0, maxTimerSeconds)
		},
		"garp_master_repeat":         func(dc *decoder, n *Node, v *VRRPInstance) { v.GarpMasterRepeat = dc.uint32Ptr(n, 0, maxUint32) },
		"garp_master_refresh":        func(dc *decoder, n *Node, v *VRRPInstance) { v.GarpMasterRefresh = dc.secondsPtr(n, 0, maxUint32) },
		"garp_master_refresh_repeat": func(dc *decoder, n *Node, v *VRRPInstance) { v.GarpMasterRefreshRepeat = dc.uint32Ptr(n, 0, maxUint32) },
		"garp_lower_prio_delay": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.GarpLowerPrioDelay = dc.secondsPtr(n, 0, maxTimerSeconds)
		},
		"garp_lower_prio_repeat": func(dc *decoder, n *Node, v *VRRPInstance) { v.GarpLowerPrioRepeat = dc.uint32Ptr(n, 0, 1<<31-1) },
		"garp_extra_if":          garpExtraIf,
		"vmac_garp_intvl":        deprecated("garp_extra_if", garpExtraIf),
		"down_timer_adverts": func(dc *decoder, n *Node, v *VRRPInstance) {
			if x, ok := dc.uint(n, 1, 100); ok {
				v.DownTimerAdverts = uint32(x)
			}
		},
		"lower_prio_no_advert":    func(dc *decoder, n *Node, v *VRRPInstance) { v.LowerPrioNoAdvert = dc.boolPtr(n) },
		"higher_prio_send_advert": func(dc *decoder, n *Node, v *VRRPInstance) { v.HigherPrioSendAdvert = dc.boolPtr(n) },
		"smtp_alert":              func(dc *decoder, n *Node, v *VRRPInstance) { v.SMTPAlert = dc.boolPtr(n) },
		"notify_priority_changes": func(dc *decoder, n *Node, v *VRRPInstance) { v.NotifyPriorityChanges = dc.boolPtr(n) },
		"debug": func(dc *decoder, n *Node, v *VRRPInstance) {
			x := uint64(1)
			if len(n.Words) > 1 {
				x, _ = dc.uint(n, 0, 4)
			}
			v.Debug = uint8(x)
		},
		"kernel_rx_buf_size": func(dc *decoder, n *Node, v *VRRPInstance) {
			if x, ok := dc.uint(n, 0, maxUint32); ok {
				v.KernelRxBufSize = uint32(x)
			}
		},
		// vrrp/vrrp_parser.c vrrp_lvs_syncd_handler: the sync daemon on
		// INTERFACE following this instance, deprecated since v1.2.19.
		"lvs_sync_daemon_interface": func(dc *decoder, n *Node, v *VRRPInstance) {
			dc.d.warnf(n.Pos, "(%s) Specifying lvs_sync_daemon_interface against a vrrp is deprecated; use global_defs lvs_sync_daemon %s %s", v.Name, strings.Join(n.Args(), " "), v.Name)
			g := &dc.cfg.GlobalDefs
			if s := g.LVSSyncDaemon; s != nil {
				dc.d.warnf(n.Pos, "(%s) lvs_sync_daemon_interface has already been specified as %s at %s; ignored", v.Name, s.Interface, s.Pos)
				return
			}
			ifname := dc.str(n)
			if ifname == "" {
				return
			}
			if len(ifname) >= ifnameMax {
				dc.d.errorf(n.Pos, "lvs_sync_daemon_interface name '%s' too long (at most %d bytes)", ifname, ifnameMax-1)
				return
			}
			g.LVSSyncDaemon = &LVSSyncDaemon{Interface: ifname, Instance: v.Name, Pos: n.Pos}
		},
		"linkbeat_use_polling": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.Ignored = append(v.Ignored, Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
			dc.d.warnf(n.Pos, "linkbeat_use_polling is accepted but not acted on: vrrpkit watches links over netlink")
		},
		"vrf": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.Ignored = append(v.Ignored, Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
			dc.d.warnf(n.Pos, "vrf is accepted but not acted on by vrrpkit yet")
		},
		"old_unicast_checksum": func(dc *decoder, n *Node, v *VRRPInstance) {
			v.Ignored = append(v.Ignored, Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
			dc.d.warnf(n.Pos, "old_unicast_checksum is accepted but not acted on by vrrpkit")
		},
	}
	for k, h := range notifyHandlers(func(v *VRRPInstance) *Notify { return &v.Notify }) {
		t[k] = h
	}
	return t
}()

func garpExtraIf(dc *decoder, n *Node, v *VRRPInstance) {
	g := &GarpExtraIf{}
	i := 1
	if len(n.Words) > 1 && n.Words[1] == "all" {
		g.All = true
		i = 2
	}
	if d, ok := dc.durationAt(n, i, 0, 255*time.Second); ok {
		g.Delay = d
	}
	v.GarpExtraIf = g
}

var authTable = table[*Authentication]{
	"auth_type": func(dc *decoder, n *Node, a *Authentication) {
		s := dc.str(n)
		switch s {
		case "PASS", "AH":
			a.AuthType = s
		default:
			dc.d.errorf(n.Pos, "auth_type: %q is not PASS or AH", s)
		}
	},
	"auth_pass": func(dc *decoder, n *Node, a *Authentication) {
		a.AuthPass = dc.str(n)
		if len(a.AuthPass) > 8 {
			dc.d.warnf(n.Pos, "auth_pass: only the first 8 characters are used (RFC 3768 §5.3.6)")
			a.AuthPass = a.AuthPass[:8]
		}
	},
}

func (dc *decoder) unicastPeers(n *Node) []UnicastPeer {
	var out []UnicastPeer
	for _, c := range dc.valueLines(n) {
		a, err := netip.ParseAddr(c.Words[0])
		if err != nil {
			dc.d.errorf(c.Pos, "unicast_peer: %q is not an IP address", c.Words[0])
			continue
		}
		p := UnicastPeer{Addr: a.Unmap(), Pos: c.Pos}
		for i := 1; i < len(c.Words); i++ {
			kw := c.Words[i]
			if (kw == "min_ttl" || kw == "max_ttl") && i+1 < len(c.Words) {
				v, err := strconv.ParseUint(c.Words[i+1], 10, 8)
				if err != nil {
					dc.d.errorf(c.Pos, "unicast_peer %s: %s %q is not in [0, 255]", a, kw, c.Words[i+1])
				}
				t := uint8(v)
				if kw == "min_ttl" {
					p.MinTTL = &t
				} else {
					p.MaxTTL = &t
				}
				i++
				continue
			}
			dc.d.errorf(c.Pos, "unicast_peer %s: unknown option %q", a, kw)
			break
		}
		out = append(out, p)
	}
	return out
}

// addresses reads virtual_ipaddress-style lines (ip-address(8) syntax as
// keepalived accepts it).
func (dc *decoder) addresses(n *Node) []VirtualAddress {
	dc.maxArgs(n, 0)
	var out []VirtualAddress
	for _, c := range dc.lines(n) {
		if a, ok := dc.address(c, n.Keyword()); ok {
			out = append(out, a)
		}
	}
	return out
}

func (dc *decoder) address(c *Node, what string) (VirtualAddress, bool) {
	w := c.Words
	p, err := parsePrefix(w[0])
	if err != nil {
		dc.d.errorf(c.Pos, "%s: %q is not an address or prefix: %v", what, w[0], err)
		return VirtualAddress{}, false
	}
	va := VirtualAddress{Prefix: p, Pos: c.Pos}
	for i := 1; i < len(w); i++ {
		opt := w[i]
		next := func() (string, bool) {
			if i+1 >= len(w) {
				dc.d.errorf(c.Pos, "%s %s: %s needs a value", what, w[0], opt)
				return "", false
			}
			i++
			return w[i], true
		}
		switch opt {
		case "dev":
			if s, ok := next(); ok {
				va.Dev = s
				dc.checkInterface(c.Pos, s, "interface of address "+w[0])
			}
		case "label":
			if s, ok := next(); ok {
				va.Label = s
				if len(s) > 15 {
					dc.d.errorf(c.Pos, "%s %s: label %q is longer than 15 characters", what, w[0], s)
				}
			}
		case "scope":
			if s, ok := next(); ok {
				switch s {
				case "host", "link", "global", "site", "nowhere":
					va.Scope = s
				default:
					if v, err := strconv.ParseUint(s, 0, 8); err == nil {
						va.Scope = strconv.FormatUint(v, 10)
					} else {
						dc.d.errorf(c.Pos, "%s %s: unknown scope %q", what, w[0], s)
					}
				}
			}
		case "brd", "broadcast":
			if s, ok := next(); ok {
				if s == "+" || s == "-" {
					dc.d.warnf(c.Pos, "%s %s: brd %s is computed by the kernel", what, w[0], s)
					continue
				}
				b, err := netip.ParseAddr(s)
				if err != nil || !b.Unmap().Is4() || !p.Addr().Is4() {
					dc.d.errorf(c.Pos, "%s %s: broadcast %q is not an IPv4 address", what, w[0], s)
					continue
				}
				va.Broadcast = b.Unmap()
			}
		case "peer":
			if s, ok := next(); ok {
				pp, err := parsePrefix(s)
				if err != nil || pp.Addr().Is4() != p.Addr().Is4() {
					dc.d.errorf(c.Pos, "%s %s: peer %q is not an address of the same family", what, w[0], s)
					continue
				}
				va.Peer = pp
			}
		case "home":
			va.Home = true
		case "-nodad", "nodad":
			va.NoDAD = true
		case "noprefixroute":
			va.NoPrefixRoute = true
		case "autojoin":
			va.AutoJoin = true
		case "no_track":
			va.NoTrack = true
		case "track":
			va.Track = true
		case "mngtmpaddr":
			va.MngTmpAddr = true
		case "use_vmac":
			va.UseVMAC = true
		case "track_group":
			if s, ok := next(); ok {
				va.TrackGroup = s
			}
		case "preferred_lft":
			if s, ok := next(); ok {
				if s == "forever" {
					continue
				}
				v, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					dc.d.errorf(c.Pos, "%s %s: preferred_lft %q is not a number", what, w[0], s)
					continue
				}
				u := uint32(v)
				va.PreferredLft = &u
			}
		default:
			dc.d.errorf(c.Pos, "%s %s: unknown option %q", what, w[0], opt)
			return va, false
		}
	}
	return va, true
}

var routeTypes = map[string]bool{
	"unicast": true, "blackhole": true, "unreachable": true, "prohibit": true, "throw": true,
	"local": true, "broadcast": true, "anycast": true, "multicast": true, "nat": true,
}

// routes reads virtual_routes / static_routes lines in ip-route(8) syntax.
func (dc *decoder) routes(n *Node) []Route {
	dc.maxArgs(n, 0)
	var out []Route
	for _, c := range dc.lines(n) {
		w := c.Words
		r := Route{Pos: c.Pos}
		i := 0
		if routeTypes[w[0]] {
			r.Type = w[0]
			i++
		}
		if i < len(w) && w[i] == "to" {
			i++
		}
		var srcFirst string
		if i+1 < len(w) && w[i] == "src" {
			// keepalived's "src ADDR to DEST" form.
			srcFirst = w[i+1]
			i += 2
			if i < len(w) && w[i] == "to" {
				i++
			}
		}
		if i >= len(w) {
			dc.d.errorf(c.Pos, "%s: missing destination", n.Keyword())
			continue
		}
		family := ""
		if w[i] == "inet" || w[i] == "inet6" {
			family = w[i]
			i++
			if i >= len(w) {
				dc.d.errorf(c.Pos, "%s: missing destination after %s", n.Keyword(), family)
				continue
			}
		}
		dest := w[i]
		switch dest {
		case "default", "any", "all":
			dest = "0.0.0.0/0"
			if family == "inet6" {
				dest = "::/0"
			}
		case "default6":
			dc.d.warnf(c.Pos, "%s: \"default6\" is deprecated; use \"inet6 default\"", n.Keyword())
			dest = "::/0"
		}
		p, err := parsePrefix(dest)
		if err != nil {
			dc.d.errorf(c.Pos, "%s: %q is not a destination prefix: %v", n.Keyword(), w[i], err)
			continue
		}
		r.To = p
		if srcFirst != "" {
			r.Src = dc.routeAddr(c, n.Keyword(), "src", srcFirst, p)
		}
		ok := true
		for i++; i < len(w) && ok; i++ {
			opt := w[i]
			switch opt {
			case "no_track":
				r.NoTrack = true
				continue
			case "onlink", "pervasive":
				r.setOption(opt, "")
				continue
			case "nexthop":
				r.setOption("nexthop", strings.Join(w[i+1:], " "))
				i = len(w)
				continue
			}
			if i+1 >= len(w) {
				dc.d.errorf(c.Pos, "%s %s: %s needs a value", n.Keyword(), w[0], opt)
				ok = false
				break
			}
			val := w[i+1]
			i++
			if (opt == "via" || opt == "gw" || opt == "or") && (val == "inet" || val == "inet6") && i+1 < len(w) {
				// ip-route(8): via [FAMILY] ADDRESS
				i++
				val = w[i]
			}
			switch opt {
			case "or":
				// keepalived's alternative gateway: "via A or B".
				dc.d.warnf(c.Pos, "%s: \"or\" is deprecated; use \"nexthop\"", n.Keyword())
				r.setOption("or", val)
			case "gw":
				dc.d.warnf(c.Pos, "%s: \"gw\" is deprecated; use \"via\"", n.Keyword())
				r.Via = dc.routeAddr(c, n.Keyword(), opt, val, netip.Prefix{})
			case "via":
				r.Via = dc.routeAddr(c, n.Keyword(), opt, val, netip.Prefix{})
			case "src":
				r.Src = dc.routeAddr(c, n.Keyword(), opt, val, p)
			case "dev", "oif":
				r.Dev = val
				dc.checkInterface(c.Pos, val, "route interface")
			case "table":
				r.Table = val
			case "metric", "priority", "preference":
				v, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					dc.d.errorf(c.Pos, "%s: metric %q is not a number", n.Keyword(), val)
				}
				m := uint32(v)
				r.Metric = &m
			case "scope":
				r.Scope = val
			case "protocol", "proto", "tos", "dsfield", "mtu", "advmss", "realms", "realm", "rtt", "rttvar", "reordering",
				"window", "cwnd", "ssthresh", "initcwnd", "initrwnd", "features", "quickack", "congctl", "pref",
				"expires", "fastopen_no_cookie", "hoplimit", "rto_min", "ttl-propagate", "lock":
				r.setOption(opt, val)
			default:
				dc.d.errorf(c.Pos, "%s %s: unknown option %q", n.Keyword(), w[0], opt)
				ok = false
			}
		}
		if ok {
			if r.Dev == "" && !r.NoTrack {
				dc.d.warnf(c.Pos, "%s: route %s has no dev, so it cannot be tracked", n.Keyword(), r.To)
			}
			out = append(out, r)
		}
	}
	return out
}

func (r *Route) setOption(k, v string) {
	if r.Options == nil {
		r.Options = map[string]string{}
	}
	r.Options[k] = v
}

func (dc *decoder) routeAddr(c *Node, what, opt, s string, family netip.Prefix) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		dc.d.errorf(c.Pos, "%s: %s %q is not an IP address", what, opt, s)
		return netip.Addr{}
	}
	a = a.Unmap()
	if family.IsValid() && a.Is4() != family.Addr().Is4() {
		dc.d.errorf(c.Pos, "%s: %s %s is not of the family of %s", what, opt, a, family)
	}
	return a
}

// rules reads virtual_rules / static_rules lines in ip-rule(8) syntax.
func (dc *decoder) rules(n *Node) []Rule {
	dc.maxArgs(n, 0)
	var out []Rule
	for _, c := range dc.lines(n) {
		w := c.Words
		r := Rule{Pos: c.Pos}
		ok := true
		for i := 0; i < len(w) && ok; i++ {
			opt := w[i]
			switch opt {
			case "no_track":
				r.NoTrack = true
				continue
			case "not", "l3mdev":
				r.setOption(opt, "")
				continue
			case "blackhole", "unreachable", "prohibit", "nop":
				r.Action = opt
				continue
			}
			if i+1 >= len(w) {
				dc.d.errorf(c.Pos, "%s: %s needs a value", n.Keyword(), opt)
				ok = false
				break
			}
			val := w[i+1]
			i++
			switch opt {
			case "from", "to":
				if val == "all" {
					continue
				}
				p, err := parsePrefix(val)
				if err != nil {
					dc.d.errorf(c.Pos, "%s: %s %q is not an address or prefix: %v", n.Keyword(), opt, val, err)
					ok = false
					continue
				}
				if opt == "from" {
					r.From = p
				} else {
					r.To = p
				}
			case "table", "lookup":
				r.Table = val
			case "preference", "priority", "pref", "order":
				v, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					dc.d.errorf(c.Pos, "%s: preference %q is not a number", n.Keyword(), val)
				}
				u := uint32(v)
				r.Preference = &u
			case "fwmark":
				r.Fwmark = val
			case "iif", "dev":
				r.Iif = val
			case "oif":
				r.Oif = val
			case "goto":
				r.Action = "goto " + val
			case "tos", "dsfield", "realms", "suppress_prefixlength", "suppress_ifgroup", "uidrange", "ipproto",
				"sport", "dport", "protocol", "tun_id", "nat", "map-to", "type":
				r.setOption(opt, val)
			default:
				dc.d.errorf(c.Pos, "%s: unknown option %q", n.Keyword(), opt)
				ok = false
			}
		}
		if ok && r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4() {
			dc.d.errorf(c.Pos, "%s: from and to are of different families", n.Keyword())
			ok = false
		}
		if ok {
			if r.Preference == nil {
				dc.d.warnf(c.Pos, "%s: no preference; the kernel will pick one, which is probably not what you want", n.Keyword())
			}
			out = append(out, r)
		}
	}
	return out
}

func (r *Rule) setOption(k, v string) {
	if r.Options == nil {
		r.Options = map[string]string{}
	}
	r.Options[k] = v
}

var garpGroupTable = table[*GarpGroup]{
	"garp_interval": func(dc *decoder, n *Node, g *GarpGroup) {
		if d, ok := dc.duration(n, 0, maxTimer); ok {
			g.GarpInterval = &d
		}
	},
	"gna_interval": func(dc *decoder, n *Node, g *GarpGroup) {
		if d, ok := dc.duration(n, 0, maxTimer); ok {
			g.GnaInterval = &d
		}
	},
	"interface":  func(dc *decoder, n *Node, g *GarpGroup) { g.Interfaces = append(g.Interfaces, dc.str(n)) },
	"interfaces": func(dc *decoder, n *Node, g *GarpGroup) { g.Interfaces = append(g.Interfaces, dc.values(n)...) },
}
