// Package plan computes what a reload does: from the running configuration
// snapshot and the next one, which VRRP instances are added, removed,
// changed in place or restarted, which virtual addresses come and go, which
// trackers and real-server checks start and stop, and what changes in the
// IPVS table. It is pure: vrrpd applies the instance plan it computes, and
// `vrrpctl reload --dry-run` prints the whole plan without applying it.
package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/lvs"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// Op is what a plan does to one item.
type Op string

const (
	Add     Op = "add"
	Remove  Op = "remove"
	InPlace Op = "change"  // in place
	Restart Op = "restart" // stopped and started again (a master sends priority 0)
)

// Item is one line of a plan: an item of a section, what happens to it, and
// for changes the fields as "name: old -> new".
type Item struct {
	Section string // "instance", "address", "tracker", "real_server_checks", "ipvs"
	Op      Op
	Name    string
	Details []string
}

// Plan is the whole of a reload.
type Plan struct {
	Instances InstancePlan
	Items     []Item
}

// Make compares the running snapshot (nil at start) with the next one.
func Make(running, next *pb.ConfigSnapshot) Plan {
	p := Plan{Instances: Instances(running.GetInstances(), next.GetInstances())}
	old := map[string]*pb.VrrpInstance{}
	for _, in := range running.GetInstances() {
		old[in.GetName()] = in
	}
	nw := map[string]*pb.VrrpInstance{}
	for _, in := range next.GetInstances() {
		nw[in.GetName()] = in
	}
	for _, n := range p.Instances.Added {
		p.Items = append(p.Items, Item{Section: "instance", Op: Add, Name: n})
	}
	for _, n := range p.Instances.Removed {
		p.Items = append(p.Items, Item{Section: "instance", Op: Remove, Name: n})
	}
	for _, ch := range p.Instances.Changed {
		it := Item{Section: "instance", Op: InPlace, Name: ch.Name}
		if ch.Restart {
			it.Op = Restart
		}
		for _, f := range ch.Fields {
			if f.Field == "defined_at" {
				continue // the block moved in the file: nothing changes
			}
			a, b := FieldValues(old[ch.Name], nw[ch.Name], f.Field)
			d := fmt.Sprintf("%s: %s -> %s", fieldName(f.Field), a, b)
			if !f.InPlace {
				d += " (restart)"
			}
			it.Details = append(it.Details, d)
		}
		if len(it.Details) > 0 {
			p.Items = append(p.Items, it)
		}
	}
	p.Items = append(p.Items, addresses(running, next)...)
	p.Items = append(p.Items, trackers(running, next)...)
	p.Items = append(p.Items, ipvs(running, next)...)
	return p
}

// FieldValues formats one field of two versions of an instance, for people:
// scalars as they are, lists and messages in protobuf text form, an unset
// field as "-".
func FieldValues(a, b *pb.VrrpInstance, field string) (string, string) {
	fd := (&pb.VrrpInstance{}).ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil || a == nil || b == nil {
		return "?", "?"
	}
	return fieldValue(a.ProtoReflect(), fd), fieldValue(b.ProtoReflect(), fd)
}

// keepalivedNames are the snapshot fields whose keepalived.conf keyword is
// spelled otherwise.
var keepalivedNames = map[string]string{"vrid": "virtual_router_id", "version": "vrrp_version"}

// fieldName is how a plan names a snapshot field.
func fieldName(f string) string {
	if k, ok := keepalivedNames[f]; ok {
		return k
	}
	return f
}

// messageDiff lists the fields of two versions of a block that differ, as
// "field: old -> new", leaving out where the block is in the file.
func messageDiff(a, b proto.Message) []string {
	ra, rb := a.ProtoReflect(), b.ProtoReflect()
	fields := ra.Descriptor().Fields()
	var out []string
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "defined_at" {
			continue
		}
		x, y := fieldValue(ra, fd), fieldValue(rb, fd)
		if x != y {
			out = append(out, fmt.Sprintf("%s: %s -> %s", fieldName(string(fd.Name())), x, y))
		}
	}
	return out
}

