package lvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab"
)

// TestInVM runs the TestGuest* tests below in one VM, against the real
// kernel's IPVS through OpenKernel: the adapter over cloudflare/ipvs has no
// other test that reaches netlink.
func TestInVM(t *testing.T) {
	t.Parallel()
	vmlab.RunTestsInVM(t, vmlab.Options{Modules: []string{"ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"}}, "^TestGuest")
}

// guest opens the real kernel and a raw cloudflare/ipvs client (the "hand"
// of an operator), and empties the IPVS table after the test so that the
// guest tests, which share one kernel, start from nothing.
func guest(t *testing.T) (Kernel, ipvs.Client) {
	t.Helper()
	vmlab.RequireVM(t)
	k, err := OpenKernel()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	wipe := func() {
		ss, err := c.Services()
		if errors.Is(err, os.ErrNotExist) { // cloudflare/ipvs: an empty table
			return
		}
		if err != nil {
			t.Errorf("listing services to clean up: %v", err)
			return
		}
		for _, s := range ss {
			if err := c.RemoveService(s.Service); err != nil {
				t.Errorf("cleaning up %+v: %v", s.Service, err)
			}
		}
	}
	wipe()
	t.Cleanup(wipe)
	return k, c
}

var (
	vip   = netip.MustParseAddr("10.0.0.1")
	rs1   = netip.MustParseAddr("192.168.1.1")
	rs2   = netip.MustParseAddr("192.168.1.2")
	web   = ServiceKey{Family: INET, Protocol: TCP, Addr: vip, Port: 80}
	rs1_8 = DestKey{Addr: rs1, Port: 8080}
	rs2_8 = DestKey{Addr: rs2, Port: 8080}
)

func vmTable(es ...*Entry) Table {
	t := Table{Services: map[ServiceKey]*Entry{}}
	for _, e := range es {
		t.Services[e.Service.ServiceKey] = e
	}
	return t
}

func vmEntry(s Service, ds ...Destination) *Entry {
	e := &Entry{Service: s, Dests: map[DestKey]Destination{}}
	for _, d := range ds {
		e.Dests[d.DestKey] = d
	}
	return e
}

// webTable: TCP 10.0.0.1:80 rr, two NAT destinations of weights 1 and 2.
func webTable(w1, w2 uint32) Table {
	return vmTable(vmEntry(Service{ServiceKey: web, Scheduler: "rr"},
		Destination{DestKey: rs1_8, Method: NAT, Weight: w1},
		Destination{DestKey: rs2_8, Method: NAT, Weight: w2}))
}

func reconcile(t *testing.T, k Kernel, o *Ownership, d Table) Changes {
	t.Helper()
	ch, err := Reconcile(context.Background(), k, o, d)
	if err != nil {
		t.Fatalf("Reconcile: %v (changes %v)", err, ch)
	}
	return ch
}

func opsOf(ch Changes) []string {
	out := make([]string, 0, len(ch))
	for _, c := range ch {
		out = append(out, c.String())
	}
	return out
}

func wantOps(t *testing.T, what string, ch Changes, want ...string) {
	t.Helper()
	if got := opsOf(ch); !slices.Equal(got, want) {
		t.Errorf("%s: changes\n got %q\nwant %q", what, got, want)
	}
}

// kernelTable reads the whole kernel table through the adapter, services
// as the kernel reports them (HASHED cleared) and destinations by key.
func kernelTable(t *testing.T, k Kernel) map[ServiceKey]*Entry {
	t.Helper()
	ss, err := k.Services()
	if err != nil {
		t.Fatalf("Services: %v", err)
	}
	out := map[ServiceKey]*Entry{}
	for _, s := range ss {
		s.Flags &^= flagHashed
		ds, err := k.Destinations(s.ServiceKey)
		if err != nil {
			t.Fatalf("Destinations(%s): %v", s.ServiceKey, err)
		}
		e := &Entry{Service: s, Dests: map[DestKey]Destination{}}
		for _, d := range ds {
			if _, dup := e.Dests[d.DestKey]; dup {
				t.Errorf("%s: destination %s listed twice", s.ServiceKey, d.DestKey)
			}
			e.Dests[d.DestKey] = d
		}
		if _, dup := out[s.ServiceKey]; dup {
			t.Errorf("service %s listed twice", s.ServiceKey)
		}
		out[s.ServiceKey] = e
	}
	return out
}

