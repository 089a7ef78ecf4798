package config

import (
	"net/netip"
	"testing"
	"time"
)

// TestLVSSyncDaemon: lvs_sync_daemon as core/global_parser.c reads it, and
// the sync id's default from the instance (vrrp/vrrp.c vrrp_complete_init).
func TestLVSSyncDaemon(t *testing.T) {
	vi1 := instance("VI_1", "eth0", 51, "10.0.0.1/24")
	tests := []struct {
		name  string
		lines string
		want  *LVSSyncDaemon
		diags []string // "LINE: SEVERITY: SUBSTRING"; lines in global_defs count from 2
	}{
		{"interface and instance: sync id is the VRID", "lvs_sync_daemon eth1 VI_1",
			&LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51}, nil},
		{"inst keyword and every option", "lvs_sync_daemon eth1 inst VI_1 id 0 maxlen 1400 port 9000 ttl 3 group 224.0.0.82",
			&LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 0, SyncIDSet: true, MaxLen: 1400, Port: 9000, TTL: 3,
				Group: netip.MustParseAddr("224.0.0.82")}, nil},
		{"IPv6 group", "lvs_sync_daemon eth1 VI_1 group ff02::1:2",
			&LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51, Group: netip.MustParseAddr("ff02::1:2")}, nil},
		{"no instance: master and backup, sync id 0", "lvs_sync_daemon eth1",
			&LVSSyncDaemon{Interface: "eth1"}, nil},
		{"old positional sync id", "lvs_sync_daemon eth1 VI_1 7",
			&LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 7, SyncIDSet: true},
			[]string{`2: warning: Please use keyword "id" before lvs_sync_daemon SYNCID`}},
		{"missing instance", "lvs_sync_daemon eth1 VI_X", nil,
			[]string{"2: error: lvs_sync_daemon: unable to find vrrp instance VI_X for lvs_syncd"}},
		{"no interface", "lvs_sync_daemon", nil, []string{"2: error: lvs_sync_daemon requires interface"}},
		{"interface too long", "lvs_sync_daemon sixteen-bytes-xx VI_1", nil,
			[]string{"2: error: lvs_sync_daemon interface name 'sixteen-bytes-xx' too long"}},
		{"out of range", "lvs_sync_daemon eth1 VI_1 id 256 maxlen 65508 port 0 ttl 256", nil,
			[]string{
				"2: error: Invalid lvs_sync_daemon id (256): want a whole number in [0, 255]",
				"2: error: Invalid lvs_sync_daemon maxlen (65508): want a whole number in [1, 65507]",
				"2: error: Invalid lvs_sync_daemon port (0): want a whole number in [1, 65535]",
				"2: error: Invalid lvs_sync_daemon ttl (256): want a whole number in [1, 255]",
			}},
		{"group not multicast", "lvs_sync_daemon eth1 VI_1 group 10.1.1.1", nil,
			[]string{"2: error: lvs_sync_daemon group address 10.1.1.1 is not multicast"}},
		{"value missing", "lvs_sync_daemon eth1 VI_1 id", nil,
			[]string{"2: error: No value specified for lvs_sync_daemon id"}},
		{"unknown option", "lvs_sync_daemon eth1 VI_1 7 foo", nil,
			[]string{"2: warning: Please use keyword", "2: error: Unknown option foo specified for lvs_sync_daemon"}},
		{"twice: the first counts", "lvs_sync_daemon eth1 VI_1\nlvs_sync_daemon eth2 VI_1",
			&LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51},
			[]string{"3: warning: lvs_sync_daemon has already been specified as eth1 VI_1 at " + mainConf + ":2; ignored"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := parseText(t, "global_defs {\n"+tc.lines+"\n}\n"+vi1, Options{})
			wantDiags(t, ds, true, tc.diags...)
			if tc.want == nil {
				if !ds.HasErrors() {
					t.Error("accepted")
				}
				return
			}
			got := cfg.GlobalDefs.LVSSyncDaemon
			if got == nil {
				t.Fatal("no LVSSyncDaemon")
			}
			w := *tc.want
			w.Pos = at(2)
			if *got != w {
				t.Errorf("got %+v\nwant %+v", *got, w)
			}
		})
	}
}

// TestLVSSyncDaemonInterface: the deprecated per-instance form follows its
// instance (vrrp/vrrp_parser.c vrrp_lvs_syncd_handler).
func TestLVSSyncDaemonInterface(t *testing.T) {
	in := instance("VI_1", "eth0", 51, "10.0.0.1/24", "lvs_sync_daemon_interface eth1")
	cfg, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true, "4: warning: (VI_1) Specifying lvs_sync_daemon_interface against a vrrp is deprecated; use global_defs lvs_sync_daemon eth1 VI_1")
	want := LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", SyncID: 51, Pos: at(4)}
	if got := cfg.GlobalDefs.LVSSyncDaemon; got == nil || *got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	_, ds = parseText(t, "global_defs {\n lvs_sync_daemon eth2 VI_1\n}\n"+in, Options{})
	wantDiags(t, ds, true, "7: warning: deprecated",
		"7: warning: (VI_1) lvs_sync_daemon_interface has already been specified as eth2 at "+mainConf+":2; ignored")
}

// TestLVSFlushOnStop: lvs_flush_on_stop [VS] and its old spelling
// (core/global_parser.c lvs_flush_on_stop_handler).
func TestLVSFlushOnStop(t *testing.T) {
	for _, tc := range []struct {
		line, want string
		diags      []string
	}{
		{"lvs_flush_on_stop", "full", nil},
		{"lvs_flush_on_stop VS", "VS", nil},
		{"lvs_flush_onstop", "full", []string{`2: warning: "lvs_flush_onstop" is deprecated; use "lvs_flush_on_stop"`}},
		{"lvs_flush_on_stop RS", "", []string{`2: error: lvs_flush_on_stop: unknown type "RS"`}},
	} {
		cfg, ds := parseText(t, "global_defs {\n"+tc.line+"\n lvs_flush\n lvs_timeouts tcp 900 udp 30\n}\n", Options{})
		wantDiags(t, ds, true, tc.diags...)
		if got := cfg.GlobalDefs.LVSFlushOnStop; got != tc.want {
			t.Errorf("%s: LVSFlushOnStop %q, want %q", tc.line, got, tc.want)
		}
		if !cfg.GlobalDefs.LVSFlush {
			t.Errorf("%s: lvs_flush not set", tc.line)
		}
		if got := cfg.GlobalDefs.LVSTimeouts; got["tcp"].Std() != 900*time.Second || got["udp"].Std() != 30*time.Second || len(got) != 2 {
			t.Errorf("lvs_timeouts: %v", got)
		}
	}
}
