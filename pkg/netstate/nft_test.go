package netstate

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Pure logic: normalization and the set keys, without root.

func TestBlockedAddrNormalize(t *testing.T) {
	ll := netip.MustParseAddr("fe80::100")
	tests := []struct {
		name    string
		in      BlockedAddr
		want    BlockedAddr
		wantErr string
	}{
		{"ipv4 drops iface", BlockedAddr{Addr: netip.MustParseAddr("192.0.2.1"), Iface: "eth0", ByName: true},
			BlockedAddr{Addr: netip.MustParseAddr("192.0.2.1")}, ""},
		{"mapped is ipv4", BlockedAddr{Addr: netip.MustParseAddr("::ffff:192.0.2.1")},
			BlockedAddr{Addr: netip.MustParseAddr("192.0.2.1")}, ""},
		{"global ipv6 drops iface", BlockedAddr{Addr: netip.MustParseAddr("2001:db8::1"), Iface: "eth0"},
			BlockedAddr{Addr: netip.MustParseAddr("2001:db8::1")}, ""},
		{"link-local keeps iface", BlockedAddr{Addr: ll, Iface: "eth0", ByName: true},
			BlockedAddr{Addr: ll, Iface: "eth0", ByName: true}, ""},
		{"zone is iface", BlockedAddr{Addr: netip.MustParseAddr("fe80::100%eth1")},
			BlockedAddr{Addr: ll, Iface: "eth1"}, ""},
		{"iface wins over zone", BlockedAddr{Addr: netip.MustParseAddr("fe80::100%eth1"), Iface: "eth2"},
			BlockedAddr{Addr: ll, Iface: "eth2"}, ""},
		{"link-local without iface", BlockedAddr{Addr: ll}, BlockedAddr{}, "needs its interface"},
		{"iface too long", BlockedAddr{Addr: ll, Iface: "0123456789abcdef"}, BlockedAddr{}, "longer than 15"},
		{"invalid", BlockedAddr{}, BlockedAddr{}, "invalid address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalize(%+v) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalize(%+v) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestElemFor(t *testing.T) {
	ll := netip.MustParseAddr("fe80::100")
	ll16 := ll.As16()
	idx := make([]byte, 4)
	binary.NativeEndian.PutUint32(idx, 7)
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, "eth0")
	tests := []struct {
		name string
		b    BlockedAddr
		want nftElem
	}{
		{"ipv4", BlockedAddr{Addr: netip.MustParseAddr("192.0.2.1")},
			nftElem{set: "vips", key: "\xc0\x00\x02\x01"}},
		{"ipv6", BlockedAddr{Addr: netip.MustParseAddr("2001:db8::1")},
			nftElem{ipv6: true, set: "vips", key: "\x20\x01\x0d\xb8" + strings.Repeat("\x00", 11) + "\x01"}},
		{"link-local by index", BlockedAddr{Addr: ll, Iface: "eth0"},
			nftElem{ipv6: true, set: "vips_link_local", key: string(ll16[:]) + string(idx)}},
		{"link-local by name", BlockedAddr{Addr: ll, Iface: "eth0", ByName: true},
			nftElem{ipv6: true, set: "vips_link_local_name", key: string(ll16[:]) + string(name)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := elemFor(tt.b, 7); got != tt.want {
				t.Fatalf("elemFor(%+v) = %#v, want %#v", tt.b, got, tt.want)
			}
		})
	}
}

// In namespaces: a host running NoAccept and a peer, joined by a veth.

type nftLab struct {
	host, peer *testNS
	hostIf     string // the host's end of the veth
	peerIf     string
	port4      int // TCP listeners on the host, on all addresses
	port6      int
}

var (
	nftVIP4     = netip.MustParseAddr("192.0.2.100")
	nftVIP6     = netip.MustParseAddr("2001:db8::100")
	nftVIPLL    = netip.MustParseAddr("fe80::100")
	nftPrimary4 = netip.MustParseAddr("192.0.2.1")
	nftPrimary6 = netip.MustParseAddr("2001:db8::1")
)

func newNFTLab(t *testing.T) *nftLab {
	t.Helper()
	l := &nftLab{host: newTestNS(t), peer: newTestNS(t), hostIf: "nfth0", peerIf: "nftp0"}
	for _, n := range []*testNS{l.host, l.peer} {
		// No DAD: addresses, link-local ones included, are usable at once.
		out, err := exec.Command("ip", "netns", "exec", n.name, "sysctl", "-qw",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0").CombinedOutput()
		if err != nil {
			t.Fatalf("sysctl in %s: %v: %s", n.name, err, out)
		}
	}
	l.host.ip(t, "link", "add", l.hostIf, "type", "veth", "peer", "name", l.peerIf, "netns", l.peer.name)
	l.host.ip(t, "link", "set", l.hostIf, "up")
	l.peer.ip(t, "link", "set", l.peerIf, "up")
	for _, a := range []string{"192.0.2.1/24", "192.0.2.100/32"} {
		l.host.ip(t, "address", "add", a, "dev", l.hostIf)
	}
	for _, a := range []string{"2001:db8::1/64", "2001:db8::100/128", "fe80::100/64"} {
		l.host.ip(t, "address", "add", a, "dev", l.hostIf, "nodad")
	}
	l.peer.ip(t, "address", "add", "192.0.2.2/24", "dev", l.peerIf)
	l.peer.ip(t, "address", "add", "2001:db8::2/64", "dev", l.peerIf, "nodad")

	// Two listeners: Go makes a "[::]" listener IPv4-only when its probe
	// (done once, in whatever namespace) finds no IPv6.
	for _, nw := range []string{"tcp4", "tcp6"} {
		var ln net.Listener
		err := inNetns(l.host.ns, func() error {
			var err error
			ln, err = net.Listen(nw, ":0")
			return err
		})
		if err != nil {
			t.Fatalf("listen %s in %s: %v", nw, l.host.name, err)
		}
		if nw == "tcp4" {
			l.port4 = ln.Addr().(*net.TCPAddr).Port
		} else {
			l.port6 = ln.Addr().(*net.TCPAddr).Port
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); wg.Wait() })
	}
	return l
}

