package plan

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// InstancePlan is what applying a snapshot does to the running instances,
// matched by name. It is a pure value: Instances computes it without
// touching anything, so it is table-tested and can be shown before it is
// applied (vrrpctl reload --dry-run) and then applied as shown (vrrpd).
type InstancePlan struct {
	Added     []string // in the snapshot's order
	Removed   []string // in the running order
	Changed   []Change // in the snapshot's order
	Unchanged []string
}

// Change is one instance whose configuration differs.
type Change struct {
	Name string
	// Fields that differ, by their snapshot (keepalived-like) names, in
	// field number order.
	Fields []FieldChange
	// Restart: some field cannot change in place, so the instance stops
	// (a master sends priority 0 and releases its addresses) and starts
	// again with the new configuration.
	Restart bool
}

// FieldChange is one field of a Change.
type FieldChange struct {
	Field   string
	InPlace bool
}

// inPlaceFields can change on a running instance without restarting it:
// they do not move its state machine. Any other field, including one added
// to the snapshot later and not listed here, restarts the instance, which
// is always correct, only not always smooth.
var inPlaceFields = map[protoreflect.Name]bool{
	"defined_at":                 true, // informational
	"state_hint":                 true, // only where an instance starts
	"virtual_ipaddress":          true, // added / removed one by one
	"virtual_ipaddress_excluded": true,
	"garp":                       true, // read at each round
	"skip_check_adv_addr":        true, // a receive check
	"notify":                     true, // run by the supervisor
	// Tracking is re-evaluated after every apply (tracking.go): trackers
	// keep their state, only the weights and the set change.
	"track_interface":         true,
	"track_script":            true,
	"track_file":              true,
	"track_process":           true,
	"dont_track_primary":      true,
	"sync_group":              true, // groups are rebuilt on every apply
	"notify_priority_changes": true, // read at each change
	// The state machine takes these without leaving its state
	// (vrrp.Machine.Reconfigure); keepalived restarts the instance.
	"advert_int":              true,
	"nopreempt":               true,
	"preempt_delay":           true,
	"lower_prio_no_advert":    true,
	"higher_prio_send_advert": true,
}

// inPlaceIf are fields that change in place only between some values.
var inPlaceIf = map[protoreflect.Name]func(a, b *pb.VrrpInstance) bool{
	// Becoming or ceasing to be the address owner changes how the
	// instance starts and preempts (RFC 5798 §6.4.1): a restart.
	"priority": func(a, b *pb.VrrpInstance) bool { return (a.GetPriority() == 255) == (b.GetPriority() == 255) },
	// A new peer list keeps the unicast socket; multicast <-> unicast needs
	// another socket.
	"unicast_peer": func(a, b *pb.VrrpInstance) bool {
		return len(a.GetUnicastPeer()) > 0 && len(b.GetUnicastPeer()) > 0
	},
}

// Instances compares the running instances (in their order) with a
// snapshot's.
func Instances(running, next []*pb.VrrpInstance) InstancePlan {
	var p InstancePlan
	old := make(map[string]*pb.VrrpInstance, len(running))
	for _, c := range running {
		old[c.GetName()] = c
	}
	keep := make(map[string]bool, len(next))
	for _, c := range next {
		keep[c.GetName()] = true
		o, ok := old[c.GetName()]
		switch {
		case !ok:
			p.Added = append(p.Added, c.GetName())
		case proto.Equal(o, c):
			p.Unchanged = append(p.Unchanged, c.GetName())
		default:
			p.Changed = append(p.Changed, diff(o, c))
		}
	}
	for _, c := range running {
		if !keep[c.GetName()] {
			p.Removed = append(p.Removed, c.GetName())
		}
	}
	return p
}

// diff lists the fields of two versions of an instance that differ.
func diff(a, b *pb.VrrpInstance) Change {
	ch := Change{Name: b.GetName()}
	ra, rb := a.ProtoReflect(), b.ProtoReflect()
	fields := ra.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fieldEqual(ra, rb, fd) {
			continue
		}
		in := inPlaceFields[fd.Name()]
		if f := inPlaceIf[fd.Name()]; f != nil {
			in = f(a, b)
		}
		ch.Fields = append(ch.Fields, FieldChange{Field: string(fd.Name()), InPlace: in})
		if !in {
			ch.Restart = true
		}
	}
	return ch
}

func fieldEqual(a, b protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	if a.Has(fd) != b.Has(fd) {
		return false
	}
	if !a.Has(fd) {
		return true
	}
	// Compare through single-field messages so that lists, maps and nested
	// messages get proto.Equal's semantics.
	ma, mb := a.Type().New(), b.Type().New()
	ma.Set(fd, a.Get(fd))
	mb.Set(fd, b.Get(fd))
	return proto.Equal(ma.Interface(), mb.Interface())
}
