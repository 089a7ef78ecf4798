package lvs

import (
	"context"
	"strings"
	"testing"
)

// countingKernel counts the dumps a Reconcile makes.
type countingKernel struct {
	*fakeKernel
	services, destinations int
}

func (c *countingKernel) Services() ([]Service, error) {
	c.services++
	return c.fakeKernel.Services()
}

func (c *countingKernel) Destinations(k ServiceKey) ([]Destination, error) {
	c.destinations++
	return c.fakeKernel.Destinations(k)
}

// TestMirror: after the first Reconcile, one through a Mirror makes only
// its changes (no dump); a hand edit is seen after Refresh; a failed
// change makes the next Reconcile dump again.
func TestMirror(t *testing.T) {
	fk := newFake()
	ck := &countingKernel{fakeKernel: fk}
	m := NewMirror(ck)
	o := NewOwnership()
	ctx := context.Background()
	one := table(map[string][]Destination{"192.0.2.1:80": {dest("10.0.0.1:80", 1), dest("10.0.0.2:80", 2)}})
	if _, err := Reconcile(ctx, m, o, one); err != nil {
		t.Fatal(err)
	}
	if ck.services != 1 {
		t.Fatalf("first Reconcile listed services %d times, want 1", ck.services)
	}
	fk.calls = nil
	two := table(map[string][]Destination{"192.0.2.1:80": {dest("10.0.0.1:80", 3), dest("10.0.0.2:80", 2)}})
	ch, err := Reconcile(ctx, m, o, two)
	if err != nil {
		t.Fatal(err)
	}
	if ck.services != 1 || ck.destinations != 0 || len(ch) != 1 || ch[0].Op != EditDest ||
		strings.Join(fk.calls, ";") != "UpdateDestination TCP 192.0.2.1:80 10.0.0.1:80 weight 3 method 0" {
		t.Fatalf("second Reconcile: %d service and %d destination dumps, changes %v, calls %q; want no new dump and one edit",
			ck.services, ck.destinations, ch, fk.calls)
	}

	// Someone removes the service by hand: the mirror does not see it
	// until Refresh, then it comes back.
	delete(fk.svcs, key("192.0.2.1:80"))
	delete(fk.dests, key("192.0.2.1:80"))
	if ch, _ := Reconcile(ctx, m, o, two); len(ch) != 0 {
		t.Fatalf("changes %v from the mirror's copy, want none", ch)
	}
	m.Refresh()
	if ch, err := Reconcile(ctx, m, o, two); err != nil || len(ch) != 3 || ch[0].Op != AddService {
		t.Fatalf("after Refresh: changes %v err %v, want the service and its two destinations back", ch, err)
	}
	if got, want := fk.dump(), "TCP 192.0.2.1:80 wlc [10.0.0.1:80=3 10.0.0.2:80=2]"; got != want {
		t.Fatalf("kernel %q, want %q", got, want)
	}

	// A failed change: the copy is dropped, the next Reconcile dumps.
	dumps := m.Dumps()
	fk.failAdd = map[DestKey]bool{dest("10.0.0.3:80", 1).DestKey: true}
	three := table(map[string][]Destination{"192.0.2.1:80": {dest("10.0.0.1:80", 3), dest("10.0.0.2:80", 2), dest("10.0.0.3:80", 1)}})
	if _, err := Reconcile(ctx, m, o, three); err == nil {
		t.Fatal("the injected failure was not reported")
	}
	fk.failAdd = nil
	if _, err := Reconcile(ctx, m, o, three); err != nil {
		t.Fatal(err)
	}
	if m.Dumps() != dumps+1 {
		t.Fatalf("dumps %d after a failure and a retry, want %d", m.Dumps(), dumps+1)
	}
	if got, want := fk.dump(), "TCP 192.0.2.1:80 wlc [10.0.0.1:80=3 10.0.0.2:80=2 10.0.0.3:80=1]"; got != want {
		t.Fatalf("kernel %q, want %q", got, want)
	}
}
