// Package config reads keepalived.conf, the interface vrrpkit shares with
// keepalived, into a typed model where every value remembers its file and
// line, and validates it.
//
// The language is keepalived's (see keepalived.conf(5) and keepalived's
// lib/parser.c): line based, '#' and '!' comments, blocks in braces,
// include and its stricter variants, @ID conditionals, $NAME definitions,
// ~SEQ and ~LST line repeaters.
package config

import (
	"io/fs"
	"time"
)

// Parse reads the configuration at path and everything it includes. The
// Config is nil only when the file cannot be read at all; otherwise it holds
// what could be understood, and Diagnostics says whether it is usable
// (no Error findings).
func Parse(path string, opts Options) (*Config, Diagnostics) {
	d := &diags{max: 10000}
	o := opts.withDefaults()
	if _, err := o.Stat(path); err != nil {
		d.errorf(Pos{File: path}, "cannot read configuration file: %v", err)
		return nil, d.list
	}
	lines := readConfig(path, o, d)
	root := buildTree(lines, d)
	dc := &decoder{d: d, opts: &o, cfg: &Config{}}
	dc.decodeRoot(root)
	dc.validate()
	return dc.cfg, d.list
}

// ParseBytes parses data as if it were the file name; includes are resolved
// through opts (by default against the real file system).
func ParseBytes(name string, data []byte, opts Options) (*Config, Diagnostics) {
	read := opts.ReadFile
	if read == nil {
		read = Options{}.withDefaults().ReadFile
	}
	stat := opts.Stat
	if stat == nil {
		stat = Options{}.withDefaults().Stat
	}
	opts.ReadFile = func(n string) ([]byte, error) {
		if n == name {
			return data, nil
		}
		return read(n)
	}
	opts.Stat = func(n string) (fs.FileInfo, error) {
		if n == name {
			return memInfo{name: name, size: int64(len(data))}, nil
		}
		return stat(n)
	}
	return Parse(name, opts)
}

type memInfo struct {
	name string
	size int64
}

func (m memInfo) Name() string       { return m.name }
func (m memInfo) Size() int64        { return m.size }
func (m memInfo) Mode() fs.FileMode  { return 0o644 }
func (m memInfo) ModTime() time.Time { return time.Time{} }
func (m memInfo) IsDir() bool        { return false }
func (m memInfo) Sys() any           { return nil }

