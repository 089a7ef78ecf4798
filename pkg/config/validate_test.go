package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// lineOf returns the 1-based line of the first line of text that, trimmed,
// equals want; it fails the test when there is none, so positions in the
// tests below are never counted by hand.
func lineOf(t testing.TB, text, want string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == want {
			return i + 1
		}
	}
	t.Fatalf("no line %q", want)
	return 0
}

func at(line int) Pos { return Pos{File: mainConf, Line: line} }

// words prints values separated by single blanks.
func words(a ...any) string { return strings.TrimSuffix(fmt.Sprintln(a...), "\n") }

const fullVRRP = `global_defs {
    router_id lb1
    enable_snmp_vrrp
}
vrrp_script chk_haproxy {
    script "/usr/bin/killall -0 haproxy"
    interval 2
    weight -20
    rise 2
    fall 3
}
vrrp_script chk_t {
    script "/bin/true"
    interval 3
    timeout 1
}
vrrp_script chk_default {
    script /bin/true
}
vrrp_sync_group SG {
    group {
        VI_1
        VI_2
    }
    sync_group_tracking_weight
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    version 2
    authentication {
        auth_type PASS
        auth_pass secret
    }
    unicast_src_ip 192.168.1.1
    unicast_peer {
        192.168.1.2
        192.168.1.3 min_ttl 1 max_ttl 64
    }
    virtual_ipaddress {
        10.0.0.1/24 dev eth1 label eth1:vip scope link brd 10.0.0.255
        10.0.0.2/24 no_track
        10.0.0.3
    }
    virtual_ipaddress_excluded {
        10.1.0.1/24
        10.1.0.2/24 dev eth1
    }
    virtual_routes {
        10.2.0.0/16 via 192.168.1.254 dev eth0 metric 5
        blackhole 10.3.0.0/16 dev eth0
    }
    virtual_rules {
        from 10.0.0.0/24 table 100 preference 100
    }
    track_interface {
        eth1 weight 10
        eth2
    }
    track_script {
        chk_haproxy weight 30
        chk_t
    }
    notify_master "/bin/echo master 'a b'"
    notify_backup /bin/echo
    notify "/bin/echo any" nobody
    nopreempt
    preempt_delay 5
    garp_master_delay 3
    garp_master_repeat 4
    garp_master_refresh 60
    garp_master_refresh_repeat 2
    garp_lower_prio_delay 7
    garp_lower_prio_repeat 8
}
vrrp_instance VI_2 {
    state MASTER
    interface eth0
    virtual_router_id 52
    advert_int 0.5
    version 3
    track_script { chk_default }
    virtual_ipaddress { 10.0.1.1/24 }
}
`

