package netstate

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestVirtualMACAndLinkLocal(t *testing.T) {
	if got := VirtualMAC(51, false).String(); got != "00:00:5e:00:01:33" {
		t.Errorf("VirtualMAC(51, v4) = %s", got)
	}
	if got := VirtualMAC(255, true).String(); got != "00:00:5e:00:02:ff" {
		t.Errorf("VirtualMAC(255, v6) = %s", got)
	}
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	ll, err := LinkLocalFromMAC(mac)
	if err != nil || ll != netip.MustParseAddr("fe80::5054:ff:fe12:3456") {
		t.Errorf("LinkLocalFromMAC = %v, %v", ll, err)
	}
	if _, err := LinkLocalFromMAC(net.HardwareAddr{1, 2}); err == nil {
		t.Error("LinkLocalFromMAC of 2 bytes: no error")
	}
}

func newVMACTest(t *testing.T) (*testNS, *VMACs) {
	t.Helper()
	n := newTestNS(t)
	log, _ := testLogger(t)
	m, err := NewVMACsAt(n.ns, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	n.veth(t, "vmacbase0", "vmacpeer0")
	return n, m
}

// sysctl reads net.<family>.conf.<iface>.<key> inside the namespace.
func (n *testNS) sysctl(t *testing.T, family, iface, key string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.name, "cat", "/proc/sys/net/"+family+"/conf/"+iface+"/"+key).CombinedOutput()
	if err != nil {
		t.Fatalf("read %s %s %s: %v: %s", family, iface, key, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestVMACEnsureIPv4(t *testing.T) {
	n, m := newVMACTest(t)
	ctx := context.Background()
	baseIgnore, baseFilter := n.sysctl(t, "ipv4", "vmacbase0", "arp_ignore"), n.sysctl(t, "ipv4", "vmacbase0", "arp_filter")
	if baseIgnore == "1" && baseFilter == "1" {
		t.Fatal("base starts with arp_ignore=1 arp_filter=1: the test could not see a change")
	}
	spec := VMACSpec{Name: "vrrp.51", Base: "vmacbase0", HardwareAddr: VirtualMAC(51, false), IPv4Sysctls: true, DisableIPv6: true}
	info, err := m.Ensure(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	out := n.ip(t, "-d", "link", "show", "vrrp.51")
	for _, want := range []string{"vrrp.51@vmacbase0", "00:00:5e:00:01:33", "macvlan mode private", "addrgenmode none", "state UP"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -d link show vrrp.51: no %q in:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "<BROADCAST,MULTICAST,UP,LOWER_UP>") {
		t.Errorf("vrrp.51 not up:\n%s", out)
	}
	if info.Index == 0 || !strings.HasPrefix(out, strconv.Itoa(info.Index)+":") {
		t.Errorf("Ensure returned index %d; ip says:\n%s", info.Index, out)
	}
	for _, c := range []struct{ fam, dev, key, want string }{
		{"ipv4", "vrrp.51", "arp_ignore", "1"}, {"ipv4", "vrrp.51", "accept_local", "1"},
		{"ipv4", "vrrp.51", "rp_filter", "0"}, {"ipv4", "vrrp.51", "promote_secondaries", "1"},
		{"ipv6", "vrrp.51", "disable_ipv6", "1"},
		{"ipv4", "vmacbase0", "arp_ignore", "1"}, {"ipv4", "vmacbase0", "arp_filter", "1"},
	} {
		if got := n.sysctl(t, c.fam, c.dev, c.key); got != c.want {
			t.Errorf("net.%s.conf.%s.%s = %s, want %s", c.fam, c.dev, c.key, got, c.want)
		}
	}

	// Idempotent: same index, nothing re-created.
	again, err := m.Ensure(ctx, spec)
	if err != nil || again.Index != info.Index {
		t.Errorf("second Ensure = %+v, %v; want index %d", again, err, info.Index)
	}
	// Taken down behind our back: Ensure brings it up again.
	n.ip(t, "link", "set", "vrrp.51", "down")
	if _, err := m.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if out := n.ip(t, "link", "show", "vrrp.51"); !strings.Contains(out, ",UP") {
		t.Errorf("after re-Ensure vrrp.51 not up:\n%s", out)
	}
	if got := m.Owned(); len(got) != 1 || got[0] != "vrrp.51" {
		t.Errorf("Owned = %v", got)
	}

	if err := m.Remove(ctx, "vrrp.51"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", n.name, "link", "show", "vrrp.51").CombinedOutput(); err == nil {
		t.Errorf("vrrp.51 still there after Remove:\n%s", out)
	}
	if got := n.sysctl(t, "ipv4", "vmacbase0", "arp_ignore"); got != baseIgnore {
		t.Errorf("base arp_ignore after Remove = %s, want restored %s", got, baseIgnore)
	}
	if got := n.sysctl(t, "ipv4", "vmacbase0", "arp_filter"); got != baseFilter {
		t.Errorf("base arp_filter after Remove = %s, want restored %s", got, baseFilter)
	}
	if err := m.Remove(ctx, "vrrp.51"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestVMACEnsureIPv6LinkLocal(t *testing.T) {
	n, m := newVMACTest(t)
	base, err := n.h.LinkByName("vmacbase0")
	if err != nil {
		t.Fatal(err)
	}
	ll, err := LinkLocalFromMAC(base.Attrs().HardwareAddr)
	if err != nil {
		t.Fatal(err)
	}
	spec := VMACSpec{Name: "vrrp6.9", Base: "vmacbase0", HardwareAddr: VirtualMAC(9, true), LinkLocal: ll}
	if _, err := m.Ensure(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	out := n.ip(t, "-d", "-6", "addr", "show", "dev", "vrrp6.9")
	if l := n.ip(t, "-d", "link", "show", "vrrp6.9"); !strings.Contains(l, "00:00:5e:00:02:09") || !strings.Contains(l, "addrgenmode none") {
		t.Errorf("vrrp6.9: want MAC 00:00:5e:00:02:09 and addrgenmode none:\n%s", l)
	}
	// Exactly one link-local: ours, from the base's MAC; none from the
	// virtual MAC.
	if got := strings.Count(out, "inet6 fe80::"); got != 1 || !strings.Contains(out, "inet6 "+ll.String()+"/64") {
		t.Errorf("vrrp6.9 link-local addresses: want only %s/64:\n%s", ll, out)
	}
	if strings.Contains(out, "tentative") {
		t.Errorf("link-local is tentative (DAD ran):\n%s", out)
	}
	if got := n.sysctl(t, "ipv6", "vrrp6.9", "disable_ipv6"); got != "0" {
		t.Errorf("disable_ipv6 = %s on an IPv6 VMAC", got)
	}
	if err := m.Remove(context.Background(), "vrrp6.9"); err != nil {
		t.Fatal(err)
	}
}

func TestVMACConflicts(t *testing.T) {
	n, m := newVMACTest(t)
	ctx := context.Background()
	n.ip(t, "link", "add", "vrrp.7", "type", "bridge")
	n.ip(t, "link", "add", "link", "vmacbase0", "name", "vrrp.8", "address", "02:00:00:00:00:08", "type", "macvlan", "mode", "private")
	n.ip(t, "link", "add", "link", "vmacbase0", "name", "vrrp.9", "address", "00:00:5e:00:01:09", "type", "macvlan", "mode", "bridge")
	for _, name := range []string{"vrrp.7", "vrrp.8", "vrrp.9"} {
		before := n.ip(t, "-d", "link", "show", name)
		vrid := name[len(name)-1] - '0'
		_, err := m.Ensure(ctx, VMACSpec{Name: name, Base: "vmacbase0", HardwareAddr: VirtualMAC(vrid, false), IPv4Sysctls: true})
		if !errors.Is(err, ErrVMACConflict) {
			t.Errorf("Ensure over foreign %s: err %v, want ErrVMACConflict", name, err)
		}
		if err := m.Remove(ctx, name); err != nil {
			t.Errorf("Remove(%s) of a foreign interface: %v", name, err)
		}
		if after := n.ip(t, "-d", "link", "show", name); after != before {
			t.Errorf("foreign %s changed:\nbefore %s\nafter  %s", name, before, after)
		}
	}
	if got := n.sysctl(t, "ipv4", "vmacbase0", "arp_ignore"); got == "1" {
		t.Error("base sysctls changed by a refused Ensure")
	}
	if got := m.Owned(); len(got) != 0 {
		t.Errorf("Owned after refusals = %v", got)
	}
	// A missing base.
	if _, err := m.Ensure(ctx, VMACSpec{Name: "vrrp.1", Base: "vmacnone", HardwareAddr: VirtualMAC(1, false)}); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("Ensure on a missing base: %v, want ErrLinkNotFound", err)
	}
}

func TestVMACAdoptAndBaseGone(t *testing.T) {
	n, m := newVMACTest(t)
	ctx := context.Background()
	// What a previous vrrpd left: a matching private macvlan. It is adopted.
	n.ip(t, "link", "add", "link", "vmacbase0", "name", "vrrp.5", "address", "00:00:5e:00:01:05", "type", "macvlan", "mode", "private")
	if _, err := m.Ensure(ctx, VMACSpec{Name: "vrrp.5", Base: "vmacbase0", HardwareAddr: VirtualMAC(5, false)}); err != nil {
		t.Fatalf("Ensure over a matching macvlan: %v", err)
	}
	if got := m.Owned(); len(got) != 1 {
		t.Fatalf("Owned = %v, want the adopted vrrp.5", got)
	}
	// The base goes, and the kernel takes the macvlan with it.
	n.ip(t, "link", "del", "vmacbase0")
	if err := m.Remove(ctx, "vrrp.5"); err != nil {
		t.Errorf("Remove after the base went: %v", err)
	}
	if got := m.Owned(); len(got) != 0 {
		t.Errorf("Owned = %v after Remove", got)
	}
}

func TestVMACSpecCheck(t *testing.T) {
	mac := VirtualMAC(1, false)
	for _, s := range []VMACSpec{
		{Base: "eth0", HardwareAddr: mac},
		{Name: "vrrp.1", HardwareAddr: mac},
		{Name: "eth0", Base: "eth0", HardwareAddr: mac},
		{Name: "vrrp.1", Base: "eth0"},
		{Name: "averyveryverylongname", Base: "eth0", HardwareAddr: mac},
		{Name: "vrrp.1", Base: "eth0", HardwareAddr: mac, LinkLocal: netip.MustParseAddr("2001:db8::1")},
	} {
		if err := s.check(); err == nil {
			t.Errorf("check(%+v) = nil, want an error", s)
		}
	}
}