// dial connects from the peer to addr on the host's listener.
func (l *nftLab) dial(addr netip.Addr) error {
	if addr.Is6() && addr.IsLinkLocalUnicast() {
		addr = addr.WithZone(l.peerIf)
	}
	port := l.port4
	if addr.Is6() {
		port = l.port6
	}
	return inNetns(l.peer.ns, func() error {
		d := net.Dialer{Timeout: 300 * time.Millisecond}
		c, err := d.Dial("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// sendFromHost sends one UDP datagram from the host, bound to src, to dst
// (nothing needs to listen). A packet dropped on output fails the send
// with EPERM.
func (l *nftLab) sendFromHost(src, dst netip.Addr) error {
	return inNetns(l.host.ns, func() error {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(dst, 9))
		return err
	})
}

// mustReach polls until a connection to addr succeeds.
func (l *nftLab) mustReach(t *testing.T, addr netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := l.dial(addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect from peer to %s: %v; want a connection", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustNotReach checks that connections to addr time out (the SYN is
// dropped), not that they are refused or unroutable.
func (l *nftLab) mustNotReach(t *testing.T, addr netip.Addr) {
	t.Helper()
	err := l.dial(addr)
	if err == nil {
		t.Fatalf("connect from peer to %s succeeded; want it dropped", addr)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connect from peer to %s: %v; want a timeout (dropped)", addr, err)
	}
}

// nft runs the nft binary in the host namespace, or skips.
func (l *nftLab) nft(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipping ruleset check: needs nft(8) (apt-get install nftables)")
	}
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.host.name, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s in %s: %v: %s", strings.Join(args, " "), l.host.name, err, out)
	}
	return string(out)
}

func (l *nftLab) newNoAccept(t *testing.T, opts NoAcceptOptions) *NoAccept {
	t.Helper()
	opts.Netns = l.host.ns
	if opts.Log == nil {
		opts.Log, _ = testLogger(t)
	}
	n, err := NewNoAccept(context.Background(), opts)
	if errors.Is(err, unix.EPROTONOSUPPORT) {
		t.Skipf("skipping: the kernel has no nf_tables: %v", err)
	}
	if err != nil {
		t.Fatalf("NewNoAccept: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

func TestNoAcceptBlocksAndUnblocks(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	all := []netip.Addr{nftVIP4, nftVIP6, nftVIPLL, nftPrimary4, nftPrimary6}
	for _, a := range all {
		l.mustReach(t, a)
	}

	blocked := []BlockedAddr{{Addr: nftVIP4}, {Addr: nftVIP6}, {Addr: nftVIPLL, Iface: l.hostIf}}
	if err := n.Block(ctx, blocked...); err != nil {
		t.Fatalf("Block: %v", err)
	}
	for _, a := range []netip.Addr{nftVIP4, nftVIP6, nftVIPLL} {
		l.mustNotReach(t, a)
	}
	// The host's own addresses stay reachable: only VIPs are dropped.
	l.mustReach(t, nftPrimary4)
	l.mustReach(t, nftPrimary6)
	// Nor can the host send from a VIP ("out" chain, saddr @vips drop).
	for _, p := range [][2]netip.Addr{{nftVIP4, netip.MustParseAddr("192.0.2.2")}, {nftVIP6, netip.MustParseAddr("2001:db8::2")}} {
		if err := l.sendFromHost(p[0], p[1]); !errors.Is(err, unix.EPERM) {
			t.Errorf("host sending from blocked %s: %v; want EPERM (dropped on output)", p[0], err)
		}
	}
	if err := l.sendFromHost(nftPrimary4, netip.MustParseAddr("192.0.2.2")); err != nil {
		t.Errorf("host sending from its primary address: %v", err)
	}
	if got := n.Blocked(); !slices.Equal(got, []BlockedAddr{{Addr: nftVIP4}, {Addr: nftVIP6}, {Addr: nftVIPLL, Iface: l.hostIf}}) {
		t.Errorf("Blocked() = %v", got)
	}

	// Neighbor discovery for a blocked IPv6 VIP still works (the NA comes
	// from the VIP): the peer learns its MAC although TCP is dropped.
	l.peer.ip(t, "neigh", "flush", "dev", l.peerIf)
	l.mustNotReach(t, nftVIP6)
	neigh := l.peer.ip(t, "-6", "neigh", "show", nftVIP6.String(), "dev", l.peerIf)
	if !strings.Contains(neigh, "lladdr") {
		t.Errorf("peer has no neighbor entry with a MAC address for blocked %s: %q; ND must pass", nftVIP6, neigh)
	}

	if err := n.Unblock(ctx, blocked[0], blocked[2]); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	l.mustReach(t, nftVIP4)
	l.mustReach(t, nftVIPLL)
	l.mustNotReach(t, nftVIP6)
	if err := n.Unblock(ctx, blocked[1]); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	for _, a := range all {
		l.mustReach(t, a)
	}
	if got := n.Blocked(); len(got) != 0 {
		t.Errorf("Blocked() after Unblock = %v, want none", got)
	}
}

func TestNoAcceptLinkLocalByName(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	b := BlockedAddr{Addr: nftVIPLL, Iface: l.hostIf, ByName: true}
	if err := n.Block(ctx, b); err != nil {
		t.Fatalf("Block: %v", err)
	}
	l.mustNotReach(t, nftVIPLL)
	l.mustReach(t, nftVIP6)
	out := l.nft(t, "list", "set", "ip6", DefaultNFTTable, "vips_link_local_name")
	if !regexp.MustCompile(`type ipv6_addr \. ifname`).MatchString(out) ||
		!strings.Contains(out, `fe80::100 . "`+l.hostIf+`"`) {
		t.Errorf("set vips_link_local_name:\n%s\nwant type ipv6_addr . ifname with fe80::100 . %q", out, l.hostIf)
	}
	if err := n.Unblock(ctx, b); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	l.mustReach(t, nftVIPLL)
}

// TestNoAcceptVRRPPasses checks what keepalived relies on: adverts, sent
// from the interface's own address to the VRRP group, are not dropped
// while the VIPs are blocked.
func TestNoAcceptVRRPPasses(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	if err := n.Block(context.Background(), BlockedAddr{Addr: nftVIP4}, BlockedAddr{Addr: nftVIP6}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	hostIfi, peerIfi := l.ifi(t, l.host, l.hostIf), l.ifi(t, l.peer, l.peerIf)
	advert := []byte{0x31, 51, 100, 1, 0, 100, 0, 0} // shape only; nothing parses it

	// IPv4: 224.0.0.18, IP protocol 112 (RFC 5798 §5.1.1.2, §5.2.4).
	var rc4 *ipv4.PacketConn
	err := inNetns(l.host.ns, func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		rc4 = ipv4.NewPacketConn(c)
		return rc4.JoinGroup(hostIfi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)})
	})
	if err != nil {
		t.Fatalf("VRRP socket on host: %v", err)
	}
	defer rc4.Close()
	err = inNetns(l.peer.ns, func() error {
		c, err := net.ListenPacket("ip4:112", "192.0.2.2")
		if err != nil {
			return err
		}
		defer c.Close()
		p := ipv4.NewPacketConn(c)
		if err := p.SetMulticastInterface(peerIfi); err != nil {
			return err
		}
		if err := p.SetMulticastTTL(255); err != nil {
			return err
		}
		_, err = p.WriteTo(advert, nil, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)})
		return err
	})
	if err != nil {
		t.Fatalf("send IPv4 advert from peer: %v", err)
	}
	rc4.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	nr, _, src, err := rc4.ReadFrom(buf)
	if err != nil {
		t.Fatalf("host did not receive the IPv4 advert while VIPs are blocked: %v", err)
	}
	if got := src.String(); got != "192.0.2.2" || nr != len(advert) {
		t.Errorf("IPv4 advert from %s, %d bytes; want from 192.0.2.2, %d bytes", got, nr, len(advert))
	}

	// IPv6: ff02::12, from the peer's link-local address.
	var rc6 *ipv6.PacketConn
	err = inNetns(l.host.ns, func() error {
		c, err := net.ListenPacket("ip6:112", "::")
		if err != nil {
			return err
		}
		rc6 = ipv6.NewPacketConn(c)
		return rc6.JoinGroup(hostIfi, &net.IPAddr{IP: net.ParseIP("ff02::12")})
	})
	if err != nil {
		t.Fatalf("IPv6 VRRP socket on host: %v", err)
	}
	defer rc6.Close()
	err = inNetns(l.peer.ns, func() error {
		c, err := net.ListenPacket("ip6:112", "::")
		if err != nil {
			return err
		}
		defer c.Close()
		p := ipv6.NewPacketConn(c)
		if err := p.SetMulticastInterface(peerIfi); err != nil {
			return err
		}
		if err := p.SetMulticastHopLimit(255); err != nil {
			return err
		}
		_, err = p.WriteTo(advert, nil, &net.IPAddr{IP: net.ParseIP("ff02::12"), Zone: l.peerIf})
		return err
	})
	if err != nil {
		t.Fatalf("send IPv6 advert from peer: %v", err)
	}
	rc6.SetReadDeadline(time.Now().Add(3 * time.Second))
	nr, _, src, err = rc6.ReadFrom(buf)
	if err != nil {
		t.Fatalf("host did not receive the IPv6 advert while VIPs are blocked: %v", err)
	}
	// The kernel picks the peer's global address as source here; a VRRP
	// speaker would bind its link-local one (RFC 5798 §5.1.2.1). Neither is
	// a VIP, which is what matters.
	if got := strings.Split(src.String(), "%")[0]; (got != "2001:db8::2" && !strings.HasPrefix(got, "fe80:")) || nr != len(advert) {
		t.Errorf("IPv6 advert from %s, %d bytes; want from the peer, %d bytes", src, nr, len(advert))
	}
}

func (l *nftLab) ifi(t *testing.T, n *testNS, name string) *net.Interface {
	t.Helper()
	link, err := n.h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s in %s: %v", name, n.name, err)
	}
	return &net.Interface{Index: link.Attrs().Index, Name: name}
}

// TestNoAcceptRuleset checks the tables against keepalived 2.2.7's, as
// "nft list ruleset" shows them for keepalived itself (measured: keepalived
// -n in a namespace with nftables, nftables_counters and no_accept).
func TestNoAcceptRuleset(t *testing.T) {
	l := newNFTLab(t)
	prio := int32(-5)
	n := l.newNoAccept(t, NoAcceptOptions{Priority: &prio, Counters: true})
	ctx := context.Background()
	if out := l.nft(t, "list", "ruleset"); strings.Contains(out, "table") {
		t.Fatalf("tables before any Block:\n%s", out)
	}
	if err := n.Block(ctx, BlockedAddr{Addr: nftVIP4}, BlockedAddr{Addr: netip.MustParseAddr("198.51.100.7")}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	if out := l.nft(t, "list", "ruleset"); strings.Contains(out, "table ip6") {
		t.Errorf("an ip6 table exists with only IPv4 addresses blocked:\n%s", out)
	}
	if err := n.Block(ctx, BlockedAddr{Addr: nftVIP6}, BlockedAddr{Addr: nftVIPLL, Iface: l.hostIf}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	l.mustNotReach(t, nftVIP4) // for the counter below
	got := l.nft(t, "list", "ruleset")
	want := []string{
		`table ip vrrpkit {`,
		`set vips {`, `type ipv4_addr`, `elements = { 192.0.2.100, 198.51.100.7 }`,
		`chain in {`, `type filter hook input priority filter - 5; policy accept;`,
		`ip daddr @vips counter packets [1-9][0-9]* bytes [0-9]+ drop comment "` + nftMarker + `"`,
		`chain out {`, `type filter hook output priority filter - 5; policy accept;`, `ip saddr @vips counter packets [0-9]+ bytes [0-9]+ drop`,
		`table ip6 vrrpkit {`,
		`set vips {`, `type ipv6_addr`, `elements = { 2001:db8::100 }`,
		`set neighbor-discovery {`, `type icmpv6_type`, `flags constant`, `elements = { nd-neighbor-solicit,`, `nd-neighbor-advert }`,
		`set vips_link_local {`, `type ipv6_addr \. iface_index`, `elements = { fe80::100 \. "` + l.hostIf + `" }`,
		`chain in {`, `type filter hook input priority filter - 5; policy accept;`,
		`icmpv6 type @neighbor-discovery counter packets [0-9]+ bytes [0-9]+ accept`,
		`ip6 daddr fe80::/10 counter packets [0-9]+ bytes [0-9]+ goto in_link_local`,
		`ip6 daddr @vips counter packets [0-9]+ bytes [0-9]+ drop comment "` + nftMarker + `"`,
		`chain out {`, `type filter hook output priority filter - 5; policy accept;`,
		`icmpv6 type @neighbor-discovery counter packets [0-9]+ bytes [0-9]+ accept`,
		`ip6 saddr fe80::/10 counter packets [0-9]+ bytes [0-9]+ goto out_link_local`,
		`ip6 saddr @vips counter packets [0-9]+ bytes [0-9]+ drop`,
		`chain in_link_local {`, `ip6 daddr \. iif @vips_link_local counter packets [0-9]+ bytes [0-9]+ drop`,
		`chain out_link_local {`, `ip6 saddr \. oif @vips_link_local counter packets [0-9]+ bytes [0-9]+ drop`,
	}
	// In this order, each on a line of its own (the set comment and
	// elements are matched as lines too).
	lines := strings.Split(got, "\n")
	i := 0
	for _, w := range want {
		// Entries with [ or \ are regular expressions, the others text.
		pat := regexp.QuoteMeta(w)
		if strings.ContainsAny(w, `[\`) {
			pat = w
		}
		re := regexp.MustCompile(`^\s*` + pat + `\s*$`)
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("ruleset has no line %q after the earlier ones:\n%s", w, got)
		}
		i++
	}
}

func TestNoAcceptIdempotentAndCloseLeavesNothing(t *testing.T) {
	l := newNFTLab(t)
	l.nft(t, "add", "table", "inet", "other") // someone else's; must survive
	l.nft(t, "add", "table", "ip", "keepalived")
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	b4 := BlockedAddr{Addr: nftVIP4}
	for range 2 {
		if err := n.Block(ctx, b4, b4); err != nil {
			t.Fatalf("Block: %v", err)
		}
	}
	if out := l.nft(t, "list", "set", "ip", "vrrpkit", "vips"); !strings.Contains(out, "elements = { 192.0.2.100 }") {
		t.Fatalf("set vips after double Block:\n%s", out)
	}
	// One Unblock undoes any number of Blocks; Unblock of what was never
	// blocked does nothing.
	if err := n.Unblock(ctx, BlockedAddr{Addr: nftVIP6}, b4); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	l.mustReach(t, nftVIP4)
	if err := n.Unblock(ctx, b4); err != nil {
		t.Fatalf("second Unblock: %v", err)
	}
	if err := n.Block(ctx, b4, BlockedAddr{Addr: nftVIP6}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	out := l.nft(t, "list", "tables")
	if strings.Contains(out, "vrrpkit") {
		t.Errorf("tables after Close:\n%s", out)
	}
	for _, keep := range []string{"table inet other", "table ip keepalived"} {
		if !strings.Contains(out, keep) {
			t.Errorf("%s was removed by Close:\n%s", keep, out)
		}
	}
	l.mustReach(t, nftVIP4)
	l.mustReach(t, nftVIP6)
	if err := n.Block(ctx, b4); err == nil {
		t.Errorf("Block after Close succeeded")
	}
}

func TestNoAcceptReplacesStaleTable(t *testing.T) {
	l := newNFTLab(t)
	ctx := context.Background()
	// A crashed run: its tables stay, its drops with them.
	crashed := l.newNoAccept(t, NoAcceptOptions{})
	if err := crashed.Block(ctx, BlockedAddr{Addr: nftVIP4}, BlockedAddr{Addr: nftVIP6}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	crashed.mu.Lock()
	crashed.fam = [2]nftFamily{} // forget the tables, as a dead process would
	crashed.mu.Unlock()

	n := l.newNoAccept(t, NoAcceptOptions{})
	l.mustReach(t, nftVIP4)
	l.mustReach(t, nftVIP6)
	if out := l.nft(t, "list", "tables"); strings.Contains(out, "vrrpkit") {
		t.Errorf("stale tables still there:\n%s", out)
	}
	if err := n.Block(ctx, BlockedAddr{Addr: nftVIP4}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	l.mustNotReach(t, nftVIP4)
}

func TestNoAcceptForeignTableUntouched(t *testing.T) {
	l := newNFTLab(t)
	l.nft(t, "add", "table", "ip6", "vrrpkit")
	l.nft(t, "add", "set", "ip6", "vrrpkit", "vips", "{ type ipv6_addr; }")
	l.nft(t, "add", "chain", "ip6", "vrrpkit", "in", "{ type filter hook input priority -1; }")
	l.nft(t, "add", "rule", "ip6", "vrrpkit", "in", `ip6 daddr @vips drop comment "not vrrpkit"`)
	opts := NoAcceptOptions{Netns: l.host.ns}
	opts.Log, _ = testLogger(t)
	n, err := NewNoAccept(context.Background(), opts)
	if err == nil {
		n.Close()
		t.Fatal("NewNoAccept succeeded with a foreign table of the same name")
	}
	if !errors.Is(err, ErrNFTTableNotOurs) {
		t.Fatalf("NewNoAccept: %v; want ErrNFTTableNotOurs", err)
	}
	if out := l.nft(t, "list", "tables"); !strings.Contains(out, "table ip6 vrrpkit") {
		t.Errorf("foreign table removed:\n%s", out)
	}
	// Another name works beside it.
	opts.Table = "vrrpkit_b"
	n2 := l.newNoAccept(t, opts)
	if err := n2.Block(context.Background(), BlockedAddr{Addr: nftVIP6}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	l.mustNotReach(t, nftVIP6)
}

func TestNoAcceptBlockErrors(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	// All or nothing: a bad address fails the call and blocks nothing.
	err := n.Block(ctx, BlockedAddr{Addr: nftVIP4}, BlockedAddr{Addr: nftVIPLL, Iface: "nft-nosuch"})
	if !errors.Is(err, ErrLinkNotFound) {
		t.Fatalf("Block with a missing interface: %v; want ErrLinkNotFound", err)
	}
	if err := n.Block(ctx, BlockedAddr{Addr: nftVIPLL}); err == nil {
		t.Fatal("Block of a link-local address without interface succeeded")
	}
	l.mustReach(t, nftVIP4)
	if got := n.Blocked(); len(got) != 0 {
		t.Errorf("Blocked() = %v after failed Blocks", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := n.Block(cctx, BlockedAddr{Addr: nftVIP4}); !errors.Is(err, context.Canceled) {
		t.Errorf("Block with a canceled context: %v", err)
	}
}

// TestNoAcceptRecreatesDeletedTable: a firewall reload ("nft flush
// ruleset") deletes our tables; the next Block puts back everything that
// was blocked, and Unblock of elements already gone is not an error.
func TestNoAcceptRecreatesDeletedTable(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	b4, b6 := BlockedAddr{Addr: nftVIP4}, BlockedAddr{Addr: nftVIP6}
	if err := n.Block(ctx, b4); err != nil {
		t.Fatalf("Block: %v", err)
	}
	l.nft(t, "flush", "ruleset")
	l.mustReach(t, nftVIP4)
	other := BlockedAddr{Addr: netip.MustParseAddr("198.51.100.7")}
	if err := n.Block(ctx, other, b6); err != nil {
		t.Fatalf("Block after the table was deleted: %v", err)
	}
	l.mustNotReach(t, nftVIP4)
	l.mustNotReach(t, nftVIP6)
	if out := l.nft(t, "list", "set", "ip", "vrrpkit", "vips"); !strings.Contains(out, "elements = { 192.0.2.100, 198.51.100.7 }") {
		t.Errorf("set vips after recreation:\n%s", out)
	}

	// An element deleted behind our back: Unblock still succeeds and
	// removes the rest.
	l.nft(t, "delete", "element", "ip", "vrrpkit", "vips", "{ 192.0.2.100 }")
	if err := n.Unblock(ctx, b4, other); err != nil {
		t.Fatalf("Unblock with an element already gone: %v", err)
	}
	if out := l.nft(t, "list", "set", "ip", "vrrpkit", "vips"); strings.Contains(out, "elements") {
		t.Errorf("set vips after Unblock:\n%s", out)
	}
	if got := n.Blocked(); !slices.Equal(got, []BlockedAddr{b6}) {
		t.Errorf("Blocked() = %v, want [%v]", got, b6)
	}
}