func TestModelVRRPInstance(t *testing.T) {
	in := fullVRRP
	cfg, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true, fmt.Sprintf(`%d: warning: "enable_snmp_vrrp" is accepted but not acted on by vrrpkit`, lineOf(t, in, "enable_snmp_vrrp")))
	if len(cfg.VRRPInstances) != 2 {
		t.Fatalf("%d instances", len(cfg.VRRPInstances))
	}
	if cfg.GlobalDefs.RouterID != "lb1" || len(cfg.GlobalDefs.Ignored) != 1 || cfg.GlobalDefs.Ignored[0].Keyword != "enable_snmp_vrrp" {
		t.Errorf("global_defs: %+v", cfg.GlobalDefs)
	}
	v := cfg.VRRPInstances[0]
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("name", v.Name, "VI_1")
	check("state", v.State, "BACKUP")
	check("interface", v.Interface, "eth0")
	check("virtual_router_id", v.VirtualRouterID, 51)
	check("priority", v.Priority, 150)
	check("advert_int", v.AdvertInt.Std(), time.Second)
	check("version", v.Version, 2)
	check("authentication", *v.Authentication, Authentication{AuthType: "PASS", AuthPass: "secret"})
	check("unicast_src_ip", v.UnicastSrcIP, netip.MustParseAddr("192.168.1.1"))
	check("unicast peers", len(v.UnicastPeers), 2)
	check("peer 1", v.UnicastPeers[0].Addr, "192.168.1.2")
	check("peer 2 ttl", words(v.UnicastPeers[1].Addr, *v.UnicastPeers[1].MinTTL, *v.UnicastPeers[1].MaxTTL), "192.168.1.3 1 64")

	vip := v.VirtualIPAddresses
	check("vips", len(vip), 3)
	check("vip 1", words(vip[0].Prefix, vip[0].Dev, vip[0].Label, vip[0].Scope, vip[0].Broadcast, vip[0].NoTrack),
		"10.0.0.1/24 eth1 eth1:vip link 10.0.0.255 false")
	check("vip 2 no_track", words(vip[1].Prefix, vip[1].NoTrack), "10.0.0.2/24 true")
	check("vip 3 host prefix", vip[2].Prefix, "10.0.0.3/32")
	check("vip 1 line", vip[0].Pos, at(lineOf(t, in, "10.0.0.1/24 dev eth1 label eth1:vip scope link brd 10.0.0.255")))
	check("excluded", words(v.VirtualIPAddressesExcluded[0].Prefix, v.VirtualIPAddressesExcluded[1].Dev), "10.1.0.1/24 eth1")

	check("routes", len(v.VirtualRoutes), 2)
	r := v.VirtualRoutes[0]
	check("route 1", words(r.To, r.Via, r.Dev, *r.Metric), "10.2.0.0/16 192.168.1.254 eth0 5")
	check("route 2", words(v.VirtualRoutes[1].Type, v.VirtualRoutes[1].To), "blackhole 10.3.0.0/16")
	check("rule", words(v.VirtualRules[0].From, v.VirtualRules[0].Table, *v.VirtualRules[0].Preference), "10.0.0.0/24 100 100")

	check("track_interface", words(v.TrackInterfaces[0].Name, v.TrackInterfaces[0].Weight, v.TrackInterfaces[1].Name, v.TrackInterfaces[1].Weight), "eth1 10 eth2 0")
	check("track_script count", len(v.TrackScripts), 2)
	check("track_script weight", words(v.TrackScripts[0].Name, *v.TrackScripts[0].Weight), "chk_haproxy 30")
	check("track_script default weight", words(v.TrackScripts[1].Name, v.TrackScripts[1].Weight == nil), "chk_t true")
	check("track_script line", v.TrackScripts[1].Pos, at(lineOf(t, in, "chk_t")))

	check("notify_master", v.Master.Args, []string{"/bin/echo", "master", "a b"})
	check("notify_backup", v.Backup.Args, []string{"/bin/echo"})
	check("notify", words(v.Any.Args, v.Any.User), "[/bin/echo any] nobody")
	check("preempt", v.Preempt, false)
	check("preempt_delay", v.PreemptDelay.Std(), 5*time.Second)
	check("garp", words(v.GarpMasterDelay.Std(), *v.GarpMasterRepeat, v.GarpMasterRefresh.Std(), *v.GarpMasterRefreshRepeat,
		v.GarpLowerPrioDelay.Std(), *v.GarpLowerPrioRepeat), "3s 4 1m0s 2 7s 8")
	check("sync group", v.SyncGroup, "SG")

	// Block.At: each keyword's own line; the block's line otherwise.
	for _, kw := range []string{"state BACKUP", "interface eth0", "virtual_router_id 51", "priority 150", "nopreempt", "garp_lower_prio_repeat 8"} {
		key := strings.Fields(kw)[0]
		if got, want := v.At(key), at(lineOf(t, in, kw)); got != want {
			t.Errorf("At(%q) = %v, want %v", key, got, want)
		}
	}
	if got := v.At("mcast_src_ip"); got != v.Pos || v.Pos != at(lineOf(t, in, "vrrp_instance VI_1 {")) {
		t.Errorf("At of an unset keyword = %v, instance at %v", got, v.Pos)
	}
	if !v.Has("priority") || v.Has("mcast_src_ip") {
		t.Errorf("Has")
	}

	v2 := cfg.VRRPInstances[1]
	check("VI_2", words(v2.State, v2.Priority, v2.AdvertInt.Std(), v2.Version, v2.Preempt, v2.SyncGroup), "MASTER 100 500ms 3 true SG")
	check("VI_2 vip", v2.VirtualIPAddresses[0].Prefix, "10.0.1.1/24")
	check("VI_2 track_script", v2.TrackScripts[0].Name, "chk_default")

	// vrrp_script defaults: timeout is the interval unless set.
	sc := map[string]*VRRPScript{}
	for _, s := range cfg.VRRPScripts {
		sc[s.Name] = s
	}
	check("chk_haproxy", words(sc["chk_haproxy"].Script.Args, sc["chk_haproxy"].Interval.Std(), sc["chk_haproxy"].Timeout.Std(),
		sc["chk_haproxy"].Weight, sc["chk_haproxy"].Rise, sc["chk_haproxy"].Fall), "[/usr/bin/killall -0 haproxy] 2s 2s -20 2 3")
	check("chk_t", words(sc["chk_t"].Interval.Std(), sc["chk_t"].Timeout.Std()), "3s 1s")
	check("chk_default", words(sc["chk_default"].Interval.Std(), sc["chk_default"].Timeout.Std(), sc["chk_default"].Weight,
		sc["chk_default"].Rise, sc["chk_default"].Fall), "1s 1s 0 1 1")
	check("sync group members", cfg.VRRPSyncGroups[0].Group, []string{"VI_1", "VI_2"})

	// The dump uses keepalived's units.
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"advert_int":0.5`, `"virtual_router_id":52`, `"virtual_ipaddress":["10.0.1.1/24"]`, `"sync_group":"SG"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