// wantKernel checks the kernel holds exactly want (services and
// destinations field by field), plus the foreign services listed.
func wantKernel(t *testing.T, k Kernel, want Table, foreign ...ServiceKey) {
	t.Helper()
	got := kernelTable(t, k)
	for _, f := range foreign {
		if got[f] == nil {
			t.Errorf("foreign service %s is gone", f)
		}
		delete(got, f)
	}
	for key, we := range want.Services {
		ge := got[key]
		if ge == nil {
			t.Errorf("service %s missing from the kernel", key)
			continue
		}
		delete(got, key)
		if !sameService(ge.Service, we.Service) {
			t.Errorf("service %s:\n kernel %+v\n  want  %+v", key, ge.Service, we.Service)
		}
		if len(ge.Dests) != len(we.Dests) {
			t.Errorf("service %s: kernel has %d destinations %v, want %d %v", key, len(ge.Dests), ge.Dests, len(we.Dests), we.Dests)
		}
		for dk, wd := range we.Dests {
			if gd, ok := ge.Dests[dk]; !ok {
				t.Errorf("service %s: destination %s missing", key, dk)
			} else if gd != wd {
				t.Errorf("service %s: destination\n kernel %+v\n  want  %+v", key, gd, wd)
			}
		}
	}
	for key := range got {
		t.Errorf("unexpected service %s in the kernel", key)
	}
}

// (1) The table is created, reads back field by field, and a second
// Reconcile finds nothing to do.
func TestGuestCreateReadBack(t *testing.T) {
	k, c := guest(t)
	o := NewOwnership()
	d := webTable(1, 2)
	wantOps(t, "first", reconcile(t, k, o, d),
		"add-service TCP 10.0.0.1:80", "add-dest TCP 10.0.0.1:80 -> 192.168.1.1:8080", "add-dest TCP 10.0.0.1:80 -> 192.168.1.2:8080")
	wantKernel(t, k, d)

	// And as the kernel says it, through the raw client, not the adapter.
	raw := toIPVSService(d.Services[web].Service)
	s, err := c.Service(raw)
	if err != nil {
		t.Fatalf("raw Service: %v", err)
	}
	if s.Scheduler != "rr" || s.Protocol != ipvs.TCP || s.Port != 80 || s.Address.Unmap() != vip {
		t.Errorf("raw service = %+v", s.Service)
	}
	ds, err := c.Destinations(raw)
	if err != nil {
		t.Fatalf("raw Destinations: %v", err)
	}
	weights := map[netip.Addr]uint32{}
	for _, d := range ds {
		if d.FwdMethod != ipvs.Masquerade || d.Port != 8080 {
			t.Errorf("raw destination %+v: want masquerade to port 8080", d.Destination)
		}
		weights[d.Address.Unmap()] = d.Weight
	}
	if len(ds) != 2 || weights[rs1] != 1 || weights[rs2] != 2 {
		t.Errorf("raw destinations %+v: want %s weight 1 and %s weight 2", ds, rs1, rs2)
	}

	wantOps(t, "again", reconcile(t, k, o, d))
}

