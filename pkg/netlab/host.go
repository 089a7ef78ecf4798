package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Host is a network namespace with lo up and one interface, "eth0", on a
// segment. Create it with [Lab.Host].
type Host struct {
	lab   *Lab
	name  string
	netns string
	seg   *Segment
	iface string
	mac   net.HardwareAddr
	v4    netip.Addr
	v6    netip.Addr
	ll    netip.Addr
}

// Host creates namespace "<prefix>-<name>" with lo up and a veth "eth0"
// whose peer is a port of seg's bridge. eth0 gets the MAC
// 02:76:6b:00:<segment>:<host>, the segment's next free IPv4 address (/24)
// and IPv6 address (/64, nodad), and its EUI-64 link-local address; IPv6 DAD
// is off, so all are usable at once. name is 1-12 of [a-z0-9-], starting with
// a letter, unique among the lab's segments and hosts.
func (l *Lab) Host(name string, seg *Segment) *Host {
	l.t.Helper()
	if seg == nil || seg.lab != l {
		l.t.Fatalf("netlab: host %s: segment is nil or of another lab", name)
	}
	l.claim("host", name)
	l.mu.Lock()
	seg.hosts++
	i := seg.hosts
	l.mu.Unlock()
	if i > maxHosts {
		l.t.Fatalf("netlab: host %s: segment %s already has %d hosts", name, seg.name, maxHosts)
	}
	h := &Host{
		lab:   l,
		name:  name,
		netns: l.prefix + "-" + name,
		seg:   seg,
		iface: "eth0",
		mac:   net.HardwareAddr{0x02, 0x76, 0x6b, 0x00, byte(seg.n), byte(i)},
		v4:    seg.addr4(i),
		v6:    seg.addr6(i),
	}
	if err := h.setup(); err != nil {
		l.t.Fatalf("netlab: host %s: %v", name, err)
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	return h
}

// setup creates the namespace and wires eth0 into the segment.
func (h *Host) setup() error {
	l := h.lab
	if err := l.addNetns(h.netns); err != nil {
		return err
	}
	if err := inNetns(h.netns, func() error {
		return writeSysctls(map[string]string{
			"net/ipv6/conf/all/accept_dad":     "0",
			"net/ipv6/conf/default/accept_dad": "0",
		})
	}); err != nil {
		return err
	}
	port := "p-" + h.name
	if _, err := runCmd(context.Background(), nil, "ip", "-n", h.netns, "link", "add", h.iface,
		"address", h.mac.String(), "type", "veth", "peer", "name", port, "netns", l.prefix); err != nil {
		return err
	}
	if err := ipBatch(l.prefix,
		fmt.Sprintf("link set %s master %s", port, h.seg.bridge),
		fmt.Sprintf("link set %s up", port),
	); err != nil {
		return err
	}
	if err := ipBatch(h.netns,
		"link set lo up",
		fmt.Sprintf("addr add %s/24 dev %s", h.v4, h.iface),
		fmt.Sprintf("addr add %s/64 dev %s nodad", h.v6, h.iface),
		fmt.Sprintf("link set %s up", h.iface),
	); err != nil {
		return err
	}
	return h.waitReady(port, 5*time.Second)
}

// waitReady waits until eth0 is up with carrier and has its link-local
// address, and the bridge port is forwarding. Carrier changes reach the
// bridge and IPv6 through the kernel's linkwatch work, which can lag by a
// second or more on a busy machine: traffic sent before then is lost.
func (h *Host) waitReady(port string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		state, err := h.lab.portState(port)
		if err != nil {
			return err
		}
		up, err := h.operUp()
		if err != nil {
			return err
		}
		addrs, err := h.Addrs(h.iface)
		if err != nil {
			return err
		}
		for _, p := range addrs {
			if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
				h.ll = p.Addr()
			}
		}
		if state == "forwarding" && up && h.ll.IsValid() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: bridge port %s is %q, %s up: %v, link-local address: %v",
				timeout, port, state, h.iface, up, h.ll)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// operUp reports whether eth0's operational state is UP (it has carrier).
