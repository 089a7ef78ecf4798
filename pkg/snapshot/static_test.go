package snapshot

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// TestStatics checks static_ipaddress / static_routes / static_rules, and
// the device a static address without dev goes on.
func TestStatics(t *testing.T) {
	const body = `static_ipaddress {
    192.0.2.50/24 dev eth1 label eth1:st
    198.51.100.7/32
}
static_routes {
    10.9.0.0/16 via 192.0.2.254 dev eth1 metric 7
    blackhole 10.10.0.0/16
}
static_rules {
    from 192.0.2.50/32 table 100 priority 1000
}
`
	for _, tc := range []struct {
		name, globals, dev string
	}{
		{"keepalived's eth0 without default_interface", "", "eth0"},
		{"default_interface", "global_defs {\n default_interface eth7\n}\n", "eth7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := config.ParseBytes("k.conf", []byte(tc.globals+body), config.Options{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			s := Build(cfg, "k.conf", 1)
			line := func(n int) string {
				return "k.conf:" + strconv.Itoa(n+strings.Count(tc.globals, "\n"))
			}
			want := &pb.ConfigSnapshot{
				StaticIpaddress: []*pb.VirtualAddress{
					{Prefix: "192.0.2.50/24", Dev: "eth1", Label: "eth1:st"},
					{Prefix: "198.51.100.7/32", Dev: tc.dev},
				},
				StaticRoutes: []*pb.Route{
					{DefinedAt: line(6), To: "10.9.0.0/16", Via: "192.0.2.254", Dev: "eth1", Metric: 7},
					{DefinedAt: line(7), To: "10.10.0.0/16", Type: "blackhole"},
				},
				StaticRules: []*pb.Rule{{DefinedAt: line(10), From: "192.0.2.50/32", Table: 100, Priority: 1000}},
			}
			got := &pb.ConfigSnapshot{StaticIpaddress: s.GetStaticIpaddress(), StaticRoutes: s.GetStaticRoutes(), StaticRules: s.GetStaticRules()}
			if !proto.Equal(got, want) {
				t.Errorf("statics:\n got %v\nwant %v", prototext.Format(got), prototext.Format(want))
			}
		})
	}
}
