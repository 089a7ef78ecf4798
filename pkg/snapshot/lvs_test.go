package snapshot

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func buildVS(t *testing.T, body string) []*pb.VirtualServer {
	t.Helper()
	cfg, diags := config.ParseBytes("k.conf", []byte(body), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return Build(cfg, "k.conf", 1).GetVirtualServers()
}

// TestVirtualServerFull checks one virtual server field by field.
func TestVirtualServerFull(t *testing.T) {
	got := buildVS(t, `virtual_server 192.0.2.1 80 {
  lb_algo sh
  sh-port
  weight 3
  inhibit_on_failure
  protocol TCP
  sorry_server 10.0.9.9
  sorry_server_inhibit
  real_server 10.0.0.1 {
    TCP_CHECK {
      alpha
    }
  }
  real_server 10.0.0.2 8080 {
    weight 0
    inhibit_on_failure off
    uthreshold 100
    lthreshold 10
    HTTP_GET {
      url {
        path /
      }
    }
  }
}
`)
	want := &pb.VirtualServer{
		Name: "192.0.2.1:80/TCP", DefinedAt: "k.conf:1",
		Services:  []*pb.LvsService{{Family: "inet", Address: "192.0.2.1", Port: 80, Protocol: pb.LvsProtocol_LVS_PROTOCOL_TCP}},
		Scheduler: "sh", Flags: svcSched2, Quorum: 1,
		SorryServer: &pb.LvsRealServer{Address: "10.0.9.9", Weight: 1, InhibitOnFailure: true, Forwarding: &pb.LvsForwarding{}, Unchecked: true},
		RealServers: []*pb.LvsRealServer{
			{DefinedAt: "k.conf:9", Address: "10.0.0.1", Port: 80, Weight: 3, InhibitOnFailure: true, Forwarding: &pb.LvsForwarding{},
				HealthId: "192.0.2.1:80/TCP 10.0.0.1:80", StartsDown: true},
			{DefinedAt: "k.conf:14", Address: "10.0.0.2", Port: 8080, Weight: 0, Uthreshold: 100, Lthreshold: 10, Forwarding: &pb.LvsForwarding{},
				HealthId: "192.0.2.1:80/TCP 10.0.0.2:8080"},
		},
	}
	// Checkers have their own test (TestRealServerCheckers).
	for _, vs := range got {
		for _, rs := range vs.RealServers {
			rs.Checkers = nil
		}
	}
	if len(got) != 1 || !proto.Equal(got[0], want) {
		t.Errorf("got\n%v\nwant\n%v", prototext.Format(&pb.ConfigSnapshot{VirtualServers: got}), prototext.Format(want))
	}
}

// TestVirtualServerDefaults: keepalived 2.2.7's defaults and corrections
// (check/check_data.c validate_check_config, check/check_parser.c).
func TestVirtualServerDefaults(t *testing.T) {
	rs := "  real_server 10.0.0.1 %s {\n  }\n"
	server := func(port string) string { return strings.Replace(rs, "%s", port, 1) }
	for _, tc := range []struct {
		name, body string
		check      func(*pb.VirtualServer) string // "" if fine
	}{
		{"no protocol: UDP, wlc, NAT, quorum 1", "virtual_server 192.0.2.1 53 {\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			s := v.Services[0]
			if s.Protocol != pb.LvsProtocol_LVS_PROTOCOL_UDP || v.Scheduler != "wlc" || v.Quorum != 1 || v.Hysteresis != 0 ||
				v.RealServers[0].Forwarding.Method != pb.LvsMethod_LVS_METHOD_NAT || v.RealServers[0].Weight != 1 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"port 0 forces persistence 360s", "virtual_server 192.0.2.1 0 {\n protocol TCP\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.PersistenceTimeout.AsDuration() != 360*time.Second {
				return "timeout " + v.PersistenceTimeout.String()
			}
			return ""
		}},
		{"persistence_timeout without value is 360s", "virtual_server 192.0.2.1 80 {\n persistence_timeout\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.PersistenceTimeout.AsDuration() != 360*time.Second {
				return "timeout " + v.PersistenceTimeout.String()
			}
			return ""
		}},
		{"persistence_granularity alone makes it persistent", "virtual_server 192.0.2.1 80 {\n persistence_granularity 255.255.255.0\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.PersistenceTimeout.AsDuration() != 360*time.Second || v.PersistenceGranularity != "255.255.255.0" {
				return prototext.Format(v)
			}
			return ""
		}},
		{"not persistent: no timeout, no granularity", "virtual_server 192.0.2.1 80 {\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.PersistenceTimeout != nil || v.PersistenceGranularity != "" {
				return prototext.Format(v)
			}
			return ""
		}},
		{"DR real server takes the service port", "virtual_server 192.0.2.1 80 {\n lb_kind DR\n" + server("8080") + "}\n", func(v *pb.VirtualServer) string {
			if r := v.RealServers[0]; r.Port != 80 || r.Forwarding.Method != pb.LvsMethod_LVS_METHOD_DR {
				return prototext.Format(r)
			}
			return ""
		}},
		{"NAT real server keeps its port", "virtual_server 192.0.2.1 80 {\n" + server("8080") + "}\n", func(v *pb.VirtualServer) string {
			if r := v.RealServers[0]; r.Port != 8080 {
				return prototext.Format(r)
			}
			return ""
		}},
		{"fwmark: no protocol, inet, DR port cleared", "virtual_server fwmark 5 {\n protocol TCP\n lvs_method DR\n" + server("80") + "}\n", func(v *pb.VirtualServer) string {
			s := v.Services[0]
			if v.Name != "fwmark 5" || s.Fwmark != 5 || s.Protocol != 0 || s.Family != "inet" || s.Address != "" || v.RealServers[0].Port != 0 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"fwmark family from a real server", "virtual_server fwmark 5 {\n  real_server 2001:db8::1 80 {\n  }\n}\n", func(v *pb.VirtualServer) string {
			if v.Services[0].Family != "inet6" || v.Name != "fwmark 5/inet6" {
				return prototext.Format(v)
			}
			return ""
		}},
		{"ops needs UDP", "virtual_server 192.0.2.1 80 {\n protocol TCP\n ops\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.Flags != 0 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"ops with UDP", "virtual_server 192.0.2.1 53 {\n protocol UDP\n ops\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.Flags != svcOnePacket {
				return prototext.Format(v)
			}
			return ""
		}},
		{"sh-port before lb_algo sh is ignored", "virtual_server 192.0.2.1 80 {\n sh-port\n lb_algo sh\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.Flags != 0 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"mh-fallback under mh", "virtual_server 192.0.2.1 80 {\n lvs_sched mh\n mh-fallback\n flag-3\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if v.Flags != svcSched1|svcSched3 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"quorum clamped to total weight, hysteresis below quorum", "virtual_server 192.0.2.1 80 {\n quorum 10\n hysteresis 20\n" + server("") + "  real_server 10.0.0.2 {\n   weight 2\n  }\n}\n", func(v *pb.VirtualServer) string {
			if v.Quorum != 3 || v.Hysteresis != 2 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"duplicate real server dropped", "virtual_server 192.0.2.1 80 {\n" + server("80") + server("") + "}\n", func(v *pb.VirtualServer) string {
			if len(v.RealServers) != 1 {
				return prototext.Format(v)
			}
			return ""
		}},
		{"alpha from the virtual server, overridden by the checker", "virtual_server 192.0.2.1 80 {\n alpha\n  real_server 10.0.0.1 {\n   TCP_CHECK {\n   }\n  }\n  real_server 10.0.0.2 {\n   TCP_CHECK {\n    alpha off\n   }\n  }\n}\n", func(v *pb.VirtualServer) string {
			if !v.RealServers[0].StartsDown || v.RealServers[1].StartsDown || v.RealServers[0].Unchecked {
				return prototext.Format(v)
			}
			return ""
		}},
		{"sorry server lvs method and DR port", "virtual_server 192.0.2.1 80 {\n sorry_server 10.0.9.9 8080\n sorry_server_lvs_method DR\n" + server("") + "}\n", func(v *pb.VirtualServer) string {
			if s := v.SorryServer; s.Port != 80 || s.Forwarding.Method != pb.LvsMethod_LVS_METHOD_DR {
				return prototext.Format(s)
			}
			return ""
		}},
		{"group: ranges expanded, fwmark entry, DR ports per service", "virtual_server_group G {\n 192.0.2.10-11 80\n fwmark 9\n}\nvirtual_server group G {\n protocol TCP\n lvs_method DR\n" + server("80") + "}\n", func(v *pb.VirtualServer) string {
			if v.Name != "group G/TCP" || len(v.Services) != 3 || v.Services[1].Address != "192.0.2.11" || v.Services[2].Fwmark != 9 ||
				v.RealServers[0].HealthId != "group G/TCP 10.0.0.1:80" {
				return prototext.Format(v)
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vss := buildVS(t, tc.body)
			if len(vss) != 1 {
				t.Fatalf("%d virtual servers, want 1", len(vss))
			}
			if msg := tc.check(vss[0]); msg != "" {
				t.Errorf("unexpected:\n%s", msg)
			}
		})
	}
}

func TestVirtualServerNamesUnique(t *testing.T) {
	vss := buildVS(t, `virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
  }
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
  }
}
virtual_server 192.0.2.2 80 {
}
`)
	if len(vss) != 2 {
		t.Fatalf("%d virtual servers, want 2 (one without real servers is dropped)", len(vss))
	}
	if vss[0].RealServers[0].HealthId == vss[1].RealServers[0].HealthId {
		t.Errorf("health ids collide: %q", vss[0].RealServers[0].HealthId)
	}
}

// TestTunnelForwarding: a server without its own lvs_method takes the
// virtual server's method and tunnel options together; one with its own
// method takes its own options (check_data.c validate_check_config).
func TestTunnelForwarding(t *testing.T) {
	got := buildVS(t, `virtual_server 192.0.2.1 80 {
  lb_kind TUN type gue port 6080 csum
  protocol TCP
  sorry_server 10.0.9.9 80
  real_server 10.0.0.1 80 {
  }
  real_server 10.0.0.2 80 {
    lvs_method TUN type gre
  }
  real_server 10.0.0.3 80 {
    lvs_method TUN
  }
  real_server 10.0.0.4 80 {
    lvs_method DR
  }
}
`)
	if len(got) != 1 {
		t.Fatalf("%d virtual servers", len(got))
	}
	gue := &pb.LvsForwarding{Method: pb.LvsMethod_LVS_METHOD_TUN, TunnelType: pb.LvsTunnelType_LVS_TUNNEL_GUE, TunnelPort: 6080, TunnelFlags: 1}
	want := []*pb.LvsForwarding{
		gue,
		{Method: pb.LvsMethod_LVS_METHOD_TUN, TunnelType: pb.LvsTunnelType_LVS_TUNNEL_GRE},
		{Method: pb.LvsMethod_LVS_METHOD_TUN},
		{Method: pb.LvsMethod_LVS_METHOD_DR},
	}
	for i, rs := range got[0].GetRealServers() {
		if !proto.Equal(rs.GetForwarding(), want[i]) {
			t.Errorf("real server %s: forwarding %v, want %v", rs.GetAddress(), rs.GetForwarding(), want[i])
		}
	}
	if f := got[0].GetSorryServer().GetForwarding(); !proto.Equal(f, gue) {
		t.Errorf("sorry server: forwarding %v, want %v", f, gue)
	}
}