func (h *Host) operUp() (bool, error) {
	out, err := h.ip("-j", "link", "show", "dev", h.iface)
	if err != nil {
		return false, err
	}
	var links []struct {
		Operstate string `json:"operstate"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return false, fmt.Errorf("netlab: host %s: ip -j link show dev %s: %v\n%s", h.name, h.iface, err, out)
	}
	return links[0].Operstate == "UP", nil
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Netns returns the host's namespace name, for `ip netns exec`, `ip -n` or
// netns.GetFromName.
func (h *Host) Netns() string { return h.netns }

// Segment returns the segment eth0 is on.
func (h *Host) Segment() *Segment { return h.seg }

// Iface returns the name of the host's interface on its segment, "eth0".
func (h *Host) Iface() string { return h.iface }

// MAC returns eth0's MAC address.
func (h *Host) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), h.mac...) }

// IPv4 returns eth0's IPv4 address (a /24).
func (h *Host) IPv4() netip.Addr { return h.v4 }

// IPv6 returns eth0's global IPv6 address (a /64).
func (h *Host) IPv6() netip.Addr { return h.v6 }

// LinkLocal returns eth0's IPv6 link-local address, without a zone.
func (h *Host) LinkLocal() netip.Addr { return h.ll }

// String returns the host's name.
func (h *Host) String() string { return h.name }

// Run runs a command in the host's namespace (`ip netns exec`) and returns
// its stdout. The command runs in its own process group, which is killed
// when ctx is done. If it fails, the error names the host and the command
// and carries its stdout and stderr; if it succeeds, stderr is dropped.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := command(ctx, "ip", append([]string{"netns", "exec", h.netns, name}, args...)...)
	out, err := runSplit(cmd, name, args)
	if err != nil {
		return out, fmt.Errorf("netlab: host %s: %w", h.name, err)
	}
	return out, nil
}

// ip runs `ip -n <netns> args...` with the lab's command timeout.
func (h *Host) ip(args ...string) ([]byte, error) {
	out, err := runCmd(context.Background(), nil, "ip", append([]string{"-n", h.netns}, args...)...)
	if err != nil {
		return out, fmt.Errorf("netlab: host %s: %w", h.name, err)
	}
	return out, nil
}

// Addrs returns the addresses on iface in the host's namespace, each with
// its prefix length (not masked), as `ip addr show` lists them.
func (h *Host) Addrs(iface string) ([]netip.Prefix, error) {
	out, err := h.ip("-j", "addr", "show", "dev", iface)
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netlab: host %s: ip -j addr show dev %s: %w\n%s", h.name, iface, err, out)
	}
	var addrs []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("netlab: host %s: ip addr show dev %s: address %q: %w", h.name, iface, a.Local, err)
			}
			addrs = append(addrs, netip.PrefixFrom(ip, a.Prefixlen))
		}
	}
	return addrs, nil
}

// HasAddr reports whether addr is on iface in the host's namespace.
func (h *Host) HasAddr(iface string, addr netip.Addr) (bool, error) {
	addrs, err := h.Addrs(iface)
	if err != nil {
		return false, err
	}
	for _, p := range addrs {
		if p.Addr() == addr.WithZone("") {
			return true, nil
		}
	}
	return false, nil
}

// Neighbor returns the link-layer address the host's neighbour table (ARP or
// NDP, `ip neigh show`) holds for addr. It fails if there is no entry or the
// entry has no address (INCOMPLETE, FAILED).
func (h *Host) Neighbor(addr netip.Addr) (net.HardwareAddr, error) {
	out, err := h.ip("-j", "neigh", "show", "to", addr.WithZone("").String())
	if err != nil {
		return nil, err
	}
	var entries []struct {
		Dev    string   `json:"dev"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		return nil, fmt.Errorf("netlab: host %s: ip -j neigh show to %s: %w\n%s", h.name, addr, err, out)
	}
	for _, e := range entries {
		if addr.Zone() != "" && e.Dev != addr.Zone() {
			continue
		}
		if e.LLAddr == "" {
			return nil, fmt.Errorf("netlab: host %s: neighbour %s on %s has no link-layer address (state %s)",
				h.name, addr, e.Dev, strings.Join(e.State, ","))
		}
		mac, err := net.ParseMAC(e.LLAddr)
		if err != nil {
			return nil, fmt.Errorf("netlab: host %s: neighbour %s: lladdr %q: %w", h.name, addr, e.LLAddr, err)
		}
		return mac, nil
	}
	return nil, fmt.Errorf("netlab: host %s: no neighbour entry for %s", h.name, addr)
}

// InNetns runs fn on an OS thread switched into the host's namespace and
// switches back before returning fn's error. Sockets fn opens belong to the
// host's namespace for their whole life, whichever thread uses them later.
// Only fn's own thread is in the namespace: goroutines it starts are not.
func (h *Host) InNetns(fn func() error) error {
	if err := inNetns(h.netns, fn); err != nil {
		return fmt.Errorf("netlab: host %s: %w", h.name, err)
	}
	return nil
}

// shellJoin formats a command line for messages, quoting arguments that need
// it.
func shellJoin(name string, args []string) string {
	parts := make([]string, 0, 1+len(args))
	for _, a := range append([]string{name}, args...) {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$|&;<>()*?[]{}#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
