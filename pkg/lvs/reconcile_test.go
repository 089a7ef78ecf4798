package lvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
)

// fakeKernel is an in-memory IPVS table with the kernel's rules that matter
// here: EEXIST / ENOENT style errors, and HASHED on every service.
type fakeKernel struct {
	svcs    map[ServiceKey]Service
	dests   map[ServiceKey]map[DestKey]Destination
	calls   []string
	failAdd map[DestKey]bool
}

func newFake() *fakeKernel {
	return &fakeKernel{svcs: map[ServiceKey]Service{}, dests: map[ServiceKey]map[DestKey]Destination{}}
}

func (f *fakeKernel) Services() ([]Service, error) {
	var out []Service
	for _, s := range f.svcs {
		s.Flags |= flagHashed
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeKernel) Destinations(k ServiceKey) ([]Destination, error) {
	if _, ok := f.svcs[k]; !ok {
		return nil, errors.New("no such service")
	}
	var out []Destination
	for _, d := range f.dests[k] {
		out = append(out, d)
	}
	return out, nil
}

func (f *fakeKernel) NewService(s Service) error {
	f.calls = append(f.calls, "NewService "+s.String())
	if _, ok := f.svcs[s.ServiceKey]; ok {
		return errors.New("file exists")
	}
	f.svcs[s.ServiceKey] = s
	f.dests[s.ServiceKey] = map[DestKey]Destination{}
	return nil
}

func (f *fakeKernel) UpdateService(s Service) error {
	f.calls = append(f.calls, "UpdateService "+s.String())
	if _, ok := f.svcs[s.ServiceKey]; !ok {
		return errors.New("no such service")
	}
	f.svcs[s.ServiceKey] = s
	return nil
}

func (f *fakeKernel) RemoveService(k ServiceKey) error {
	f.calls = append(f.calls, "RemoveService "+k.String())
	if _, ok := f.svcs[k]; !ok {
		return errors.New("no such service")
	}
	delete(f.svcs, k)
	delete(f.dests, k)
	return nil
}

func (f *fakeKernel) NewDestination(k ServiceKey, d Destination) error {
	f.calls = append(f.calls, "NewDestination "+k.String()+" "+d.String())
	if f.failAdd[d.DestKey] {
		return errors.New("injected failure")
	}
	if _, ok := f.svcs[k]; !ok {
		return errors.New("no such service")
	}
	if _, ok := f.dests[k][d.DestKey]; ok {
		return errors.New("file exists")
	}
	f.dests[k][d.DestKey] = d
	return nil
}

func (f *fakeKernel) UpdateDestination(k ServiceKey, d Destination) error {
	f.calls = append(f.calls, "UpdateDestination "+k.String()+" "+d.String())
	if _, ok := f.dests[k][d.DestKey]; !ok {
		return errors.New("no such destination")
	}
	f.dests[k][d.DestKey] = d
	return nil
}

func (f *fakeKernel) RemoveDestination(k ServiceKey, dk DestKey) error {
	f.calls = append(f.calls, "RemoveDestination "+k.String()+" "+dk.String())
	if _, ok := f.dests[k][dk]; !ok {
		return errors.New("no such destination")
	}
	delete(f.dests[k], dk)
	return nil
}

// dump renders the whole fake table: "SVC sched [d=w ...]" per service.
func (f *fakeKernel) dump() string {
	var lines []string
	for k, s := range f.svcs {
		var ds []string
		for dk, d := range f.dests[k] {
			ds = append(ds, fmt.Sprintf("%s=%d", dk, d.Weight))
		}
		sort.Strings(ds)
		lines = append(lines, fmt.Sprintf("%s %s [%s]", k, s.Scheduler, strings.Join(ds, " ")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func key(s string) ServiceKey {
	ap := netip.MustParseAddrPort(s)
	return ServiceKey{Family: INET, Protocol: TCP, Addr: ap.Addr(), Port: ap.Port()}
}

func dest(s string, w uint32) Destination {
	ap := netip.MustParseAddrPort(s)
	return Destination{DestKey: DestKey{ap.Addr(), ap.Port()}, Weight: w}
}

// table builds a desired table: service "addr:port" -> dests.
func table(m map[string][]Destination) Table {
	t := Table{Services: map[ServiceKey]*Entry{}}
	for s, ds := range m {
		k := key(s)
		e := &Entry{Service: Service{ServiceKey: k, Scheduler: "wlc"}, Dests: map[DestKey]Destination{}}
		for _, d := range ds {
			e.Dests[d.DestKey] = d
		}
		t.Services[k] = e
	}
	return t
}

func ops(ch Changes) string {
	var out []string
	for _, c := range ch {
		out = append(out, c.String())
	}
	return strings.Join(out, "; ")
}

func mustReconcile(t *testing.T, k Kernel, o *Ownership, want Table) Changes {
	t.Helper()
	ch, err := Reconcile(context.Background(), k, o, want)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return ch
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	base := map[string][]Destination{
		"192.0.2.1:80": {dest("10.0.0.1:80", 1), dest("10.0.0.2:80", 2)},
	}
	foreign := key("198.51.100.1:443")

	t.Run("creates services and destinations, then does nothing", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		ch := mustReconcile(t, k, o, table(base))
		if got, want := ops(ch), "add-service TCP 192.0.2.1:80; add-dest TCP 192.0.2.1:80 -> 10.0.0.1:80; add-dest TCP 192.0.2.1:80 -> 10.0.0.2:80"; got != want {
			t.Errorf("changes:\n got %s\nwant %s", got, want)
		}
		if !o.Owns(key("192.0.2.1:80")) {
			t.Error("created service not owned")
		}
		k.calls = nil
		if ch := mustReconcile(t, k, o, table(base)); len(ch) != 0 || len(k.calls) != 0 {
			t.Errorf("second reconcile changed %v (calls %v)", ch, k.calls)
		}
	})

	t.Run("weight change edits in place", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		mustReconcile(t, k, o, table(base))
		ch := mustReconcile(t, k, o, table(map[string][]Destination{"192.0.2.1:80": {dest("10.0.0.1:80", 1), dest("10.0.0.2:80", 0)}}))
		if got, want := ops(ch), "edit-dest TCP 192.0.2.1:80 -> 10.0.0.2:80"; got != want {
			t.Errorf("changes: got %s, want %s", got, want)
		}
		if got, want := k.dump(), "TCP 192.0.2.1:80 wlc [10.0.0.1:80=1 10.0.0.2:80=0]"; got != want {
			t.Errorf("kernel:\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("destination removal, and a hand-added destination in an owned service", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		mustReconcile(t, k, o, table(base))
		k.dests[key("192.0.2.1:80")][DestKey{netip.MustParseAddr("10.0.0.7"), 80}] = dest("10.0.0.7:80", 9)
		ch := mustReconcile(t, k, o, table(map[string][]Destination{"192.0.2.1:80": {dest("10.0.0.1:80", 1)}}))
		if got, want := ops(ch), "del-dest TCP 192.0.2.1:80 -> 10.0.0.2:80; del-dest TCP 192.0.2.1:80 -> 10.0.0.7:80"; got != want {
			t.Errorf("changes: got %s, want %s", got, want)
		}
	})

	t.Run("a foreign service is never touched", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		k.svcs[foreign] = Service{ServiceKey: foreign, Scheduler: "rr"}
		k.dests[foreign] = map[DestKey]Destination{{netip.MustParseAddr("10.9.9.9"), 443}: dest("10.9.9.9:443", 5)}
		mustReconcile(t, k, o, table(base))
		mustReconcile(t, k, o, Table{Services: map[ServiceKey]*Entry{}}) // config emptied
		for _, c := range k.calls {
			if strings.Contains(c, "198.51.100.1") {
				t.Errorf("touched the foreign service: %s", c)
			}
		}
		if got, want := k.dump(), "TCP 198.51.100.1:443 rr [10.9.9.9:443=5]"; got != want {
			t.Errorf("kernel:\n%s\nwant\n%s", got, want)
		}
		if o.Owns(key("192.0.2.1:80")) {
			t.Error("removed service still owned")
		}
	})

	t.Run("a service deleted by hand is re-created", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		mustReconcile(t, k, o, table(base))
		if err := k.RemoveService(key("192.0.2.1:80")); err != nil {
			t.Fatal(err)
		}
		ch := mustReconcile(t, k, o, table(base))
		if got, want := ops(ch), "add-service TCP 192.0.2.1:80; add-dest TCP 192.0.2.1:80 -> 10.0.0.1:80; add-dest TCP 192.0.2.1:80 -> 10.0.0.2:80"; got != want {
			t.Errorf("changes: got %s, want %s", got, want)
		}
	})

	t.Run("adoption after a vrrpd restart", func(t *testing.T) {
		k := newFake()
		mustReconcile(t, k, NewOwnership(), table(map[string][]Destination{
			"192.0.2.1:80": {dest("10.0.0.1:80", 1), dest("10.0.0.2:80", 2)},
			"192.0.2.9:80": {dest("10.0.0.1:80", 1)}, // removed from the config before the restart
		}))
		// The restarted vrrpd: empty ownership, health moved on meanwhile.
		o := NewOwnership()
		k.calls = nil
		ch := mustReconcile(t, k, o, table(map[string][]Destination{"192.0.2.1:80": {dest("10.0.0.1:80", 1), dest("10.0.0.2:80", 0)}}))
		if got, want := ops(ch), "adopt-service TCP 192.0.2.1:80; edit-dest TCP 192.0.2.1:80 -> 10.0.0.2:80"; got != want {
			t.Errorf("changes: got %s, want %s", got, want)
		}
		for _, c := range k.calls {
			if strings.HasPrefix(c, "NewService") || strings.Contains(c, "192.0.2.9") {
				t.Errorf("unexpected call after restart: %s", c)
			}
		}
		if !o.Owns(key("192.0.2.1:80")) || o.Owns(key("192.0.2.9:80")) {
			t.Errorf("ownership after adoption: %v", o.Keys())
		}
	})

	t.Run("service settings changed; HASHED reported by the kernel is not a change", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		mustReconcile(t, k, o, table(base))
		want := table(base)
		want.Services[key("192.0.2.1:80")].Service.Scheduler = "rr"
		if got := ops(mustReconcile(t, k, o, want)); got != "edit-service TCP 192.0.2.1:80" {
			t.Errorf("changes: %s", got)
		}
	})

	t.Run("a failed step does not stop the others", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		k.failAdd = map[DestKey]bool{{netip.MustParseAddr("10.0.0.1"), 80}: true}
		ch, err := Reconcile(ctx, k, o, table(base))
		if err == nil || !strings.Contains(err.Error(), "adding 10.0.0.1:80 to TCP 192.0.2.1:80") {
			t.Errorf("error %v, want one naming the failed destination", err)
		}
		if got, want := ops(ch), "add-service TCP 192.0.2.1:80; add-dest TCP 192.0.2.1:80 -> 10.0.0.2:80"; got != want {
			t.Errorf("changes: got %s, want %s", got, want)
		}
		k.failAdd = nil
		if got := ops(mustReconcile(t, k, o, table(base))); got != "add-dest TCP 192.0.2.1:80 -> 10.0.0.1:80" {
			t.Errorf("retry: %s", got)
		}
	})

	t.Run("end to end with Desired", func(t *testing.T) {
		k, o := newFake(), NewOwnership()
		v := vs(1, 0, sorry(), rs(1, 1), rs(2, 1, inhibit))
		mustReconcile(t, k, o, Desired(nil, nil)) // nothing
		tab := Desired(vssOf(v), health(map[string]bool{"rs1": true, "rs2": true}))
		mustReconcile(t, k, o, tab)
		tab = tab.Next(vssOf(v), health(map[string]bool{"rs1": false, "rs2": false}))
		ch := mustReconcile(t, k, o, tab)
		if got, want := ops(ch), "del-dest TCP 192.0.2.1:80 -> 10.0.0.1:80; edit-dest TCP 192.0.2.1:80 -> 10.0.0.2:80; add-dest TCP 192.0.2.1:80 -> 10.0.9.9:80"; got != want {
			t.Errorf("changes:\n got %s\nwant %s", got, want)
		}
		if got, want := k.dump(), "TCP 192.0.2.1:80 wlc [10.0.0.2:80=0 10.0.9.9:80=1]"; got != want {
			t.Errorf("kernel:\n%s\nwant\n%s", got, want)
		}
	})
}
