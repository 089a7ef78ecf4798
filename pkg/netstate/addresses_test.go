package netstate

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newAddrTest returns a namespace with the veth pair veth0/veth1 and an
// address manager working in it.
func newAddrTest(t *testing.T) (*testNS, *Addresses, *logBuffer) {
	t.Helper()
	n := newTestNS(t)
	n.veth(t, "veth0", "veth1")
	log, buf := testLogger(t)
	return n, New(n.h, log), buf
}

func mustHas(t *testing.T, m *Addresses, a Address, want bool) {
	t.Helper()
	got, err := m.Has(a)
	if err != nil {
		t.Fatalf("Has(%v): %v", a, err)
	}
	if got != want {
		t.Fatalf("Has(%v) = %v, want %v", a, got, want)
	}
}

func mustOwned(t *testing.T, m *Addresses, want ...Address) {
	t.Helper()
	got := m.Owned()
	eq := func(x, y Address) bool { return keyOf(x) == keyOf(y) }
	if !slices.EqualFunc(got, want, eq) {
		t.Fatalf("Owned() = %v, want %v", got, want)
	}
}

func TestAddRemoveIPv4LabelScope(t *testing.T) {
	n, m, _ := newAddrTest(t)
	ctx := context.Background()
	vip := Address{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Dev: "veth0", Label: "veth0:vip", Scope: "link"}

	mustHas(t, m, vip, false)
	if err := m.Add(ctx, vip); err != nil {
		t.Fatal(err)
	}
	mustHas(t, m, vip, true)
	mustOwned(t, m, vip)

	out := n.ip(t, "-4", "-o", "addr", "show", "dev", "veth0")
	if !strings.Contains(out, "inet 192.0.2.10/24 scope link veth0:vip") {
		t.Errorf("ip addr show: want 192.0.2.10/24 with scope link and label veth0:vip, got:\n%s", out)
	}
	if strings.Contains(out, " brd ") {
		t.Errorf("ip addr show: broadcast set although none was asked for:\n%s", out)
	}

	// Same local address, other prefix length: another IPv4 address.
	mustHas(t, m, Address{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Dev: "veth0"}, false)

	// Label and scope are not needed to remove it.
	if err := m.Remove(ctx, Address{Prefix: vip.Prefix, Dev: "veth0"}); err != nil {
		t.Fatal(err)
	}
	mustHas(t, m, vip, false)
	mustOwned(t, m)
	if out := n.ip(t, "-4", "addr", "show", "dev", "veth0"); strings.Contains(out, "192.0.2.10") {
		t.Errorf("address still present after Remove:\n%s", out)
	}
}

func TestAddIPv4Broadcast(t *testing.T) {
	n, m, _ := newAddrTest(t)
	vip := Address{Prefix: netip.MustParsePrefix("192.0.2.11/24"), Dev: "veth0", Broadcast: netip.MustParseAddr("192.0.2.255")}
	if err := m.Add(context.Background(), vip); err != nil {
		t.Fatal(err)
	}
	if out := n.ip(t, "-4", "-o", "addr", "show", "dev", "veth0"); !strings.Contains(out, "inet 192.0.2.11/24 brd 192.0.2.255 scope global") {
		t.Errorf("ip addr show: want brd 192.0.2.255, got:\n%s", out)
	}
}

func TestAddIPv6NoDAD(t *testing.T) {
	n, m, _ := newAddrTest(t)
	ctx := context.Background()
	vip := Address{Prefix: netip.MustParsePrefix("2001:db8::10/64"), Dev: "veth0"}
	if err := m.Add(ctx, vip); err != nil {
		t.Fatal(err)
	}
	mustHas(t, m, vip, true)
	if got := m.Owned(); len(got) != 1 || !got[0].NoDAD {
		t.Errorf("Owned() = %v, want the address with NoDAD", got)
	}

	// The flag as the kernel reports it (IFA_FLAGS).
	link, err := n.h.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	list, err := n.h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range list {
		if a.IP.Equal(vip.Prefix.Addr().AsSlice()) {
			found = true
			if a.Flags&unix.IFA_F_NODAD == 0 {
				t.Errorf("flags %#x lack IFA_F_NODAD", a.Flags)
			}
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("flags %#x: address is tentative", a.Flags)
			}
		}
	}
	if !found {
		t.Fatalf("2001:db8::10 not in %v", list)
	}
	// And as ip(8) shows it.
	out := n.ip(t, "-6", "-o", "addr", "show", "dev", "veth0")
	line := ""
	for l := range strings.Lines(out) {
		if strings.Contains(l, "2001:db8::10/64") {
			line = l
		}
	}
	if !strings.Contains(line, "nodad") || strings.Contains(line, "tentative") {
		t.Errorf("ip -6 addr show: want 2001:db8::10/64 with nodad and not tentative, got:\n%s", out)
	}

	// An IPv6 address is identified by its address alone: another
	// prefix length is the same address to the kernel.
	mustHas(t, m, Address{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Dev: "veth0"}, true)

	if err := m.Remove(ctx, vip); err != nil {
		t.Fatal(err)
	}
	mustHas(t, m, vip, false)
	mustOwned(t, m)
}

