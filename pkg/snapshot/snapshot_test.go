package snapshot

import (
	"fmt"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestSnapshot checks that keepalived's defaults and global_defs land in
// each instance, so vrrpd never needs keepalived's defaulting rules.
func TestSnapshot(t *testing.T) {
	conf := `global_defs {
    vrrp_garp_master_repeat 3
    vrrp_skip_check_adv_addr
}
vrrp_instance V4 {
    state MASTER
    interface eth0
    virtual_router_id 7
    advert_int 0.1
    version 3
    nopreempt
    virtual_ipaddress {
        192.0.2.10/24 dev eth1 label eth1:vip scope link brd 192.0.2.255
    }
    virtual_ipaddress_excluded { 192.0.2.11/32 }
    unicast_src_ip 192.0.2.1
    unicast_peer { 192.0.2.2 }
    garp_master_delay 0
}
vrrp_instance V6 {
    interface eth0
    virtual_router_id 7
    priority 200
    virtual_ipaddress { 2001:db8::10/64 }
    authentication { auth_type PASS auth_pass secret }
}
`
	cfg, diags := config.ParseBytes("k.conf", []byte(conf), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s := Build(cfg, "k.conf", 3)
	if s.GetGeneration() != 3 || len(s.GetInstances()) != 2 {
		t.Fatalf("generation %d, %d instances", s.GetGeneration(), len(s.GetInstances()))
	}
	v4, v6 := s.GetInstances()[0], s.GetInstances()[1]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"v4 defined_at", v4.GetDefinedAt(), "k.conf:5"},
		{"v4 priority default", v4.GetPriority(), uint32(100)},
		{"v4 advert_int", v4.GetAdvertInt().AsDuration(), 100 * time.Millisecond},
		{"v4 state hint", v4.GetStateHint(), pb.VrrpState_VRRP_STATE_MASTER},
		{"v4 nopreempt", v4.GetNopreempt(), true},
		{"v4 vip", v4.GetVirtualIpaddress()[0].GetPrefix(), "192.0.2.10/24"},
		{"v4 vip dev", v4.GetVirtualIpaddress()[0].GetDev(), "eth1"},
		{"v4 vip label", v4.GetVirtualIpaddress()[0].GetLabel(), "eth1:vip"},
		{"v4 vip brd", v4.GetVirtualIpaddress()[0].GetBroadcast(), "192.0.2.255"},
		{"v4 excluded", len(v4.GetVirtualIpaddressExcluded()), 1},
		{"v4 unicast src", v4.GetUnicastSrcIp(), "192.0.2.1"},
		{"v4 peers", v4.GetUnicastPeer(), []string{"192.0.2.2"}},
		{"v4 garp repeat from global", v4.GetGarp().GetMasterRepeat(), uint32(3)},
		{"v4 garp delay from instance", v4.GetGarp().GetMasterDelay().AsDuration(), time.Duration(0)},
		{"v4 skip_check_adv_addr from global", v4.GetSkipCheckAdvAddr(), true},
		{"v4 accept default", v4.GetAccept(), true},
		{"v6 family", v6.GetIpv6(), true},
		{"v6 version switched to 3", v6.GetVersion(), uint32(3)},
		{"v6 advert_int default", v6.GetAdvertInt().AsDuration(), time.Second},
		{"v6 garp delay default", v6.GetGarp().GetMasterDelay().AsDuration(), 5 * time.Second},
		{"v6 auth (ignored in v3, still carried)", v6.GetAuthType(), pb.AuthType_AUTH_TYPE_PASS},
	} {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func equal(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs := b.([]string)
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// effective is what vrrpd runs for the lower/higher priority options.
type effective struct {
	lowerDelay       time.Duration
	lowerRepeat      uint32
	lowerNoAdvert    bool
	higherSendAdvert bool
	masterDelay      time.Duration
	masterRepeat     uint32
	masterRefreshRep uint32
	accept           bool
}

// TestLowerPriorityDefaults table-tests keepalived 2.2.7's defaults and
// precedence for garp_lower_prio_*, lower_prio_no_advert and
// higher_prio_send_advert (vrrp/vrrp.c: vrrp_complete_init,
// vrrp_complete_instance; core/global_data.c: set_vrrp_defaults;
// core/global_parser.c: vrrp_min_garp_handler).
func TestLowerPriorityDefaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		global string // lines inside global_defs
		inst   string // lines inside the vrrp_instance
		want   effective
	}{
		{
			name: "nothing set: the global garp_master defaults",
			want: effective{lowerDelay: 5 * time.Second, lowerRepeat: 5, masterDelay: 5 * time.Second, masterRepeat: 5, masterRefreshRep: 1, accept: true},
		},
		{
			name:   "global garp_master values feed the lower-priority defaults",
			global: "vrrp_garp_master_delay 2\nvrrp_garp_master_repeat 3",
			want:   effective{lowerDelay: 2 * time.Second, lowerRepeat: 3, masterDelay: 2 * time.Second, masterRepeat: 3, masterRefreshRep: 1, accept: true},
		},
		{
			name: "an instance's garp_master values do not",
			inst: "garp_master_delay 1\ngarp_master_repeat 2",
			want: effective{lowerDelay: 5 * time.Second, lowerRepeat: 5, masterDelay: time.Second, masterRepeat: 2, masterRefreshRep: 1, accept: true},
		},
		{
			name:   "global lower-priority values",
			global: "vrrp_garp_lower_prio_delay 7\nvrrp_garp_lower_prio_repeat 0\nvrrp_lower_prio_no_advert\nvrrp_higher_prio_send_advert",
			want:   effective{lowerDelay: 7 * time.Second, lowerRepeat: 0, lowerNoAdvert: true, higherSendAdvert: true, masterDelay: 5 * time.Second, masterRepeat: 5, masterRefreshRep: 1, accept: true},
		},
		{
			name:   "instance values override the global ones",
			global: "vrrp_garp_lower_prio_delay 7\nvrrp_garp_lower_prio_repeat 0\nvrrp_lower_prio_no_advert\nvrrp_higher_prio_send_advert",
			inst:   "garp_lower_prio_delay 1\ngarp_lower_prio_repeat 4\nlower_prio_no_advert false\nhigher_prio_send_advert false",
			want:   effective{lowerDelay: time.Second, lowerRepeat: 4, masterDelay: 5 * time.Second, masterRepeat: 5, masterRefreshRep: 1, accept: true},
		},
		{
			name:   "vrrp_min_garp: one message, no delay, for what is unset",
			global: "vrrp_min_garp",
			want:   effective{lowerDelay: 0, lowerRepeat: 1, masterDelay: 0, masterRepeat: 1, masterRefreshRep: 0, accept: true},
		},
		{
			name:   "vrrp_strict forces RFC behaviour even over explicit values",
			global: "vrrp_strict",
			inst:   "garp_lower_prio_delay 1\ngarp_lower_prio_repeat 4\nlower_prio_no_advert false\nhigher_prio_send_advert",
			want:   effective{lowerDelay: 0, lowerRepeat: 0, lowerNoAdvert: true, masterDelay: 5 * time.Second, masterRepeat: 5, masterRefreshRep: 1, accept: false},
		},
		{
			name: "an instance's strict_mode is strict too",
			inst: "strict_mode",
			want: effective{lowerDelay: 0, lowerRepeat: 0, lowerNoAdvert: true, masterDelay: 5 * time.Second, masterRepeat: 5, masterRefreshRep: 1, accept: false},
		},
		{
			name:   "strict_mode off overrides vrrp_strict",
			global: "vrrp_strict",
			inst:   "strict_mode off",
			want:   effective{lowerDelay: 5 * time.Second, lowerRepeat: 5, masterDelay: 5 * time.Second, masterRepeat: 5, masterRefreshRep: 1, accept: true},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := "global_defs {\n" + c.global + "\n}\nvrrp_instance VI {\n interface eth0\n virtual_router_id 1\n" + c.inst +
				"\n virtual_ipaddress { 192.0.2.10/24 }\n}\n"
			cfg, diags := config.ParseBytes("k.conf", []byte(conf), config.Options{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			in := Build(cfg, "k.conf", 1).GetInstances()[0]
			got := effective{
				lowerDelay:       in.GetGarp().GetLowerPrioDelay().AsDuration(),
				lowerRepeat:      in.GetGarp().GetLowerPrioRepeat(),
				lowerNoAdvert:    in.GetLowerPrioNoAdvert(),
				higherSendAdvert: in.GetHigherPrioSendAdvert(),
				masterDelay:      in.GetGarp().GetMasterDelay().AsDuration(),
				masterRepeat:     in.GetGarp().GetMasterRepeat(),
				masterRefreshRep: in.GetGarp().GetMasterRefreshRepeat(),
				accept:           in.GetAccept(),
			}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestVMACNames(t *testing.T) {
	ins := []*pb.VrrpInstance{
		{Name: "a", Vrid: 5, UseVmac: true},
		{Name: "b", Vrid: 5, UseVmac: true, Ipv6: true},
		{Name: "c", Vrid: 5, UseVmac: true},
		{Name: "d", Vrid: 6, UseVmac: true, VmacInterface: "vrrp.7"},
		{Name: "e", Vrid: 7, UseVmac: true},
		{Name: "f", Vrid: 8},
	}
	nameVMACs("", ins)
	want := []string{"vrrp.5", "vrrp6.5", "vrrp1.5", "vrrp.7", "vrrp1.7", ""}
	for i, in := range ins {
		if in.GetVmacInterface() != want[i] {
			t.Errorf("instance %s: VMAC %q, want %q", in.GetName(), in.GetVmacInterface(), want[i])
		}
	}
}

// TestTracking: effective weights, reverse, and keepalived's rule for
// sync-group members (weighted trackers dropped, default-weight track_file
// and interfaces kept at weight 0, the group's own trackers unchanged).
func TestTracking(t *testing.T) {
	conf := `vrrp_script chk { 
    script "/bin/true"
    weight -20
}
vrrp_script chk0 {
    script "/bin/true"
}
vrrp_track_file tf {
    file /run/tf
}
vrrp_track_file tfw {
    file /run/tfw
    weight 5
}
vrrp_sync_group G {
    group {
        A
        B
    }
    track_script {
        chk
    }
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    track_interface {
        eth1 weight -10 reverse
    }
    track_script {
        chk
        chk0
    }
    track_file {
        tf
        tfw
    }
    virtual_ipaddress { 192.0.2.1 }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress { 192.0.2.2 }
}
vrrp_instance C {
    interface eth0
    virtual_router_id 3
    track_interface {
        eth1 weight -10 reverse
    }
    track_script {
        chk weight 30 reverse
    }
    virtual_ipaddress { 192.0.2.3 }
}
`
	cfg, diags := config.ParseBytes("k.conf", []byte(conf), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s := Build(cfg, "k.conf", 1)
	a, c := s.GetInstances()[0], s.GetInstances()[2]
	g := s.GetSyncGroups()[0]
	names := func(list []*pb.TrackScript) (out []string) {
		for _, r := range list {
			out = append(out, fmt.Sprintf("%s:%d:%v", r.GetName(), r.GetWeight(), r.GetReverse()))
		}
		return out
	}
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"A in group", a.GetSyncGroup(), "G"},
		{"A scripts: weighted chk dropped", names(a.GetTrackScript()), []string{"chk0:0:false"}},
		{"A files: default weight kept at 0, explicit dropped", names(a.GetTrackFile()), []string{"tf:0:false"}},
		{"A interface weight zeroed", a.GetTrackInterface()[0].GetWeight(), int32(0)},
		{"A interface reverse cleared", a.GetTrackInterface()[0].GetReverse(), false},
		{"group keeps its weights", names(g.GetTrackScript()), []string{"chk:-20:false"}},
		{"C override", names(c.GetTrackScript()), []string{"chk:30:true"}},
		{"C interface weight", c.GetTrackInterface()[0].GetWeight(), int32(-10)},
		{"C interface reverse", c.GetTrackInterface()[0].GetReverse(), true},
		{"scripts carried", len(s.GetScripts()), 2},
		{"files carried", len(s.GetTrackFiles()), 2},
	} {
		if !equal(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}
