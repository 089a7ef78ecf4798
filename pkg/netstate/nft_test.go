package netstate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

func TestQuietElems(t *testing.T) {
	le := func(v uint32) string { // host byte order, as "meta oif" loads it
		b := make([]byte, 4)
		binary.NativeEndian.PutUint32(b, v)
		return string(b)
	}
	tests := []struct {
		name string
		v    QuietVMAC
		want []nftElem
	}{
		{"ipv4", QuietVMAC{Index: 7, BaseIndex: 2, IPv4: true},
			[]nftElem{{set: "vmac_map", key: le(7), val: le(2)}}},
		{"ipv6", QuietVMAC{Index: 7, BaseIndex: 2, IPv6: true},
			[]nftElem{{ipv6: true, set: "vmac_map", key: le(7), val: le(2)}, {ipv6: true, set: "vmac_set", key: le(7)}}},
		{"both", QuietVMAC{Index: 300, BaseIndex: 2, IPv4: true, IPv6: true},
			[]nftElem{{set: "vmac_map", key: le(300), val: le(2)},
				{ipv6: true, set: "vmac_map", key: le(300), val: le(2)}, {ipv6: true, set: "vmac_set", key: le(300)}}},
		{"neither", QuietVMAC{Index: 7, BaseIndex: 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quietElems(tt.v); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("quietElems(%+v) = %+v, want %+v", tt.v, got, tt.want)
			}
		})
	}
}

// peerCapture is tcpdump on the peer's end of the veth: what left the host.
type peerCapture struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (l *nftLab) capture(t *testing.T, filter string) *peerCapture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("skipping: needs tcpdump")
	}
	c := &peerCapture{done: make(chan struct{})}
	c.cmd = exec.Command("ip", "netns", "exec", l.peer.name, "tcpdump", "-i", l.peerIf, "-l", "-nn", "-e", "-v", "-U", filter)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			c.mu.Lock()
			c.out.WriteString(s.Text() + "\n")
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill() //nolint:errcheck // ends it; Wait reports nothing useful
		c.cmd.Wait()         //nolint:errcheck
		<-c.done
	})
	// tcpdump says "listening on" once its socket is bound.
	ready := make(chan error, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if strings.Contains(s.Text(), "listening on") {
				ready <- nil
				for s.Scan() {
				}
				return
			}
		}
		ready <- fmt.Errorf("tcpdump ended before listening")
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening within 10s")
	}
	return c
}

