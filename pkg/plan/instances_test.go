package plan

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func TestInstances(t *testing.T) {
	named := func(name string, f func(*pb.VrrpInstance)) *pb.VrrpInstance {
		c := &pb.VrrpInstance{
			Name: "VI_1", DefinedAt: "keepalived.conf:1", Interface: "eth0", Vrid: 51, Priority: 100, Version: 3,
			AdvertInt:        durationpb.New(time.Second),
			VirtualIpaddress: []*pb.VirtualAddress{{Prefix: "192.0.2.100/32"}},
			Garp:             &pb.GarpSettings{MasterRepeat: 5, MasterDelay: durationpb.New(5 * time.Second), LowerPrioRepeat: 2},
		}
		c.Name = name
		if f != nil {
			f(c)
		}
		return c
	}
	for _, tc := range []struct {
		name          string
		running, next []*pb.VrrpInstance
		want          InstancePlan
	}{
		{"first", nil, []*pb.VrrpInstance{named("A", nil), named("B", nil)}, InstancePlan{Added: []string{"A", "B"}}},
		{"same", []*pb.VrrpInstance{named("A", nil)}, []*pb.VrrpInstance{named("A", nil)}, InstancePlan{Unchanged: []string{"A"}}},
		{"removed", []*pb.VrrpInstance{named("A", nil), named("B", nil)}, []*pb.VrrpInstance{named("B", nil)},
			InstancePlan{Removed: []string{"A"}, Unchanged: []string{"B"}}},
		{"vip in place", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) {
				c.VirtualIpaddress = append(c.VirtualIpaddress, &pb.VirtualAddress{Prefix: "192.0.2.7/32"})
			})},
			InstancePlan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "virtual_ipaddress", InPlace: true}}}}}},
		{"advert_int in place", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.AdvertInt = durationpb.New(2 * time.Second) })},
			InstancePlan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "advert_int", InPlace: true}}}}}},
		{"mixed, field order", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) {
				c.Garp = nil
				c.Priority = 90
				c.DefinedAt = "other.conf:3"
			})},
			InstancePlan{Changed: []Change{{Name: "A", Fields: []FieldChange{
				{Field: "defined_at", InPlace: true}, {Field: "priority", InPlace: true}, {Field: "garp", InPlace: true}}}}}},
		{"becoming the owner restarts", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.Priority = 255 })},
			InstancePlan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "priority"}}, Restart: true}}}},
		{"vrid restarts", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.Vrid = 99 })},
			InstancePlan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "vrid"}}, Restart: true}}}},
		{"unicast peers in place, multicast to unicast restarts",
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.UnicastPeer = []string{"192.0.2.2"} }), named("B", nil)},
			[]*pb.VrrpInstance{
				named("A", func(c *pb.VrrpInstance) { c.UnicastPeer = []string{"192.0.2.3"} }),
				named("B", func(c *pb.VrrpInstance) { c.UnicastPeer = []string{"192.0.2.3"} })},
			InstancePlan{Changed: []Change{
				{Name: "A", Fields: []FieldChange{{Field: "unicast_peer", InPlace: true}}},
				{Name: "B", Fields: []FieldChange{{Field: "unicast_peer"}}, Restart: true}}}},
		{"renamed is removed and added", []*pb.VrrpInstance{named("A", nil)}, []*pb.VrrpInstance{named("B", nil)},
			InstancePlan{Added: []string{"B"}, Removed: []string{"A"}}},
	} {
		if got := Instances(tc.running, tc.next); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}