const fullLVS = `vrrp_track_file tf {
    file /run/tf
}
virtual_server_group VSG {
    10.0.0.10 80
    10.0.0.20-30 443
    fwmark 7
}
virtual_server_group VSG6 {
    2001:db8::1-ff 8080
    2001:db8::100
}
virtual_server 10.0.0.1 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    persistence_timeout 50
    real_server 192.168.0.1 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 3
            connect_port 80
        }
        HTTP_GET {
            url {
                path /health
                status_code 200
                digest 9B3A0C85A887A256D6939DA88AABD8CD
            }
            nb_get_retry 3
            delay_before_retry 2
        }
        SSL_GET {
            url {
                path /
                status_code 200-299 301
            }
        }
        SMTP_CHECK {
            helo_name mail.example.com
            host {
                connect_ip 192.168.0.50
                connect_port 25
            }
            host {
                connect_ip 192.168.0.51
            }
        }
        DNS_CHECK {
            type a
            name example.com
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check 'a b'"
            misc_timeout 5
        }
        UDP_CHECK {
            connect_port 53
            payload 0a0b
        }
        PING_CHECK {
        }
        FILE_CHECK {
            track_file tf
            weight 10
        }
    }
}
virtual_server fwmark 7 {
    lb_algo wrr
    real_server 192.168.0.2 {
        weight 1
    }
}
virtual_server group VSG {
    lb_algo lc
    real_server 192.168.0.3 80 {
        TCP_CHECK
    }
}
`

func TestModelVirtualServers(t *testing.T) {
	in := fullLVS
	cfg, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true, fmt.Sprintf(`%d: warning: "nb_get_retry" is deprecated; use "retry"`, lineOf(t, in, "nb_get_retry 3")))
	if len(cfg.VirtualServers) != 3 || len(cfg.VirtualServerGroups) != 2 {
		t.Fatalf("%d virtual servers, %d groups", len(cfg.VirtualServers), len(cfg.VirtualServerGroups))
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	var groups []string
	for _, g := range cfg.VirtualServerGroups {
		for _, e := range g.Entries {
			groups = append(groups, fmt.Sprintf("%s %v-%v:%d fw%d @%d", g.Name, e.IP, e.RangeEnd, e.Port, e.Fwmark, e.Pos.Line))
		}
	}
	check("groups", groups, []string{
		fmt.Sprintf("VSG 10.0.0.10-invalid IP:80 fw0 @%d", lineOf(t, in, "10.0.0.10 80")),
		fmt.Sprintf("VSG 10.0.0.20-10.0.0.30:443 fw0 @%d", lineOf(t, in, "10.0.0.20-30 443")),
		fmt.Sprintf("VSG invalid IP-invalid IP:0 fw7 @%d", lineOf(t, in, "fwmark 7")),
		fmt.Sprintf("VSG6 2001:db8::1-2001:db8::ff:8080 fw0 @%d", lineOf(t, in, "2001:db8::1-ff 8080")),
		fmt.Sprintf("VSG6 2001:db8::100-invalid IP:0 fw0 @%d", lineOf(t, in, "2001:db8::100")),
	})

	vs := cfg.VirtualServers[0]
	check("vs", words(vs.IP, vs.Port, vs.DelayLoop.Std(), vs.LBAlgo, vs.LBKind, vs.Protocol, vs.PersistenceTimeout.Std()),
		"10.0.0.1 80 6s rr DR TCP 50s")
	check("vs name", vs.Name(), "virtual_server 10.0.0.1 80")
	check("vs lb_kind line", vs.At("lb_kind"), at(lineOf(t, in, "lb_kind DR")))
	rs := vs.RealServers[0]
	check("rs", words(rs.IP, rs.Port, rs.Weight, rs.Pos.Line), words("192.168.0.1 80 3", lineOf(t, in, "real_server 192.168.0.1 80 {")))
	var types []string
	byType := map[string]*Checker{}
	for _, c := range rs.Checkers {
		types = append(types, c.Type)
		byType[c.Type] = c
	}
	check("checkers", types, []string{"TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK"})

	tcp := byType["TCP_CHECK"]
	check("TCP_CHECK", words(tcp.ConnectTimeout.Std(), tcp.ConnectPort, tcp.Pos.Line), words(3*time.Second, 80, lineOf(t, in, "TCP_CHECK {")))
	http := byType["HTTP_GET"]
	check("HTTP_GET url", words(http.URLs[0].Path, http.URLs[0].StatusCode, http.URLs[0].Digest), "/health [200] 9b3a0c85a887a256d6939da88aabd8cd")
	check("HTTP_GET retry", words(*http.Retry, http.DelayBeforeRetry.Std()), "3 2s")
	check("HTTP_GET url line", http.URLs[0].At("digest"), at(lineOf(t, in, "digest 9B3A0C85A887A256D6939DA88AABD8CD")))
	check("SSL_GET url", words(byType["SSL_GET"].URLs[0].Path, byType["SSL_GET"].URLs[0].StatusCode), "/ [200-299 301]")
	smtp := byType["SMTP_CHECK"]
	check("SMTP_CHECK", words(smtp.HeloName, len(smtp.Hosts), smtp.Hosts[0].ConnectIP, smtp.Hosts[0].ConnectPort, smtp.Hosts[1].ConnectIP),
		"mail.example.com 2 192.168.0.50 25 192.168.0.51")
	check("DNS_CHECK", words(byType["DNS_CHECK"].DNSType, byType["DNS_CHECK"].DNSName), "A example.com")
	misc := byType["MISC_CHECK"]
	check("MISC_CHECK", words(misc.MiscPath.Args, misc.MiscTimeout.Std()), "[/usr/local/bin/check a b] 5s")
	check("UDP_CHECK", words(byType["UDP_CHECK"].ConnectPort, byType["UDP_CHECK"].Payload), "53 0a0b")
	check("FILE_CHECK", words(byType["FILE_CHECK"].TrackFile, *byType["FILE_CHECK"].Weight), "tf 10")

	fw := cfg.VirtualServers[1]
	check("fwmark vs", words(fw.Fwmark, fw.LBAlgo, fw.Name(), fw.RealServers[0].IP, fw.RealServers[0].Port), "7 wrr virtual_server fwmark 7 192.168.0.2 0")
	grp := cfg.VirtualServers[2]
	check("group vs", words(grp.Group, grp.LBAlgo, grp.Name(), grp.RealServers[0].Checkers[0].Type), "VSG lc virtual_server group VSG TCP_CHECK")
}