// (2) A weight edited in place, a destination removed.
func TestGuestEditAndRemoveDest(t *testing.T) {
	k, _ := guest(t)
	o := NewOwnership()
	reconcile(t, k, o, webTable(1, 2))

	d := webTable(5, 2)
	wantOps(t, "weight", reconcile(t, k, o, d), "edit-dest TCP 10.0.0.1:80 -> 192.168.1.1:8080")
	wantKernel(t, k, d)

	delete(d.Services[web].Dests, rs2_8)
	wantOps(t, "removal", reconcile(t, k, o, d), "del-dest TCP 10.0.0.1:80 -> 192.168.1.2:8080")
	wantKernel(t, k, d)

	// A scheduler change edits the service, destinations stay.
	d.Services[web].Service.Scheduler = "wrr"
	wantOps(t, "scheduler", reconcile(t, k, o, d), "edit-service TCP 10.0.0.1:80")
	wantKernel(t, k, d)
	wantOps(t, "again", reconcile(t, k, o, d))
}

// foreignSvc is made by hand, as another tool would: a service with a
// destination that is in no desired table.
var foreignKey = ServiceKey{Family: INET, Protocol: UDP, Addr: netip.MustParseAddr("10.9.9.9"), Port: 53}

func addForeign(t *testing.T, c ipvs.Client) {
	t.Helper()
	s := ipvs.Service{Family: ipvs.INET, Protocol: ipvs.UDP, Address: foreignKey.Addr, Port: 53, Scheduler: "sh", Netmask: netmask.MaskFrom(32, 32)}
	if err := c.CreateService(s); err != nil {
		t.Fatalf("creating the foreign service: %v", err)
	}
	d := ipvs.Destination{Family: ipvs.INET, Address: netip.MustParseAddr("10.9.9.10"), Port: 53, Weight: 9, FwdMethod: ipvs.DirectRoute}
	if err := c.CreateDestination(s, d); err != nil {
		t.Fatalf("adding to the foreign service: %v", err)
	}
}

func foreignIntact(t *testing.T, k Kernel) {
	t.Helper()
	e := kernelTable(t, k)[foreignKey]
	if e == nil {
		t.Fatalf("foreign service %s is gone", foreignKey)
	}
	want := Destination{DestKey: DestKey{Addr: netip.MustParseAddr("10.9.9.10"), Port: 53}, Method: DR, Weight: 9}
	if e.Service.Scheduler != "sh" || len(e.Dests) != 1 || e.Dests[want.DestKey] != want {
		t.Errorf("foreign service changed: %+v %v", e.Service, e.Dests)
	}
}

// (3) A service vrrpkit did not make survives every Reconcile, the empty
// one at stop included.
func TestGuestForeignUntouched(t *testing.T) {
	k, c := guest(t)
	addForeign(t, c)
	o := NewOwnership()
	d := webTable(1, 2)
	reconcile(t, k, o, d)
	wantKernel(t, k, d, foreignKey)
	foreignIntact(t, k)
	if o.Owns(foreignKey) {
		t.Errorf("foreign service owned")
	}
	reconcile(t, k, o, webTable(3, 2))
	foreignIntact(t, k)
	wantOps(t, "stop", reconcile(t, k, o, Table{}), "del-service TCP 10.0.0.1:80")
	wantKernel(t, k, Table{}, foreignKey)
	foreignIntact(t, k)
}

// (4) An owned service deleted by hand comes back, destinations and all.
func TestGuestRecreateDeleted(t *testing.T) {
	k, c := guest(t)
	o := NewOwnership()
	d := webTable(1, 2)
	reconcile(t, k, o, d)
	if err := c.RemoveService(toIPVSService(d.Services[web].Service)); err != nil {
		t.Fatalf("removing by hand: %v", err)
	}
	wantKernel(t, k, Table{})
	wantOps(t, "recreate", reconcile(t, k, o, d),
		"add-service TCP 10.0.0.1:80", "add-dest TCP 10.0.0.1:80 -> 192.168.1.1:8080", "add-dest TCP 10.0.0.1:80 -> 192.168.1.2:8080")
	wantKernel(t, k, d)

	// A destination removed by hand comes back too.
	if err := c.RemoveDestination(toIPVSService(d.Services[web].Service), toIPVSDest(d.Services[web].Dests[rs1_8])); err != nil {
		t.Fatalf("removing a destination by hand: %v", err)
	}
	wantOps(t, "re-add dest", reconcile(t, k, o, d), "add-dest TCP 10.0.0.1:80 -> 192.168.1.1:8080")
	wantKernel(t, k, d)
}