func fieldValue(m protoreflect.Message, fd protoreflect.FieldDescriptor) string {
	if !m.Has(fd) && fd.IsList() {
		return "[]"
	}
	if !m.Has(fd) {
		return "-"
	}
	if fd.IsList() {
		l := m.Get(fd).List()
		parts := make([]string, l.Len())
		for i := range parts {
			v := l.Get(i)
			switch x := v.Interface().(type) {
			case protoreflect.Message:
				if va, ok := x.Interface().(*pb.VirtualAddress); ok {
					parts[i] = addrName(va)
				} else {
					parts[i] = compact(x.Interface())
				}
			default:
				parts[i] = fmt.Sprint(x)
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if fd.Kind() != protoreflect.MessageKind && !fd.IsMap() {
		return fmt.Sprint(m.Get(fd).Interface())
	}
	if d, ok := m.Get(fd).Message().Interface().(*durationpb.Duration); ok && !fd.IsMap() {
		return d.AsDuration().String()
	}
	one := m.Type().New()
	one.Set(fd, m.Get(fd))
	s := strings.TrimSpace(prototext.MarshalOptions{}.Format(one.Interface()))
	// prototext's "field:{...}" without the field's own name.
	s = strings.TrimPrefix(s, string(fd.Name())+":")
	return strings.Join(strings.Fields(s), " ")
}

// compact is a message in one line of protobuf text.
func compact(m proto.Message) string {
	return "{" + strings.Join(strings.Fields(prototext.MarshalOptions{}.Format(m)), " ") + "}"
}

// withoutPosition is m without its defined_at, if it has one: where a block
// sits in the file changes nothing it does.
func withoutPosition(m proto.Message) proto.Message {
	fd := m.ProtoReflect().Descriptor().Fields().ByName("defined_at")
	if fd == nil {
		return m
	}
	m = proto.Clone(m)
	m.ProtoReflect().Clear(fd)
	return m
}

// addresses: per instance, the virtual addresses that come and go. An
// address that moves between two instances appears twice.
func addresses(running, next *pb.ConfigSnapshot) []Item {
	set := func(s *pb.ConfigSnapshot) map[string][]string {
		out := map[string][]string{}
		for _, in := range s.GetInstances() {
			for _, va := range append(slices.Clone(in.GetVirtualIpaddress()), in.GetVirtualIpaddressExcluded()...) {
				out[in.GetName()] = append(out[in.GetName()], addrName(va))
			}
		}
		return out
	}
	was, will := set(running), set(next)
	var items []Item
	for _, in := range running.GetInstances() {
		for _, a := range was[in.GetName()] {
			if !slices.Contains(will[in.GetName()], a) {
				items = append(items, Item{Section: "address", Op: Remove, Name: a, Details: []string{"from " + in.GetName()}})
			}
		}
	}
	for _, in := range next.GetInstances() {
		for _, a := range will[in.GetName()] {
			if !slices.Contains(was[in.GetName()], a) {
				items = append(items, Item{Section: "address", Op: Add, Name: a, Details: []string{"on " + in.GetName()}})
			}
		}
	}
	return items
}

func addrName(va *pb.VirtualAddress) string {
	if d := va.GetDev(); d != "" {
		return va.GetPrefix() + " dev " + d
	}
	return va.GetPrefix()
}

// trackers: vrrp_script, vrrp_track_file and vrrp_track_process blocks by
// name, and each real server's set of checks (checkerd keeps an unchanged
// check's state and schedule).
func trackers(running, next *pb.ConfigSnapshot) []Item {
	var items []Item
	diff := func(section, kind string, was, will map[string]proto.Message, order []string) {
		for _, n := range order {
			a, inOld := was[n]
			b, inNew := will[n]
			switch {
			case inOld && !inNew:
				items = append(items, Item{Section: section, Op: Remove, Name: kind + " " + n})
			case !inOld && inNew:
				items = append(items, Item{Section: section, Op: Add, Name: kind + " " + n})
			case !proto.Equal(withoutPosition(a), withoutPosition(b)):
				it := Item{Section: section, Op: InPlace, Name: kind + " " + n}
				if section == "tracker" {
					it.Details = messageDiff(a, b)
				}
				items = append(items, it)
			}
		}
	}
	index := func(ms []named) (map[string]proto.Message, []string) {
		out := map[string]proto.Message{}
		var order []string
		for _, m := range ms {
			out[m.GetName()] = m
			order = append(order, m.GetName())
		}
		return out, order
	}
	merge := func(a, b []string) []string {
		out := slices.Clone(a)
		for _, n := range b {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	pair := func(kind string, a, b []named) {
		was, oa := index(a)
		will, ob := index(b)
		diff("tracker", kind, was, will, merge(oa, ob))
	}
	pair("vrrp_script", asNamed(running.GetScripts()), asNamed(next.GetScripts()))
	pair("vrrp_track_file", asNamed(running.GetTrackFiles()), asNamed(next.GetTrackFiles()))
	pair("vrrp_track_process", asNamed(running.GetTrackProcesses()), asNamed(next.GetTrackProcesses()))

	checks := func(s *pb.ConfigSnapshot) (map[string]proto.Message, []string) {
		out := map[string]proto.Message{}
		var order []string
		for _, vs := range s.GetVirtualServers() {
			for _, rs := range vs.GetRealServers() {
				if len(rs.GetCheckers()) == 0 || rs.GetHealthId() == "" {
					continue
				}
				// Positions do not matter to checkerd: a check that only
				// moved in the file keeps running.
				list := &pb.LvsRealServer{}
				for _, c := range rs.GetCheckers() {
					c = proto.Clone(c).(*pb.LvsChecker)
					c.DefinedAt = ""
					list.Checkers = append(list.Checkers, c)
				}
				out[rs.GetHealthId()] = list
				order = append(order, rs.GetHealthId())
			}
		}
		return out, order
	}
	was, oa := checks(running)
	will, ob := checks(next)
	diff("real_server_checks", "real_server", was, will, merge(oa, ob))
	return items
}

// named is a snapshot block with a name (vrrp_script, track_file, ...).
type named interface {
	proto.Message
	GetName() string
}

func asNamed[T named](in []T) []named {
	out := make([]named, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// ipvs: the IPVS services and destinations the two configurations program
// with every real server up (health is the running system's, not the
// file's), compared entry by entry.
func ipvs(running, next *pb.ConfigSnapshot) []Item {
	allUp := func(string) (bool, bool) { return true, true }
	a := lvs.Desired(running.GetVirtualServers(), allUp)
	b := lvs.Desired(next.GetVirtualServers(), allUp)
	keys := a.Keys()
	for _, k := range b.Keys() {
		if _, ok := a.Services[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var items []Item
	for _, k := range keys {
		ea, eb := a.Services[k], b.Services[k]
		switch {
		case eb == nil:
			items = append(items, Item{Section: "ipvs", Op: Remove, Name: k.String()})
			continue
		case ea == nil:
			items = append(items, Item{Section: "ipvs", Op: Add, Name: k.String(), Details: []string{serviceSummary(eb.Service)}})
			ea = &lvs.Entry{}
		default:
			if d := serviceDiff(ea.Service, eb.Service); len(d) > 0 {
				items = append(items, Item{Section: "ipvs", Op: InPlace, Name: k.String(), Details: d})
			}
		}
		var dests []lvs.DestKey
		for dk := range ea.Dests {
			dests = append(dests, dk)
		}
		for dk := range eb.Dests {
			if _, ok := ea.Dests[dk]; !ok {
				dests = append(dests, dk)
			}
		}
		sort.Slice(dests, func(i, j int) bool { return dests[i].String() < dests[j].String() })
		for _, dk := range dests {
			da, inA := ea.Dests[dk]
			db, inB := eb.Dests[dk]
			name := k.String() + " -> " + dk.String()
			switch {
			case !inB:
				items = append(items, Item{Section: "ipvs", Op: Remove, Name: name})
			case !inA:
				items = append(items, Item{Section: "ipvs", Op: Add, Name: name, Details: []string{destSummary(db)}})
			case da != db:
				items = append(items, Item{Section: "ipvs", Op: InPlace, Name: name, Details: destDiff(da, db)})
			}
		}
	}
	return items
}

func serviceSummary(s lvs.Service) string {
	out := "scheduler " + s.Scheduler
	if s.Flags&lvs.FlagPersistent != 0 {
		out += fmt.Sprintf(", persistent %v", s.Timeout)
	}
	return out
}

func serviceDiff(a, b lvs.Service) []string {
	var d []string
	add := func(f string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			d = append(d, fmt.Sprintf("%s: %v -> %v", f, x, y))
		}
	}
	add("scheduler", a.Scheduler, b.Scheduler)
	add("flags", fmt.Sprintf("%#x", a.Flags), fmt.Sprintf("%#x", b.Flags))
	add("persistence_timeout", a.Timeout, b.Timeout)
	add("persistence_granularity", a.Netmask, b.Netmask)
	add("persistence_engine", a.PEName, b.PEName)
	return d
}

var methodNames = map[lvs.Method]string{lvs.NAT: "NAT", lvs.DR: "DR", lvs.Tunnel: "TUN"}

func destSummary(d lvs.Destination) string {
	return fmt.Sprintf("%s weight %d", methodNames[d.Method], d.Weight)
}

func destDiff(a, b lvs.Destination) []string {
	var d []string
	add := func(f string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s: %v -> %v", f, x, y))
		}
	}
	add("weight", a.Weight, b.Weight)
	add("lvs_method", methodNames[a.Method], methodNames[b.Method])
	add("uthreshold", a.UThreshold, b.UThreshold)
	add("lthreshold", a.LThreshold, b.LThreshold)
	add("tunnel_type", a.TunnelType, b.TunnelType)
	add("tunnel_port", a.TunnelPort, b.TunnelPort)
	add("tunnel_flags", a.TunnelFlags, b.TunnelFlags)
	return d
}

type instanceCounts struct{ added, removed, inPlace, restarted, unchanged int }

// counts counts instances as people see them: one that only moved in the
// file is unchanged.
func (p Plan) counts() instanceCounts {
	c := instanceCounts{added: len(p.Instances.Added), removed: len(p.Instances.Removed)}
	for _, it := range p.Items {
		switch {
		case it.Section == "instance" && it.Op == InPlace:
			c.inPlace++
		case it.Section == "instance" && it.Op == Restart:
			c.restarted++
		}
	}
	c.unchanged = len(p.Instances.Unchanged) + len(p.Instances.Changed) - c.inPlace - c.restarted
	return c
}

// Proto is the plan as the Supervisor.Reload response carries it.
func (p Plan) Proto() *pb.ReloadPlan {
	c := p.counts()
	out := &pb.ReloadPlan{
		InstancesAdded: uint32(c.added), InstancesRemoved: uint32(c.removed),
		InstancesChanged: uint32(c.inPlace), InstancesRestarted: uint32(c.restarted), InstancesUnchanged: uint32(c.unchanged),
	}
	for _, it := range p.Items {
		out.Items = append(out.Items, &pb.PlanItem{Section: it.Section, Op: string(it.Op), Name: it.Name, Details: it.Details})
	}
	return out
}