// rootTable is keepalived's top level: blocks, plus a few process-wide
// settings keepalived also accepts outside global_defs.
var rootTable = table[*decoder]{
	"global_defs": func(dc *decoder, n *Node, _ *decoder) {
		if !dc.needBlock(n) {
			return
		}
		g := &dc.cfg.GlobalDefs
		if g.Pos == (Pos{}) {
			g.Pos = n.Pos
		}
		decodeBlock(dc, n, "global_defs", globalDefsTable, g, &g.Block)
	},
	"static_ipaddress": func(dc *decoder, n *Node, _ *decoder) {
		dc.cfg.StaticIPAddresses = append(dc.cfg.StaticIPAddresses, dc.addresses(n)...)
	},
	"static_routes": func(dc *decoder, n *Node, _ *decoder) {
		dc.cfg.StaticRoutes = append(dc.cfg.StaticRoutes, dc.routes(n)...)
	},
	"static_rules": func(dc *decoder, n *Node, _ *decoder) {
		dc.cfg.StaticRules = append(dc.cfg.StaticRules, dc.rules(n)...)
	},
	"track_group": func(dc *decoder, n *Node, _ *decoder) {
		name, ok := dc.blockName(n)
		if !ok {
			return
		}
		g := &TrackGroup{Block: Block{Pos: n.Pos}, Name: name}
		decodeBlock(dc, n, "track_group", table[*TrackGroup]{
			"group": func(dc *decoder, n *Node, g *TrackGroup) { g.Group = append(g.Group, dc.values(n)...) },
		}, g, &g.Block)
		dc.cfg.TrackGroups = append(dc.cfg.TrackGroups, g)
		dc.d.warnf(n.Pos, "track_group is accepted but not acted on by vrrpkit yet (addresses with track_group follow their own instance only)")
	},
	"vrrp_sync_group": func(dc *decoder, n *Node, _ *decoder) {
		name, ok := dc.blockName(n)
		if !ok {
			return
		}
		g := &SyncGroup{Block: Block{Pos: n.Pos}, Name: name}
		decodeBlock(dc, n, "vrrp_sync_group", syncGroupTable, g, &g.Block)
		dc.cfg.VRRPSyncGroups = append(dc.cfg.VRRPSyncGroups, g)
	},
	"garp_group": func(dc *decoder, n *Node, _ *decoder) {
		if !dc.needBlock(n) {
			return
		}
		g := &GarpGroup{Block: Block{Pos: n.Pos}}
		decodeBlock(dc, n, "garp_group", garpGroupTable, g, &g.Block)
		dc.cfg.GarpGroups = append(dc.cfg.GarpGroups, g)
		dc.d.warnf(n.Pos, "garp_group is accepted but not acted on by vrrpkit yet (global vrrp_garp_interval / vrrp_gna_interval pace every interface)")
	},
	"vrrp_instance": func(dc *decoder, n *Node, _ *decoder) {
		name, ok := dc.blockName(n)
		if !ok {
			return
		}
		v := &VRRPInstance{Block: Block{Pos: n.Pos}, Name: name, State: "BACKUP", Preempt: true}
		decodeBlock(dc, n, "vrrp_instance "+name, instanceTable, v, &v.Block)
		dc.cfg.VRRPInstances = append(dc.cfg.VRRPInstances, v)
	},
	"vrrp_script": func(dc *decoder, n *Node, _ *decoder) {
		name, ok := dc.blockName(n)
		if !ok {
			return
		}
		s := &VRRPScript{Block: Block{Pos: n.Pos}, Name: name, Interval: Duration(time.Second), Rise: 1, Fall: 1}
		decodeBlock(dc, n, "vrrp_script "+name, vrrpScriptTable, s, &s.Block)
		dc.cfg.VRRPScripts = append(dc.cfg.VRRPScripts, s)
	},
	"vrrp_track_file": trackFileRoot,
	"track_file":      trackFileRoot,
	"vrrp_track_process": func(dc *decoder, n *Node, _ *decoder) {
		name, ok := dc.blockName(n)
		if !ok {
			return
		}
		p := &TrackProcess{Block: Block{Pos: n.Pos}, Name: name, Quorum: 1}
		decodeBlock(dc, n, "vrrp_track_process "+name, trackProcessTable, p, &p.Block)
		dc.cfg.VRRPTrackProcesses = append(dc.cfg.VRRPTrackProcesses, p)
	},
	"virtual_server_group": func(dc *decoder, n *Node, _ *decoder) {
		if g := dc.virtualServerGroup(n); g != nil {
			dc.cfg.VirtualServerGroups = append(dc.cfg.VirtualServerGroups, g)
		}
	},
	"virtual_server": func(dc *decoder, n *Node, _ *decoder) {
		if vs := dc.virtualServer(n); vs != nil {
			dc.cfg.VirtualServers = append(dc.cfg.VirtualServers, vs)
		}
	},
	"SSL": func(dc *decoder, n *Node, _ *decoder) {
		if !dc.needBlock(n) {
			return
		}
		s := &SSL{Block: Block{Pos: n.Pos}}
		decodeBlock(dc, n, "SSL", sslTable, s, &s.Block)
		dc.cfg.SSL = s
	},
}

func init() {
	for kw, why := range map[string]string{
		"bfd_instance":             "BFD is not supported",
		"linkbeat_interfaces":      "vrrpkit watches links over netlink",
		"interface_up_down_delays": "not supported yet",
		"net_namespace":            "run vrrpkit inside the namespace instead",
		"net_namespace_ipvs":       "run vrrpkit inside the namespace instead",
		"namespace_with_ipsets":    "vrrpkit does not program firewalls",
		"use_pid_dir":              "systemd tracks vrrpkit's processes",
		"instance":                 "systemd tracks vrrpkit's processes",
		"child_wait_time":          "vrrpkit's supervisor manages its children",
		"linkbeat_use_polling":     "vrrpkit watches links over netlink",
	} {
		why := why
		rootTable[kw] = func(dc *decoder, n *Node, _ *decoder) {
			n.blockUsed = true
			dc.cfg.Ignored = append(dc.cfg.Ignored, Ignored{Keyword: n.Keyword(), Args: n.Args(), Pos: n.Pos})
			dc.d.warnf(n.Pos, "%q is accepted but not acted on by vrrpkit (%s)", n.Keyword(), why)
		}
	}
}

func trackFileRoot(dc *decoder, n *Node, _ *decoder) {
	name, ok := dc.blockName(n)
	if !ok {
		return
	}
	f := &TrackFileDef{Block: Block{Pos: n.Pos}, Name: name, Weight: 1}
	decodeBlock(dc, n, n.Keyword()+" "+name, trackFileTable, f, &f.Block)
	dc.cfg.VRRPTrackFiles = append(dc.cfg.VRRPTrackFiles, f)
}

// blockName reads "keyword NAME {" and insists on the block.
func (dc *decoder) blockName(n *Node) (string, bool) {
	if len(n.Words) < 2 {
		dc.d.errorf(n.Pos, "%s: missing name", n.Keyword())
		return "", false
	}
	dc.maxArgs(n, 1)
	if !dc.needBlock(n) {
		return "", false
	}
	return n.Words[1], true
}

func (dc *decoder) decodeRoot(root *Node) {
	decodeBlock(dc, root, topLevel, rootTable, dc, nil)
}
