package main

import (
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
	s := snapshot(cfg, "k.conf", 3)
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