// instance returns a valid vrrp_instance block with extra lines added.
func instance(name, iface string, vrid int, vip string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vrrp_instance %s {\n    interface %s\n    virtual_router_id %d\n", name, iface, vrid)
	for _, e := range extra {
		b.WriteString("    " + e + "\n")
	}
	if vip != "" {
		fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s\n    }\n", vip)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestValidation checks that each refused configuration gets an Error at
// the line to fix, and each accepted one only the expected warnings.
func TestValidation(t *testing.T) {
	const noVIP = "1: warning: vrrp_instance A has no virtual_ipaddress"
	tests := []struct {
		name string
		in   string
		// want: findings as for wantDiags; "@TEXT" as LOC means the line
		// whose trimmed text is TEXT.
		want []string
	}{
		{"valid", instance("A", "eth0", 1, "10.0.0.1/24"), nil},
		{"priority 0", instance("A", "eth0", 1, "10.0.0.1/24", "priority 0"),
			[]string{`@priority 0: error: priority: "0" is not a whole number in [1, 255]`}},
		{"priority 256", instance("A", "eth0", 1, "10.0.0.1/24", "priority 256"),
			[]string{`@priority 256: error: priority: "256" is not a whole number in [1, 255]`}},
		{"priority 255 and 1", instance("A", "eth0", 1, "10.0.0.1/24", "priority 255") + instance("B", "eth0", 2, "10.0.0.2/24", "priority 1"), nil},
		{"VRID 0", instance("A", "eth0", 0, "10.0.0.1/24"),
			[]string{`@virtual_router_id 0: error: virtual_router_id: "0" is not a whole number in [1, 255]`}},
		{"VRID 256", instance("A", "eth0", 256, "10.0.0.1/24"),
			[]string{`@virtual_router_id 256: error: virtual_router_id: "256" is not a whole number in [1, 255]`}},
		{"VRID missing", "vrrp_instance A {\n interface eth0\n virtual_ipaddress { 10.0.0.1 }\n}\n",
			[]string{"1: error: vrrp_instance A: virtual_router_id is not set"}},
		{"advert_int v2 not whole seconds", instance("A", "eth0", 1, "10.0.0.1/24", "advert_int 1.5"),
			[]string{"@advert_int 1.5: error: VRRPv2 advert_int must be whole seconds"}},
		{"advert_int v2 beyond 255", instance("A", "eth0", 1, "10.0.0.1/24", "advert_int 256"),
			[]string{`@advert_int 256: error: advert_int: "256" is not a time in seconds in [0.01, 255]`}},
		{"advert_int v2 255", instance("A", "eth0", 1, "10.0.0.1/24", "advert_int 255"), nil},
		{"advert_int v3 beyond 40.95", instance("A", "eth0", 1, "10.0.0.1/24", "version 3", "advert_int 41"),
			[]string{"@advert_int 41: error: VRRPv3 advert_int must be at most 40.95 s"}},
		{"advert_int v3 not a multiple of 10ms", instance("A", "eth0", 1, "10.0.0.1/24", "version 3", "advert_int 0.015"),
			[]string{"@advert_int 0.015: error: VRRPv3 advert_int must be a multiple of 10 ms"}},
		{"advert_int v3 via global vrrp_version", "global_defs {\n vrrp_version 3\n}\n" + instance("A", "eth0", 1, "10.0.0.1/24", "advert_int 0.015"),
			[]string{"@advert_int 0.015: error: VRRPv3 advert_int must be a multiple of 10 ms"}},
		{"advert_int v3 limits", instance("A", "eth0", 1, "10.0.0.1/24", "version 3", "advert_int 40.95") +
			instance("B", "eth0", 2, "10.0.0.2/24", "version 3", "advert_int 0.01"), nil},
		{"bad address", instance("A", "eth0", 1, "10.0.0.256/24"),
			[]string{`@10.0.0.256/24: error: virtual_ipaddress: "10.0.0.256/24" is not an address or prefix`, noVIP}},
		{"bad prefix length", instance("A", "eth0", 1, "10.0.0.1/33"),
			[]string{`@10.0.0.1/33: error: virtual_ipaddress: "10.0.0.1/33" is not an address or prefix`, noVIP}},
		{"bad IPv6 prefix length", instance("A", "eth0", 1, "2001:db8::1/129"),
			[]string{`@2001:db8::1/129: error: "2001:db8::1/129" is not an address or prefix`, noVIP}},
		{"unknown address option", instance("A", "eth0", 1, "10.0.0.1/24 bogus"),
			[]string{`@10.0.0.1/24 bogus: error: unknown option "bogus"`, noVIP}},
		{"duplicate instance name", instance("A", "eth0", 1, "10.0.0.1/24") + instance("A", "eth0", 2, "10.0.0.2/24"),
			[]string{"8: error: vrrp_instance A is already defined at " + mainConf + ":1"}},
		{"one VRID twice on one interface and family",
			instance("A", "eth0", 7, "10.0.0.1/24") + instance("B", "eth0", 7, "10.0.0.2/24"),
			[]string{"10: error: vrrp_instance B: virtual_router_id 7 is already used on eth0 for IPv4 by vrrp_instance A (" + mainConf + ":3)"}},
		{"one VRID on two families",
			instance("A", "eth0", 7, "10.0.0.1/24") + instance("B", "eth0", 7, "2001:db8::1/64"), nil},
		{"one VRID on two interfaces",
			instance("A", "eth0", 7, "10.0.0.1/24") + instance("B", "eth1", 7, "10.0.0.2/24"), nil},
		{"one VRID, one instance unicast",
			instance("A", "eth0", 7, "10.0.0.1/24") + instance("B", "eth0", 7, "10.0.0.2/24", "unicast_peer {", "    10.0.0.9", "}"), nil},
		{"one VRID, both unicast",
			instance("A", "eth0", 7, "10.0.0.1/24", "unicast_peer { 10.0.0.8 }") + instance("B", "eth0", 7, "10.0.0.2/24", "unicast_peer { 10.0.0.9 }"), nil},
		{"one VRID through default_interface",
			"global_defs {\n default_interface eth3\n}\n" + strings.Replace(instance("A", "eth3", 7, "10.0.0.1/24"), "    interface eth3\n", "", 1) +
				instance("B", "eth3", 7, "10.0.0.2/24"),
			[]string{"12: error: vrrp_instance B: virtual_router_id 7 is already used on eth3 for IPv4 by vrrp_instance A (" + mainConf + ":5)"}},
		{"IPv6 with version 2", instance("A", "eth0", 1, "2001:db8::1/64", "version 2"),
			[]string{"@version 2: error: vrrp_instance A: VRRPv2 (RFC 3768) carries only IPv4 addresses"}},
		{"IPv6 with global vrrp_version 2", "global_defs {\n vrrp_version 2\n}\n" + instance("A", "eth0", 1, "2001:db8::1/64"),
			[]string{"@vrrp_instance A {: error: VRRPv2 (RFC 3768) carries only IPv4 addresses"}},
		{"IPv6 switches the default version to 3", instance("A", "eth0", 1, "2001:db8::1/64", "advert_int 0.5"), nil},
		{"mixed families", instance("A", "eth0", 1, "10.0.0.1/24\n        2001:db8::1/64"),
			[]string{"@2001:db8::1/64: error: vrrp_instance A: 2001:db8::1/64 is IPv6 but the instance's first address is IPv4"}},
		{"unicast peer of the other family", instance("A", "eth0", 1, "10.0.0.1/24", "unicast_peer {", "    2001:db8::9", "}"),
			[]string{"@2001:db8::9: error: unicast_peer 2001:db8::9 is not IPv4"}},
		{"unknown track_script", instance("A", "eth0", 1, "10.0.0.1/24", "track_script {", "    nope weight 10", "}"),
			[]string{"@nope weight 10: error: A track_script: vrrp_script nope is not defined"}},
		{"track_script weight out of range", "vrrp_script s {\n script /bin/true\n}\n" + instance("A", "eth0", 1, "10.0.0.1/24", "track_script {", "    s weight 254", "}"),
			[]string{`@s weight 254: error: track_script s: weight "254" is not a whole number in [-253, 253]`}},
		{"sync group naming an unknown instance",
			"vrrp_sync_group G {\n group {\n  A\n  B\n }\n}\n" + instance("A", "eth0", 1, "10.0.0.1/24"),
			[]string{"2: error: vrrp_sync_group G: vrrp_instance B is not defined"}},
		{"instance in two sync groups",
			"vrrp_sync_group G {\n group { A B }\n}\nvrrp_sync_group H {\n group { A B }\n}\n" + instance("A", "eth0", 1, "10.0.0.1/24") + instance("B", "eth0", 2, "10.0.0.2/24"),
			[]string{"5: error: vrrp_instance A is already in vrrp_sync_group G", "5: error: vrrp_instance B is already in vrrp_sync_group G"}},
		{"AH authentication", instance("A", "eth0", 1, "10.0.0.1/24", "authentication {", "    auth_type AH", "    auth_pass x", "}"),
			[]string{"@authentication {: error: vrrp_instance A: AH authentication (removed from VRRP by RFC 3768) is not supported"}},
		{"authentication ignored by v3", instance("A", "eth0", 1, "10.0.0.1/24", "version 3", "authentication {", "    auth_type PASS", "}"),
			[]string{"@authentication {: warning: authentication is not part of VRRPv3"}},
		{"long auth_pass is cut", instance("A", "eth0", 1, "10.0.0.1/24", "authentication {", "    auth_type PASS", "    auth_pass 123456789", "}"),
			[]string{"@auth_pass 123456789: warning: only the first 8 characters are used"}},
		{"no interface", "vrrp_instance A {\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1 }\n}\n",
			[]string{"1: error: vrrp_instance A: no interface"}},
		{"misspelt keyword in a block", instance("A", "eth0", 1, "10.0.0.1/24", "priorty 100"),
			[]string{`@priorty 100: warning: unknown keyword "priorty" in vrrp_instance A (did you mean "priority"?)`}},
		{"misspelt block in a block", instance("A", "eth0", 1, "10.0.0.1/24", "trak_script {", "    x", "}"),
			[]string{`@trak_script {: warning: unknown keyword "trak_script" in vrrp_instance A (did you mean "track_script"?); its block is skipped`}},
		{"unknown keyword far from any", instance("A", "eth0", 1, "10.0.0.1/24", "frobnicate"),
			[]string{`@frobnicate: warning: unknown keyword "frobnicate" in vrrp_instance A`}},
		{"unknown top-level keyword is an error", "vrrp_instanse A {\n}\n",
			[]string{`1: error: unknown top-level keyword "vrrp_instanse" (did you mean "vrrp_instance"?)`}},
		{"keyword accepted but not acted on", "global_defs {\n enable_snmp_vrrp\n vrrp_iptables\n}\n",
			[]string{`2: warning: "enable_snmp_vrrp" is accepted but not acted on by vrrpkit`, `3: warning: "vrrp_iptables" is accepted but not acted on`}},
		{"top-level block accepted but not acted on", "bfd_instance b {\n neighbor_ip 10.0.0.1\n}\n",
			[]string{`1: warning: "bfd_instance" is accepted but not acted on by vrrpkit (BFD is not supported)`}},
		{"deprecated nb_get_retry", "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n }\n}\n",
			[]string{`7: warning: "nb_get_retry" is deprecated; use "retry"`}},
		{"nopreempt with state MASTER", instance("A", "eth0", 1, "10.0.0.1/24", "state MASTER", "nopreempt"),
			[]string{"@nopreempt: warning: nopreempt only works with state BACKUP"}},
		{"no virtual_ipaddress", instance("A", "eth0", 1, ""),
			[]string{"1: warning: vrrp_instance A has no virtual_ipaddress"}},
		{"duplicate vrrp_script", "vrrp_script s {\n script /bin/true\n}\nvrrp_script s {\n script /bin/true\n}\n",
			[]string{"4: error: vrrp_script s is already defined at " + mainConf + ":1"}},
		{"vrrp_script without script", "vrrp_script s {\n interval 1\n}\n",
			[]string{"1: error: vrrp_script s has no script"}},
		{"real server of the other family", "virtual_server 10.0.0.1 80 {\n real_server 2001:db8::1 80 {\n }\n}\n",
			[]string{"2: error: virtual_server 10.0.0.1 80: real_server 2001:db8::1 is not of the virtual server's address family"}},
		{"HTTP_GET without url", "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  HTTP_GET {\n  }\n }\n}\n",
			[]string{"3: error: real_server 10.0.1.1 HTTP_GET has no url { } block"}},
		{"FILE_CHECK of an unknown track file", "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  FILE_CHECK {\n   track_file nope\n  }\n }\n}\n",
			[]string{"4: error: track_file nope is not defined"}},
		{"virtual_server of an unknown group", "virtual_server group G {\n}\n",
			[]string{"1: error: virtual_server group G: virtual_server_group G is not defined"}},
		{"bad virtual_server_group range", "virtual_server_group G {\n 10.0.0.20-10 80\n}\n",
			[]string{`2: error: virtual_server_group G: bad range end "10" in "10.0.0.20-10"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := parseText(t, tc.in, Options{})
			if cfg == nil {
				t.Fatal("nil Config")
			}
			var specs []string
			wantErr := false
			for _, w := range tc.want {
				if strings.HasPrefix(w, "@") {
					loc, rest, _ := strings.Cut(w[1:], ": ")
					w = fmt.Sprintf("%d: %s", lineOf(t, tc.in, loc), rest)
				}
				if strings.Contains(w, ": error: ") {
					wantErr = true
				}
				specs = append(specs, w)
			}
			wantDiags(t, ds, true, specs...)
			if ds.HasErrors() != wantErr {
				t.Errorf("HasErrors() = %v, want %v", ds.HasErrors(), wantErr)
			}
			if wantErr && !strings.HasPrefix(ds.Error(), mainConf+":") {
				t.Errorf("Error() = %q", ds.Error())
			}
		})
	}
}

// TestValidationVRIDAfterUnicast checks that a unicast instance between two
// multicast instances with one VRID does not hide their conflict.
func TestValidationVRIDAfterUnicast(t *testing.T) {
	in := instance("A", "eth0", 51, "10.0.0.1/24") +
		instance("B", "eth0", 51, "10.0.0.2/24", "unicast_peer {", "    10.0.0.9", "}") +
		instance("C", "eth0", 51, "10.0.0.3/24")
	_, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true, "20: error: vrrp_instance C: virtual_router_id 51 is already used on eth0 for IPv4 by vrrp_instance A")
}

// TestValidationVSGroupFamilies checks keepalived's rule for groups that
// mix families with a fwmark.
func TestValidationVSGroupFamilies(t *testing.T) {
	in := "virtual_server_group VSG {\n 10.0.0.10 80\n 2001:db8::1 80\n fwmark 7\n}\n" +
		"virtual_server group VSG {\n lb_kind NAT\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n"
	_, ds := parseText(t, in, Options{})
	wantDiags(t, ds, true, "1: error: virtual_server_group VSG")
}

// fakeHost answers Host questions from sets.
type fakeHost struct {
	ifaces, scripts, users map[string]bool
}

func (h fakeHost) InterfaceExists(name string) bool { return h.ifaces[name] }
func (h fakeHost) UserExists(name string) bool      { return h.users[name] }
func (h fakeHost) Executable(path string) error {
	if h.scripts[path] {
		return nil
	}
	return errors.New("not an executable file")
}

func TestValidationHost(t *testing.T) {
	host := fakeHost{
		ifaces:  map[string]bool{"eth0": true},
		scripts: map[string]bool{"/bin/true": true},
		users:   map[string]bool{"root": true},
	}
	in := `global_defs {
    script_user nobody
}
vrrp_script good {
    script /bin/true
    user root
}
vrrp_script bad {
    script "/opt/missing.sh arg"
}
vrrp_instance A {
    interface eth9
    virtual_router_id 1
    track_interface {
        eth0
        eth7 weight 5
    }
    virtual_ipaddress {
        10.0.0.1/24 dev eth8
    }
    track_script {
        good
        bad
    }
    notify_master "/bin/true" ghost
}
`
	cfg, ds := parseText(t, in, Options{Host: host})
	if cfg == nil || ds.HasErrors() {
		t.Fatalf("host findings must not refuse the configuration:\n%s", ds.String())
	}
	wantDiags(t, ds, true,
		"2: warning: user nobody does not exist on this host",
		"9: warning: script /opt/missing.sh cannot be run on this host: not an executable file",
		"12: warning: interface eth9 does not exist on this host",
		"16: warning: tracked interface eth7 does not exist on this host",
		"19: warning: interface of address 10.0.0.1/24 eth8 does not exist on this host",
		"25: warning: user ghost does not exist on this host",
	)
	for _, d := range ds {
		if !d.Host {
			t.Errorf("finding without Host set: %s", d)
		}
	}
	// Without a Host nothing is asked.
	_, ds = parseText(t, in, Options{})
	wantDiags(t, ds, true)
}

// TestDiagnosticsAPI checks the printing and summarising helpers.
func TestDiagnosticsAPI(t *testing.T) {
	ds := Diagnostics{
		{Pos: Pos{File: "/a.conf", Line: 3}, Severity: Warning, Message: "w"},
		{Pos: Pos{File: "/a.conf", Line: 4}, Severity: Error, Message: "e1"},
		{Pos: Pos{File: "/b.conf", Line: 0}, Severity: Error, Message: "e2"},
	}
	if got := ds[0].String(); got != "/a.conf:3: warning: w" {
		t.Errorf("String() = %q", got)
	}
	if got := ds.String(); got != "/a.conf:3: warning: w\n/a.conf:4: error: e1\n/b.conf:0: error: e2\n" {
		t.Errorf("Diagnostics.String() = %q", got)
	}
	if !ds.HasErrors() || len(ds.Errors()) != 2 || ds[:1].HasErrors() {
		t.Errorf("HasErrors/Errors wrong")
	}
	if got := ds.Error(); got != "/a.conf:4: error: e1 (and 1 more errors)" {
		t.Errorf("Error() = %q", got)
	}
	if got := ds[:2].Error(); got != "/a.conf:4: error: e1" {
		t.Errorf("Error() = %q", got)
	}
	if got := ds[:1].Error(); got != "no errors" {
		t.Errorf("Error() = %q", got)
	}
	if got := (Pos{Line: 7}).String(); got != "line 7" {
		t.Errorf("Pos.String() = %q", got)
	}

	// A flood of findings is cut, and the cut keeps the verdict.
	_, many := parseText(t, "static_ipaddress {\n~SEQ(i, 10100) bad$i\n}\n", Options{})
	if len(many) != 10001 || !many.HasErrors() || !strings.Contains(many[10000].Message, "too many findings") {
		t.Errorf("%d findings, last %v", len(many), many[len(many)-1])
	}
}

// TestModelSuggestions checks that suggestions only name close keywords.
func TestModelSuggestions(t *testing.T) {
	for _, tc := range []struct{ word, want string }{
		{"priorty", "priority"},
		{"prioirty", "priority"},
		{"virtual_router_ip", "virtual_router_id"},
		{"advert_intt", "advert_int"},
		{"xyz", ""},
	} {
		if got := suggest(tc.word, keys(instanceTable)); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if !slices.Contains(keys(instanceTable), "priority") {
		t.Error("instanceTable lacks priority")
	}
}

// TestValidationManyUnknownKeywords checks that a flood of unknown keywords
// (a typo under ~SEQ) costs no more than other lines once the findings are
// capped.
func TestValidationManyUnknownKeywords(t *testing.T) {
	in := "vrrp_instance V {\n~SEQ(i, 99999) " + strings.Repeat("a", 59) + "$i\n}\n"
	done := make(chan Diagnostics, 1)
	go func() {
		_, ds := ParseBytes(mainConf, []byte(in), Options{MaxLines: 100000})
		done <- ds
	}()
	select {
	case ds := <-done:
		if len(ds) != 10001 {
			t.Errorf("%d findings", len(ds))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("not done after 3s")
	}
}

// TestValidationKeywordWithoutValue checks that every keyword that needs a
// value reports its absence instead of failing.
func TestValidationKeywordWithoutValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"virtual_server 10.0.0.1 80 {\n protocol\n}\n", "2: error: protocol: missing value"},
		{"virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  DNS_CHECK {\n   type\n  }\n }\n}\n", "4: error: type: missing value"},
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%q: panic: %v", tc.in, p)
				}
			}()
			_, ds := parseText(t, tc.in, Options{})
			wantDiags(t, ds, false, tc.want)
		}()
	}
}