func TestPreExistingAddressNotRemoved(t *testing.T) {
	n, m, _ := newAddrTest(t)
	ctx := context.Background()
	n.ip(t, "addr", "add", "192.0.2.20/24", "dev", "veth0")
	n.ip(t, "addr", "add", "2001:db8::20/64", "dev", "veth0", "nodad")
	for _, s := range []string{"192.0.2.20/24", "2001:db8::20/64"} {
		a := Address{Prefix: netip.MustParsePrefix(s), Dev: "veth0"}
		if err := m.Add(ctx, a); err != nil {
			t.Fatalf("Add of a pre-existing address: %v", err)
		}
		mustOwned(t, m)
		if err := m.Remove(ctx, a); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		mustHas(t, m, a, true)
	}
}

func TestDoubleAddIsIdempotent(t *testing.T) {
	_, m, _ := newAddrTest(t)
	ctx := context.Background()
	for _, s := range []string{"192.0.2.30/24", "2001:db8::30/64"} {
		a := Address{Prefix: netip.MustParsePrefix(s), Dev: "veth0"}
		for i := range 2 {
			if err := m.Add(ctx, a); err != nil {
				t.Fatalf("Add #%d of %v: %v", i+1, a, err)
			}
		}
		mustOwned(t, m, a) // still ours after the second add
		if err := m.Remove(ctx, a); err != nil {
			t.Fatal(err)
		}
		mustHas(t, m, a, false)
		// A second Remove is a no-op.
		if err := m.Remove(ctx, a); err != nil {
			t.Fatalf("second Remove: %v", err)
		}
	}
}

func TestRemoveUnknownIsNoop(t *testing.T) {
	n, m, logs := newAddrTest(t)
	ctx := context.Background()
	// Never present.
	if err := m.Remove(ctx, Address{Prefix: netip.MustParsePrefix("192.0.2.40/24"), Dev: "veth0"}); err != nil {
		t.Fatalf("Remove of an absent address: %v", err)
	}
	// Present, not ours.
	n.ip(t, "addr", "add", "192.0.2.41/24", "dev", "veth0")
	a := Address{Prefix: netip.MustParsePrefix("192.0.2.41/24"), Dev: "veth0"}
	if err := m.Remove(ctx, a); err != nil {
		t.Fatalf("Remove of a foreign address: %v", err)
	}
	mustHas(t, m, a, true)
	if !strings.Contains(logs.String(), "not removing address that vrrpkit did not add") {
		t.Errorf("no debug message for the no-op; log:\n%s", logs)
	}
	// On an interface that does not exist.
	if err := m.Remove(ctx, Address{Prefix: netip.MustParsePrefix("192.0.2.42/24"), Dev: "nosuch0"}); err != nil {
		t.Fatalf("Remove on a missing interface: %v", err)
	}
}

func TestAdopt(t *testing.T) {
	n, m, _ := newAddrTest(t)
	n.ip(t, "addr", "add", "192.0.2.50/24", "dev", "veth0", "label", "veth0:a")
	a := Address{Prefix: netip.MustParsePrefix("192.0.2.50/24"), Dev: "veth0", Label: "veth0:a"}
	m.Adopt(a)
	mustOwned(t, m, a)
	if err := m.Remove(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	mustHas(t, m, a, false)
}

func TestRemoveAfterExternalDelete(t *testing.T) {
	n, m, _ := newAddrTest(t)
	a := Address{Prefix: netip.MustParsePrefix("192.0.2.60/24"), Dev: "veth0"}
	if err := m.Add(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	n.ip(t, "addr", "del", "192.0.2.60/24", "dev", "veth0")
	if err := m.Remove(context.Background(), a); err != nil {
		t.Fatalf("Remove of an address deleted behind our back: %v", err)
	}
	mustOwned(t, m)
}

func TestPeerAddress(t *testing.T) {
	n, m, _ := newAddrTest(t)
	a := Address{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Peer: netip.MustParsePrefix("192.0.2.2/32"), Dev: "veth0"}
	if err := m.Add(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if out := n.ip(t, "-4", "-o", "addr", "show", "dev", "veth0"); !strings.Contains(out, "inet 192.0.2.1 peer 192.0.2.2/32") {
		t.Errorf("ip addr show: want peer address, got:\n%s", out)
	}
	mustHas(t, m, a, true)
	mustHas(t, m, Address{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Dev: "veth0"}, false)
	if err := m.Remove(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	mustHas(t, m, a, false)
}

func TestAddErrors(t *testing.T) {
	n, m, _ := newAddrTest(t)
	err := m.Add(context.Background(), Address{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Dev: "nosuch0"})
	if !errors.Is(err, ErrLinkNotFound) || err.Error() != "netstate: add 192.0.2.10/24 dev nosuch0: link not found" {
		t.Errorf("Add on a missing interface: error %q", err)
	}
	if _, err := m.Has(Address{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Dev: "nosuch0"}); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("Has on a missing interface: error %v, want ErrLinkNotFound", err)
	}

	// A kernel refusal keeps its errno: IPv6 disabled on the link.
	out, err := exec.Command("ip", "netns", "exec", n.name, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv6/conf/veth1/disable_ipv6").CombinedOutput()
	if err != nil {
		t.Fatalf("disable IPv6 on veth1: %v: %s", err, out)
	}
	err = m.Add(context.Background(), Address{Prefix: netip.MustParsePrefix("2001:db8::99/64"), Dev: "veth1"})
	if !errors.Is(err, unix.EACCES) || !strings.HasPrefix(err.Error(), "netstate: add 2001:db8::99/64 dev veth1: ") {
		t.Errorf("Add with IPv6 disabled: error %v, want EACCES with context", err)
	}
	t.Logf("kernel refusal reads: %v", err)
	mustOwned(t, m)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Add(ctx, Address{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Dev: "veth0"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a cancelled context: %v", err)
	}
}