func (c *peerCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// waitFor polls until the capture has a frame matching re.
func (c *peerCapture) waitFor(t *testing.T, re *regexp.Regexp, why string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(c.frames(), re.MatchString) {
		if time.Now().After(deadline) {
			t.Fatalf("capture: no frame matching %q (%s) within 5s:\n%s", re, why, c.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// frames returns the capture's lines, a frame with its -v continuation
// lines joined into one.
func (c *peerCapture) frames() []string {
	var out []string
	for _, line := range strings.Split(c.text(), "\n") {
		switch {
		case line == "":
		case (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(out) > 0:
			out[len(out)-1] += " " + strings.TrimSpace(line)
		default:
			out = append(out, line)
		}
	}
	return out
}

// joinGroup joins group on ifi in the host namespace with a socket kept
// open until the test ends: the kernel sends a membership report at once.
func (l *nftLab) joinGroup(t *testing.T, ifi *net.Interface, group net.IP) {
	t.Helper()
	err := inNetns(l.host.ns, func() error {
		if group.To4() != nil {
			c, err := net.ListenPacket("ip4:112", "0.0.0.0")
			if err != nil {
				return err
			}
			t.Cleanup(func() { c.Close() })
			return ipv4.NewPacketConn(c).JoinGroup(ifi, &net.IPAddr{IP: group})
		}
		c, err := net.ListenPacket("ip6:112", "::")
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		return ipv6.NewPacketConn(c).JoinGroup(ifi, &net.IPAddr{IP: group})
	})
	if err != nil {
		t.Fatalf("join %v on %s: %v", group, ifi.Name, err)
	}
}

// sendRS sends a router solicitation out of ifi from the host; the error
// is what the send returned (EPERM when dropped on output).
func (l *nftLab) sendRS(ifi *net.Interface) error {
	return inNetns(l.host.ns, func() error {
		c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return err
		}
		defer c.Close()
		p := ipv6.NewPacketConn(c)
		if err := p.SetMulticastInterface(ifi); err != nil {
			return err
		}
		if err := p.SetMulticastHopLimit(255); err != nil { // RFC 4861 §4.1
			return err
		}
		rs := []byte{133, 0, 0, 0, 0, 0, 0, 0} // the kernel fills the checksum
		_, err = p.WriteTo(rs, nil, &net.IPAddr{IP: net.ParseIP("ff02::2"), Zone: ifi.Name})
		return err
	})
}

// TestNoAcceptQuietVMAC: a VMAC's IGMP and MLD reports leave by the base
// (with the base's MAC), its router solicitations not at all, and after
// UnquietVMAC they leave with the virtual MAC again; the ruleset is
// keepalived's (measured: keepalived 2.2.7 with two use_vmac instances,
// one IPv4, one IPv6).
func TestNoAcceptQuietVMAC(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	const vmacIf = "nftv0"
	vmac := "00:00:5e:00:01:33"
	l.host.ip(t, "link", "add", vmacIf, "link", l.hostIf, "address", vmac, "type", "macvlan", "mode", "private")
	l.host.ip(t, "link", "set", vmacIf, "addrgenmode", "none")
	l.host.ip(t, "link", "set", vmacIf, "up")
	vIfi, bIfi := l.ifi(t, l.host, vmacIf), l.ifi(t, l.host, l.hostIf)
	baseMAC, err := l.host.h.LinkByName(l.hostIf)
	if err != nil {
		t.Fatal(err)
	}
	bmac := baseMAC.Attrs().HardwareAddr.String()

	q := QuietVMAC{Index: vIfi.Index, BaseIndex: bIfi.Index, IPv4: true, IPv6: true}
	if err := n.QuietVMAC(ctx, q); err != nil {
		t.Fatalf("QuietVMAC: %v", err)
	}
	if err := n.QuietVMAC(ctx, q); err != nil { // again: nothing to do
		t.Fatalf("QuietVMAC again: %v", err)
	}
	if got := n.Quieted(); len(got) != 1 || got[0] != q {
		t.Errorf("Quieted() = %+v, want [%+v]", got, q)
	}
	// no_accept's rules come after, so that a link-local source is not
	// sent to out_link_local before the VMAC rules see it.
	if err := n.Block(ctx, BlockedAddr{Addr: nftVIP4}, BlockedAddr{Addr: nftVIP6}); err != nil {
		t.Fatalf("Block: %v", err)
	}
	// nft(8) names the map's value only when the set says its data is in
	// host byte order (NFTNL_UDATA_SET_DATABYTEORDER), which the nftables
	// library cannot say; else it shows the number as big-endian. That
	// the value is right shows below: the reports leave by the base.
	vmacElem := `re:elements = \{ "` + vmacIf + `" : ("` + l.hostIf + `"|` + fmt.Sprint(binary.BigEndian.Uint32(binary.NativeEndian.AppendUint32(nil, uint32(bIfi.Index)))) + `) \}`
	rs := l.nft(t, "list", "ruleset")
	checkLinesInOrder(t, rs, []string{
		`table ip vrrpkit {`,
		`map vmac_map {`, `type iface_index : iface_index`, vmacElem,
		`chain out {`, `type filter hook output priority filter - 1; policy accept;`,
		`ip protocol igmp meta oifkind "macvlan" dup to ip daddr device oif map @vmac_map drop`,
		`ip saddr @vips drop`,
		`table ip6 vrrpkit {`,
		`map vmac_map {`, `type iface_index : iface_index`, vmacElem,
		`set vmac_set {`, `type iface_index`, `elements = { "` + vmacIf + `" }`,
		`chain out {`,
		`icmpv6 type mld2-listener-report meta oifkind "macvlan" dup to ip6 daddr device oif map @vmac_map drop`,
		`icmpv6 type nd-router-solicit meta oifkind "macvlan" oif @vmac_set drop`,
		`icmpv6 type @neighbor-discovery accept`,
		`ip6 saddr fe80::/10 goto out_link_local`,
	})

	// "ip6", not "icmp6": MLD has a hop-by-hop header (RFC 3810 §5).
	capt := l.capture(t, "igmp or ip6")
	// A link-local on the VMAC, as vrrpd gives an IPv6 VMAC: its
	// solicited-node group is reported, from fe80::.
	l.host.ip(t, "address", "add", "fe80::5e:1/64", "dev", vmacIf, "nodad")
	l.joinGroup(t, vIfi, net.IPv4(224, 0, 0, 18))
	l.joinGroup(t, vIfi, net.ParseIP("ff02::12"))
	if err := l.sendRS(vIfi); err == nil {
		t.Errorf("router solicitation from %s: sent, want it dropped on output (EPERM)", vmacIf)
	}
	// The reports are moved to the base: they leave with the base's MAC.
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+bmac+` > .*igmp v3 report.*gaddr 224\.0\.0\.18`), "IGMP report for 224.0.0.18 by the base")
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+bmac+` > .*gaddr ff02::12`), "MLD report for ff02::12 by the base")
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+bmac+` > .*gaddr ff02::1:ff5e:1`), "MLD report for the VMAC link-local's solicited-node group by the base")
	// A router solicitation from the base still goes: the control.
	if err := l.sendRS(bIfi); err != nil {
		t.Fatalf("router solicitation from %s: %v", l.hostIf, err)
	}
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+bmac+` > .*router solicitation`), "router solicitation from the base")
	for _, f := range capt.frames() {
		if strings.Contains(f, " "+vmac+" > ") {
			t.Errorf("frame left with the virtual MAC while quieted: %s", f)
		}
	}
	t.Logf("capture while quieted:\n%s", capt.text())

	// Unquieted, the VMAC speaks with its own MAC again: the rules were
	// what kept it quiet.
	if err := n.UnquietVMAC(ctx, vIfi.Index); err != nil {
		t.Fatalf("UnquietVMAC: %v", err)
	}
	if err := n.UnquietVMAC(ctx, vIfi.Index); err != nil {
		t.Fatalf("UnquietVMAC again: %v", err)
	}
	if got := n.Quieted(); len(got) != 0 {
		t.Errorf("Quieted() after UnquietVMAC = %+v, want none", got)
	}
	if rs := l.nft(t, "list", "ruleset"); strings.Contains(rs, `"`+vmacIf+`"`) {
		t.Errorf("ruleset still names %s after UnquietVMAC:\n%s", vmacIf, rs)
	}
	l.joinGroup(t, vIfi, net.IPv4(224, 0, 0, 19))
	l.joinGroup(t, vIfi, net.ParseIP("ff02::13"))
	if err := l.sendRS(vIfi); err != nil {
		t.Errorf("router solicitation from %s after UnquietVMAC: %v", vmacIf, err)
	}
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+vmac+` > .*gaddr 224\.0\.0\.19`), "IGMP report from the VMAC once unquieted")
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+vmac+` > .*gaddr ff02::13`), "MLD report from the VMAC once unquieted")
	capt.waitFor(t, regexp.MustCompile(`^\S+ `+vmac+` > .*router solicitation`), "router solicitation from the VMAC once unquieted")
}