// (5) After a restart (a fresh Ownership) the same table is adopted, not
// duplicated; the adopted service is then removed at stop like an own.
func TestGuestAdoption(t *testing.T) {
	k, _ := guest(t)
	d := webTable(1, 2)
	reconcile(t, k, NewOwnership(), d)

	o := NewOwnership()
	wantOps(t, "adopt", reconcile(t, k, o, d), "adopt-service TCP 10.0.0.1:80")
	wantKernel(t, k, d)
	if !o.Owns(web) {
		t.Errorf("adopted service not owned")
	}
	// Adoption with a changed table edits what it adopted.
	o = NewOwnership()
	d2 := webTable(1, 4)
	wantOps(t, "adopt and edit", reconcile(t, k, o, d2),
		"adopt-service TCP 10.0.0.1:80", "edit-dest TCP 10.0.0.1:80 -> 192.168.1.2:8080")
	wantKernel(t, k, d2)
	wantOps(t, "stop", reconcile(t, k, o, Table{}), "del-service TCP 10.0.0.1:80")
	wantKernel(t, k, Table{})
}

// (6) fwmark services (IPv4 and IPv6) and an IPv6 DR service, including
// persistence with a granularity, round-trip without spurious edits.
func TestGuestFwmarkAndIPv6(t *testing.T) {
	k, _ := guest(t)
	v6 := netip.MustParseAddr("2001:db8::1")
	fwm := ServiceKey{Family: INET, Fwmark: 7}
	fwm6 := ServiceKey{Family: INET6, Fwmark: 8}
	v6Key := ServiceKey{Family: INET6, Protocol: TCP, Addr: v6, Port: 443}
	d := vmTable(
		vmEntry(Service{ServiceKey: fwm, Scheduler: "wrr"},
			Destination{DestKey: DestKey{Addr: rs1}, Method: DR, Weight: 1},
			Destination{DestKey: DestKey{Addr: rs2, Port: 8080}, Method: NAT, Weight: 3}),
		vmEntry(Service{ServiceKey: fwm6, Scheduler: "sh", Flags: FlagPersistent, Timeout: 300e9, Netmask: netip.MustParsePrefix("::/64")},
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("2001:db8::20")}, Method: DR, Weight: 1}),
		vmEntry(Service{ServiceKey: v6Key, Scheduler: "rr"},
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("2001:db8::10"), Port: 443}, Method: DR, Weight: 1},
			Destination{DestKey: DestKey{Addr: netip.MustParseAddr("2001:db8::11"), Port: 443}, Method: DR, Weight: 2}),
	)
	ch := reconcile(t, k, NewOwnership(), d)
	if len(ch) != 8 {
		t.Errorf("first reconcile made %d changes, want 3 services and 5 destinations: %v", len(ch), ch)
	}
	wantKernel(t, k, d)
	o := NewOwnership()
	wantOps(t, "adopt", reconcile(t, k, o, d), "adopt-service FWM 7", "adopt-service FWM 8 IPv6", "adopt-service TCP [2001:db8::1]:443")
	wantOps(t, "again", reconcile(t, k, o, d))

	// Persistence on the IPv4 fwmark service with a /24 granularity.
	d.Services[fwm].Service.Flags = FlagPersistent
	d.Services[fwm].Service.Timeout = 60e9
	d.Services[fwm].Service.Netmask = netip.MustParsePrefix("255.255.255.0/32")
	wantOps(t, "persistence", reconcile(t, k, o, d), "edit-service FWM 7")
	wantKernel(t, k, d)
	wantOps(t, "again", reconcile(t, k, o, d))
}

