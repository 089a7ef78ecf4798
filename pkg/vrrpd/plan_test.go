package vrrpd

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func TestMakePlan(t *testing.T) {
	named := func(name string, f func(*pb.VrrpInstance)) *pb.VrrpInstance {
		c := vi1()
		c.Name = name
		if f != nil {
			f(c)
		}
		return c
	}
	for _, tc := range []struct {
		name          string
		running, next []*pb.VrrpInstance
		want          Plan
	}{
		{"first", nil, []*pb.VrrpInstance{named("A", nil), named("B", nil)}, Plan{Added: []string{"A", "B"}}},
		{"same", []*pb.VrrpInstance{named("A", nil)}, []*pb.VrrpInstance{named("A", nil)}, Plan{Unchanged: []string{"A"}}},
		{"removed", []*pb.VrrpInstance{named("A", nil), named("B", nil)}, []*pb.VrrpInstance{named("B", nil)},
			Plan{Removed: []string{"A"}, Unchanged: []string{"B"}}},
		{"vip in place", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) {
				c.VirtualIpaddress = append(c.VirtualIpaddress, &pb.VirtualAddress{Prefix: "192.0.2.7/32"})
			})},
			Plan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "virtual_ipaddress", InPlace: true}}}}}},
		{"advert_int in place", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.AdvertInt = durationpb.New(2 * time.Second) })},
			Plan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "advert_int", InPlace: true}}}}}},
		{"mixed, field order", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) {
				c.Garp = nil
				c.Priority = 90
				c.DefinedAt = "other.conf:3"
			})},
			Plan{Changed: []Change{{Name: "A", Fields: []FieldChange{
				{Field: "defined_at", InPlace: true}, {Field: "priority", InPlace: true}, {Field: "garp", InPlace: true}}}}}},
		{"becoming the owner restarts", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.Priority = 255 })},
			Plan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "priority"}}, Restart: true}}}},
		{"vrid restarts", []*pb.VrrpInstance{named("A", nil)},
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.Vrid = 99 })},
			Plan{Changed: []Change{{Name: "A", Fields: []FieldChange{{Field: "vrid"}}, Restart: true}}}},
		{"unicast peers in place, multicast to unicast restarts",
			[]*pb.VrrpInstance{named("A", func(c *pb.VrrpInstance) { c.UnicastPeer = []string{"192.0.2.2"} }), named("B", nil)},
			[]*pb.VrrpInstance{
				named("A", func(c *pb.VrrpInstance) { c.UnicastPeer = []string{"192.0.2.3"} }),
				named("B", func(c *pb.VrrpInstance) { c.UnicastPeer = []string{"192.0.2.3"} })},
			Plan{Changed: []Change{
				{Name: "A", Fields: []FieldChange{{Field: "unicast_peer", InPlace: true}}},
				{Name: "B", Fields: []FieldChange{{Field: "unicast_peer"}}, Restart: true}}}},
		{"renamed is removed and added", []*pb.VrrpInstance{named("A", nil)}, []*pb.VrrpInstance{named("B", nil)},
			Plan{Added: []string{"B"}, Removed: []string{"A"}}},
	} {
		if got := MakePlan(tc.running, tc.next); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}