// TestNoAcceptQuietVMACErrorsAndReplace: invalid indexes are refused; a
// VMAC quieted again with another base (re-created on a reload) has its
// old entries replaced; Close removes it all.
func TestNoAcceptQuietVMACErrorsAndReplace(t *testing.T) {
	l := newNFTLab(t)
	n := l.newNoAccept(t, NoAcceptOptions{})
	ctx := context.Background()
	if err := n.QuietVMAC(ctx, QuietVMAC{Index: 0, BaseIndex: 2, IPv4: true}); err == nil {
		t.Errorf("QuietVMAC with index 0: no error")
	}
	l.host.ip(t, "link", "add", "nftd0", "type", "veth", "peer", "name", "nftd1")
	bIfi, dIfi := l.ifi(t, l.host, l.hostIf), l.ifi(t, l.host, "nftd0")
	if err := n.QuietVMAC(ctx, QuietVMAC{Index: 50, BaseIndex: bIfi.Index, IPv4: true}); err != nil {
		t.Fatalf("QuietVMAC: %v", err)
	}
	if err := n.QuietVMAC(ctx, QuietVMAC{Index: 50, BaseIndex: dIfi.Index, IPv6: true}); err != nil {
		t.Fatalf("QuietVMAC with another base: %v", err)
	}
	rs := l.nft(t, "list", "ruleset")
	ip4, ip6, _ := strings.Cut(rs, "table ip6 vrrpkit")
	if strings.Contains(ip4, "elements = { 50 ") {
		t.Errorf("the ip table still has the VMAC's entry after it was re-quieted for IPv6 only:\n%s", rs)
	}
	if !strings.Contains(ip6, "elements = { 50 : ") || !strings.Contains(ip6, "elements = { 50 }") {
		t.Errorf("the ip6 table lacks the VMAC's entries after it was re-quieted for IPv6:\n%s", rs)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if rs := l.nft(t, "list", "ruleset"); strings.Contains(rs, "table") {
		t.Errorf("tables after Close:\n%s", rs)
	}
	if err := n.QuietVMAC(ctx, QuietVMAC{Index: 50, BaseIndex: 2, IPv4: true}); err == nil {
		t.Errorf("QuietVMAC after Close: no error")
	}
}

// checkLinesInOrder checks that got has, in this order, a line equal to
// each of want (leading and trailing blanks aside), or matching it if it
// starts with "re:".
func checkLinesInOrder(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(got, "\n")
	i := 0
	for _, w := range want {
		match := func(l string) bool { return strings.TrimSpace(l) == w }
		if re, ok := strings.CutPrefix(w, "re:"); ok {
			rx := regexp.MustCompile(`^\s*` + re + `\s*$`)
			match = rx.MatchString
		}
		for i < len(lines) && !match(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Fatalf("ruleset has no line %q after the earlier ones:\n%s", w, got)
		}
		i++
	}
}