// (7) The empty table at stop removes exactly the owned services: not the
// foreign one, not one left over from a previous run that the table never
// named.
func TestGuestStopRemovesOwned(t *testing.T) {
	k, c := guest(t)
	addForeign(t, c)
	leftover := Service{ServiceKey: ServiceKey{Family: INET, Protocol: TCP, Addr: vip, Port: 8443}, Scheduler: "rr"}
	reconcile(t, k, NewOwnership(), vmTable(vmEntry(leftover)))

	o := NewOwnership()
	v6 := ServiceKey{Family: INET6, Protocol: TCP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}
	d := webTable(1, 2)
	d.Services[v6] = vmEntry(Service{ServiceKey: v6, Scheduler: "wrr"},
		Destination{DestKey: DestKey{Addr: netip.MustParseAddr("2001:db8::10"), Port: 443}, Method: DR, Weight: 1})
	d.Services[ServiceKey{Family: INET, Fwmark: 3}] = vmEntry(Service{ServiceKey: ServiceKey{Family: INET, Fwmark: 3}, Scheduler: "rr"})
	reconcile(t, k, o, d)
	if got := o.Keys(); len(got) != 3 {
		t.Errorf("owned %v, want 3 services", got)
	}
	ch := reconcile(t, k, o, Table{})
	var removed []string
	for _, c := range ch {
		if c.Op != DelService {
			t.Errorf("unexpected change at stop: %v", c)
		}
		removed = append(removed, c.Service.String())
	}
	slices.Sort(removed)
	if want := []string{"FWM 3", "TCP 10.0.0.1:80", "TCP [2001:db8::1]:443"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	if len(o.Keys()) != 0 {
		t.Errorf("still owned after stop: %v", o.Keys())
	}
	wantKernel(t, k, vmTable(vmEntry(leftover)), foreignKey)
	foreignIntact(t, k)
	if s := strings.Join(opsOf(reconcile(t, k, o, Table{})), ","); s != "" {
		t.Errorf("second stop changed %s", s)
	}
}

// Every setting the adapter carries survives the round trip through the
// kernel, so that Reconcile edits nothing the second time: service flags
// (one-packet, sh-fallback, sh-port), thresholds, a GUE tunnel.
func TestGuestSettingsRoundTrip(t *testing.T) {
	k, _ := guest(t)
	dns := ServiceKey{Family: INET, Protocol: UDP, Addr: vip, Port: 53}
	tun := ServiceKey{Family: INET, Protocol: TCP, Addr: vip, Port: 443}
	d := vmTable(
		vmEntry(Service{ServiceKey: dns, Scheduler: "sh", Flags: 0x4 | 0x8 | 0x10},
			Destination{DestKey: DestKey{Addr: rs1, Port: 5353}, Method: NAT, Weight: 4, UThreshold: 100, LThreshold: 10}),
		vmEntry(Service{ServiceKey: tun, Scheduler: "wrr"},
			Destination{DestKey: DestKey{Addr: rs2, Port: 443}, Method: Tunnel, Weight: 1, TunnelType: 1, TunnelPort: 6080, TunnelFlags: 1},
			Destination{DestKey: DestKey{Addr: rs1, Port: 443}, Method: Tunnel, Weight: 1}),
	)
	o := NewOwnership()
	reconcile(t, k, o, d)
	wantKernel(t, k, d)
	wantOps(t, "again", reconcile(t, k, o, d))

	// Weight 0 (inhibit_on_failure) is a real setting, not an absence.
	d.Services[dns].Dests[DestKey{Addr: rs1, Port: 5353}] = Destination{DestKey: DestKey{Addr: rs1, Port: 5353}, Method: NAT, UThreshold: 100, LThreshold: 10}
	wantOps(t, "inhibit", reconcile(t, k, o, d), "edit-dest UDP 10.0.0.1:53 -> 192.168.1.1:5353")
	wantKernel(t, k, d)
	wantOps(t, "again", reconcile(t, k, o, d))
}
