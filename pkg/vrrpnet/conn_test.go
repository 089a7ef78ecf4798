//go:build linux

package vrrpnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
)

// advert encodes a VRRP advertisement for src -> dst.
func advert(t testing.TB, version uint8, vrid uint8, src, dst netip.Addr, vips ...netip.Addr) []byte {
	t.Helper()
	p := vrrp.Packet{
		Version:           version,
		Type:              vrrp.TypeAdvertisement,
		VRID:              vrid,
		Priority:          100,
		MaxAdvertInterval: time.Second,
		Addrs:             vips,
	}
	if version == 2 {
		p.AuthType = vrrp.AuthPass
		copy(p.AuthData[:], "secret")
	}
	b, err := p.AppendBinary(nil, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readOne reads one message from c within two seconds.
func readOne(t testing.TB, c *Conn, buf []byte) Message {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("%s: ReadFrom: %v", c.Interface(), err)
	}
	return m
}

// expectNothing asserts that c receives nothing for a short while.
func expectNothing(t testing.TB, c *Conn, why string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(150 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ReadBufferSize)
	m, err := c.ReadFrom(buf)
	if err == nil {
		t.Fatalf("%s (group %v): received %v -> %v, want nothing: %s", c.Interface(), c.Group(), m.Src, m.Dst, why)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: ReadFrom: %v, want a deadline error", c.Interface(), err)
	}
}

// expectNoDelivery asserts that the kernel delivers nothing to c for a
// short while: unlike expectNothing it bypasses ReadFrom's own multicast
// filter, so it tests the socket options and the bind.
func expectNoDelivery(t testing.TB, c *Conn, why string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(150 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c.rmu.Lock()
	m, err := c.readOne(make([]byte, ReadBufferSize))
	c.rmu.Unlock()
	if err == nil {
		t.Fatalf("%s (group %v): kernel delivered %v -> %v, want nothing: %s", c.Interface(), c.Group(), m.Src, m.Dst, why)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: read: %v, want a deadline error", c.Interface(), err)
	}
}

// checkAdvert asserts m is the advert sent from src to dst by the lab's peer
// a, arriving on b's veth with TTL 255, and that vrrp.Parse accepts it.
func checkAdvert(t testing.TB, m Message, b *peer, version uint8, src, dst netip.Addr, sent []byte) {
	t.Helper()
	if m.Src != src || m.Dst != dst {
		t.Errorf("received %v -> %v, want %v -> %v", m.Src, m.Dst, src, dst)
	}
	if m.TTL != TTL {
		t.Errorf("TTL/hop limit %d, want %d (RFC 5798 §5.1.1.3, §5.1.2.3)", m.TTL, TTL)
	}
	if m.IfIndex != b.ifindex {
		t.Errorf("IfIndex %d, want %d (%s)", m.IfIndex, b.ifindex, b.ifname)
	}
	// The kernel's arrival stamp: before the read returned, and recent.
	if age := time.Since(m.Received); m.Received.IsZero() || age < 0 || age > 10*time.Second {
		t.Errorf("Received %v (%v ago), want the kernel's arrival time", m.Received, age)
	}
	if string(m.Payload) != string(sent) {
		t.Errorf("payload\n got % x\nwant % x", m.Payload, sent)
	}
	var p vrrp.Packet
	if err := vrrp.Parse(m.Payload, m.Src, m.Dst, m.Src.Is6(), &p); err != nil {
		t.Fatalf("vrrp.Parse: %v", err)
	}
	if p.Version != version || p.VRID != 7 {
		t.Errorf("parsed version %d VRID %d, want %d and 7", p.Version, p.VRID, version)
	}
}

func TestListenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no such interface", Config{Interface: "vrrpnet-none", Family: 4}, "vrrpnet: vrrpnet-none:"},
		{"bad family", Config{Interface: "lo", Family: 5}, "address family 5"},
		{"group of the other family", Config{Interface: "lo", Family: 4, Group: DefaultGroup(6)}, "not an IPv4 multicast address"},
		{"unicast group", Config{Interface: "lo", Family: 6, Group: netip.MustParseAddr("2001:db8::1")}, "not an IPv6 multicast address"},
		{"multicast local", Config{Interface: "lo", Family: 4, Unicast: true, Local: DefaultGroup(4)}, "not an IPv4 unicast address"},
		{"mapped local", Config{Interface: "lo", Family: 6, Unicast: true, Local: netip.MustParseAddr("::ffff:192.0.2.1")}, "not an IPv6 unicast address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Listen(ctx, tc.cfg)
			if err == nil {
				c.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Listen(cctx, Config{Interface: "lo", Family: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("Listen with a canceled context: %v", err)
	}
}

func TestDefaultGroup(t *testing.T) {
	if g := DefaultGroup(4); g != netip.MustParseAddr("224.0.0.18") {
		t.Errorf("DefaultGroup(4) = %v", g)
	}
	if g := DefaultGroup(6); g != netip.MustParseAddr("ff02::12") {
		t.Errorf("DefaultGroup(6) = %v", g)
	}
	if g := DefaultGroup(0); g.IsValid() {
		t.Errorf("DefaultGroup(0) = %v", g)
	}
}

// TestMulticastAdvert sends adverts through Conn A to the VRRP group and
// reads them on Conn B in the peer namespace.
func TestMulticastAdvert(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, tc := range []struct {
		name    string
		family  int
		version uint8
	}{
		{"v3/IPv4", 4, 3},
		{"v2/IPv4", 4, 2},
		{"v3/IPv6", 6, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := l.a.listen(t, Config{Family: tc.family})
			b := l.b.listen(t, Config{Family: tc.family})
			var src netip.Addr
			if err := l.a.do(func() (err error) {
				src, err = PrimaryAddr(l.a.ifname, tc.family)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := map[int]netip.Addr{4: l.a.v4, 6: l.a.ll}[tc.family]
			if src != want {
				t.Fatalf("PrimaryAddr(%s, %d) = %v, want %v", l.a.ifname, tc.family, src, want)
			}
			if tc.family == 6 && !src.IsLinkLocalUnicast() {
				t.Fatalf("IPv6 source %v is not link-local (RFC 5798 §5.1.2.1)", src)
			}
			dst := DefaultGroup(tc.family)
			vip := map[int]netip.Addr{4: netip.MustParseAddr("192.0.2.100"), 6: netip.MustParseAddr("2001:db8::100")}[tc.family]
			msg := advert(t, tc.version, 7, src, dst, vip)
			if err := a.WriteTo(msg, src, dst); err != nil {
				t.Fatal(err)
			}
			m := readOne(t, b, make([]byte, ReadBufferSize))
			checkAdvert(t, m, l.b, tc.version, src, dst, msg)
			// Multicast loop is off: A does not read its own advert.
			expectNoDelivery(t, a, "IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP is off")
		})
	}
}

// TestUnicastAdvert covers keepalived's unicast_peer mode: no group joined,
// adverts sent to the peer's address, and multicast adverts not received
// even though another socket on the interface joined the group; with the
// socket unbound and bound to the local address (unicast_src_ip).
func TestUnicastAdvert(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, tc := range []struct {
		name     string
		family   int
		src, dst netip.Addr
		other    netip.Addr // another address of b
	}{
		{"IPv4", 4, l.a.v4, l.b.v4, netip.Addr{}},
		{"IPv6 global", 6, l.a.v6, l.b.v6, l.b.ll},
		{"IPv6 link-local", 6, l.a.ll, l.b.ll, l.b.v6},
	} {
		for _, bound := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/unbound", true: "/bound"}[bound]
			t.Run(name, func(t *testing.T) {
				a := l.a.listen(t, Config{Family: tc.family, Unicast: true})
				cfg := Config{Family: tc.family, Unicast: true}
				if bound {
					cfg.Local = tc.dst
				}
				b := l.b.listen(t, cfg)
				if b.Group().IsValid() {
					t.Errorf("unicast Conn has group %v", b.Group())
				}
				bm := l.b.listen(t, Config{Family: tc.family}) // joins the group on vb
				vip := map[int]netip.Addr{4: netip.MustParseAddr("192.0.2.100"), 6: netip.MustParseAddr("2001:db8::100")}[tc.family]
				msg := advert(t, 3, 7, tc.src, tc.dst, vip)
				if err := a.WriteTo(msg, tc.src, tc.dst); err != nil {
					t.Fatal(err)
				}
				checkAdvert(t, readOne(t, b, make([]byte, ReadBufferSize)), l.b, 3, tc.src, tc.dst, msg)

				group := DefaultGroup(tc.family)
				msg = advert(t, 3, 7, tc.src, group, vip)
				if err := a.WriteTo(msg, tc.src, group); err != nil {
					t.Fatal(err)
				}
				checkAdvert(t, readOne(t, bm, make([]byte, ReadBufferSize)), l.b, 3, tc.src, group, msg)
				if bound || tc.family == 4 {
					expectNoDelivery(t, b, "IP_MULTICAST_ALL is off and no group is joined")
				} else {
					// Linux hands an unbound raw IPv6 socket every
					// group; ReadFrom drops them.
					expectNothing(t, b, "a unicast Conn receives no multicast")
				}
				// The multicast Conn, bound to its group, got no
				// unicast advert before the multicast one.

				if bound && tc.other.IsValid() {
					// Control: an unbound unicast Conn gets it.
					ctl := l.b.listen(t, Config{Family: tc.family, Unicast: true})
					msg = advert(t, 3, 7, tc.src, tc.other, vip)
					if err := a.WriteTo(msg, tc.src, tc.other); err != nil {
						t.Fatal(err)
					}
					checkAdvert(t, readOne(t, ctl, make([]byte, ReadBufferSize)), l.b, 3, tc.src, tc.other, msg)
					expectNoDelivery(t, b, "a Conn bound to Local receives only adverts sent to Local")
				}
			})
		}
	}
}

// TestMulticastAllOff shows that a Conn receives only its own group: a
// packet for another group joined by another socket on the interface is
// delivered to that socket, and (the control) to a raw socket left with
// IP_MULTICAST_ALL on, but not to the Conn.
func TestMulticastAllOff(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, tc := range []struct {
		name   string
		family int
		other  netip.Addr
	}{
		{"IPv4", 4, netip.MustParseAddr("224.0.0.19")},
		{"IPv6", 6, netip.MustParseAddr("ff02::13")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := map[int]netip.Addr{4: l.a.v4, 6: l.a.ll}[tc.family]
			a := l.a.listen(t, Config{Family: tc.family})
			vrrpGroup := l.b.listen(t, Config{Family: tc.family})
			otherGroup := l.b.listen(t, Config{Family: tc.family, Group: tc.other})
			control := openControl(t, l.b, tc.family)

			msg := advert(t, 3, 7, src, tc.other)
			if err := a.WriteTo(msg, src, tc.other); err != nil {
				t.Fatal(err)
			}
			checkAdvert(t, readOne(t, otherGroup, make([]byte, ReadBufferSize)), l.b, 3, src, tc.other, msg)
			if err := control.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := control.Read(make([]byte, ReadBufferSize)); err != nil {
				t.Fatalf("control socket with IP_MULTICAST_ALL on did not get the %v packet: %v", tc.other, err)
			}
			expectNoDelivery(t, vrrpGroup, "IP_MULTICAST_ALL is off and the socket is bound to its group, so another socket's group is not delivered")
		})
	}
}

// openControl opens a raw protocol-112 socket in p's namespace with the
// kernel defaults (IP_MULTICAST_ALL on), bound to p's veth, joining no group.
func openControl(t testing.TB, p *peer, family int) *os.File {
	t.Helper()
	var f *os.File
	err := p.do(func() error {
		domain := unix.AF_INET
		if family == 6 {
			domain = unix.AF_INET6
		}
		fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, Protocol)
		if err != nil {
			return err
		}
		if err := unix.BindToDevice(fd, p.ifname); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), "control")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestAllocs measures WriteTo followed by ReadFrom of the same advert over
// the veth: neither may allocate.
func TestAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in a parallel test.
	l := newLab(t)
	for _, family := range []int{4, 6} {
		t.Run(map[int]string{4: "IPv4", 6: "IPv6"}[family], func(t *testing.T) {
			a := l.a.listen(t, Config{Family: family})
			b := l.b.listen(t, Config{Family: family})
			src := map[int]netip.Addr{4: l.a.v4, 6: l.a.ll}[family]
			dst := DefaultGroup(family)
			msg := advert(t, 3, 7, src, dst)
			buf := make([]byte, ReadBufferSize)
			if err := b.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var err error
			n := 0
			allocs := testing.AllocsPerRun(200, func() {
				if err != nil {
					return
				}
				if err = a.WriteTo(msg, src, dst); err != nil {
					return
				}
				var m Message
				if m, err = b.ReadFrom(buf); err == nil && len(m.Payload) == len(msg) && m.TTL == TTL {
					n++
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != 201 {
				t.Errorf("%d of 201 adverts came back intact", n)
			}
			if allocs != 0 {
				t.Errorf("WriteTo + ReadFrom: %v allocations per advert, want 0", allocs)
			}
		})
	}
}

// TestCloseUnblocksRead closes a Conn while a ReadFrom is blocked on it.
func TestCloseUnblocksRead(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	c := l.b.listen(t, Config{Family: 4})
	errc := make(chan error, 1)
	go func() { // owned: the test waits for it below
		_, err := c.ReadFrom(make([]byte, ReadBufferSize))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let ReadFrom block in the poller
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if err := c.WriteTo([]byte{0x31, 7, 100, 0, 0, 100, 0, 0}, l.b.v4, DefaultGroup(4)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
}

// TestTruncated reads an advert into a buffer too short for it.
func TestTruncated(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, family := range []int{4, 6} {
		t.Run(map[int]string{4: "IPv4", 6: "IPv6"}[family], func(t *testing.T) {
			a := l.a.listen(t, Config{Family: family})
			b := l.b.listen(t, Config{Family: family})
			src := map[int]netip.Addr{4: l.a.v4, 6: l.a.ll}[family]
			dst := DefaultGroup(family)
			vip := map[int]netip.Addr{4: netip.MustParseAddr("192.0.2.100"), 6: netip.MustParseAddr("2001:db8::100")}[family]
			msg := advert(t, 3, 7, src, dst, vip, vip, vip)
			for range 2 {
				if err := a.WriteTo(msg, src, dst); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			m, err := b.ReadFrom(make([]byte, 24))
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("ReadFrom into 24 bytes: %v, want ErrTruncated", err)
			}
			if m.Src != src {
				t.Errorf("truncated message from %v, want %v", m.Src, src)
			}
			// The Conn stays usable: the second copy reads whole.
			checkAdvert(t, readOne(t, b, make([]byte, ReadBufferSize)), l.b, 3, src, dst, msg)
		})
	}
}

func TestWriteToErrors(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	c4 := l.a.listen(t, Config{Family: 4})
	c6 := l.a.listen(t, Config{Family: 6})
	msg := []byte{0x31, 7, 100, 0, 0, 100, 0, 0}
	for _, tc := range []struct {
		name     string
		c        *Conn
		payload  []byte
		src, dst netip.Addr
		want     string
	}{
		{"empty", c4, nil, l.a.v4, DefaultGroup(4), "0-byte message"},
		{"too long", c4, make([]byte, MaxMessageLen+1), l.a.v4, DefaultGroup(4), "4089-byte message"},
		{"IPv6 on IPv4", c4, msg, l.a.ll, DefaultGroup(6), "on an IPv4 socket"},
		{"IPv4 on IPv6", c6, msg, l.a.v4, DefaultGroup(4), "on an IPv6 socket"},
		{"mapped on IPv6", c6, msg, netip.AddrFrom16(l.a.v4.As16()), DefaultGroup(6), "on an IPv6 socket"},
		{"unspecified source", c4, msg, netip.IPv4Unspecified(), DefaultGroup(4), "not a unicast address"},
		{"foreign source", c4, msg, netip.MustParseAddr("192.0.2.200"), DefaultGroup(4), "sendmsg 192.0.2.200 -> 224.0.0.18"},
		{"global IPv6 source, not on the link", c6, msg, netip.MustParseAddr("2001:db8::99"), DefaultGroup(6), "invalid argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.WriteTo(tc.payload, tc.src, tc.dst)
			if err == nil {
				t.Fatal("WriteTo succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "vrrpnet: va:") {
				t.Errorf("error %q, want it to name the interface and %q", err, tc.want)
			}
		})
	}
}

// TestTsharkChecksum sends VRRPv3/IPv4, VRRPv3/IPv6 and VRRPv2/IPv4 with
// PASS authentication through Conn, captures them in the peer namespace,
// and has tshark's VRRP dissector verify the checksums, and the TTL and TOS
// the socket options set.
func TestTsharkChecksum(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a4 := l.a.listen(t, Config{Family: 4})
	a6 := l.a.listen(t, Config{Family: 6})
	capture := l.b.startCapture(t, 3, "ip proto 112 or ip6 proto 112")
	vip4 := netip.MustParseAddr("192.0.2.100")
	vip6 := netip.MustParseAddr("2001:db8::100")
	g4, g6 := DefaultGroup(4), DefaultGroup(6)
	for _, s := range []struct {
		c        *Conn
		msg      []byte
		src, dst netip.Addr
	}{
		{a4, advert(t, 3, 7, l.a.v4, g4, vip4), l.a.v4, g4},
		{a6, advert(t, 3, 7, l.a.ll, g6, l.a.ll.Next(), vip6), l.a.ll, g6},
		{a4, advert(t, 2, 7, l.a.v4, g4, vip4), l.a.v4, g4},
	} {
		if err := s.c.WriteTo(s.msg, s.src, s.dst); err != nil {
			t.Fatal(err)
		}
	}
	rows := tshark(t, capture.wait(t),
		"vrrp.version", "vrrp.checksum.status", "vrrp.auth_type", "vrrp.auth_string",
		"ip.src", "ip.ttl", "ip.dsfield", "ipv6.src", "ipv6.hlim", "ipv6.tclass")
	want := [][]string{
		{"3", "1", "", "", "192.0.2.1", "255", "0xc0", "", "", ""},
		{"3", "1", "", "", "", "", "", l.a.ll.String(), "255", "0x000000c0"},
		{"2", "1", "1", "secret", "192.0.2.1", "255", "0xc0", "", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("tshark decoded %d packets, want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		t.Logf("%q", rows[i])
		if !equalRow(rows[i], want[i]) {
			t.Errorf("packet %d decoded as\n %q\nwant (checksum status 1 = good)\n %q", i, rows[i], want[i])
		}
	}
}

// TestLocalNotAssigned binds a unicast Conn to an address the interface
// does not have: keepalived's "src address not configured" fault.
func TestLocalNotAssigned(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, local := range []netip.Addr{netip.MustParseAddr("192.0.2.99"), netip.MustParseAddr("2001:db8::99")} {
		family := map[bool]int{true: 4, false: 6}[local.Is4()]
		err := l.b.do(func() error {
			c, err := Listen(t.Context(), Config{Interface: l.b.ifname, Family: family, Unicast: true, Local: local})
			if err == nil {
				c.Close()
			}
			return err
		})
		if !errors.Is(err, unix.EADDRNOTAVAIL) || !strings.Contains(err.Error(), "vrrpnet: vb: bind "+local.String()) {
			t.Errorf("Listen bound to %v: %v, want EADDRNOTAVAIL naming the interface and address", local, err)
		}
	}
}

// TestPrimaryAddr checks which address adverts default to: the first
// primary IPv4 address, and a usable (not tentative) IPv6 link-local one.
func TestPrimaryAddr(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ns := l.b.ns
	run(t, "ip", "-n", ns, "addr", "add", "192.0.2.3/24", "dev", "vb") // secondary
	// A down veth pair with DAD on: its link-local address stays tentative.
	run(t, "ip", "-n", ns, "link", "add", "vt0", "type", "veth", "peer", "name", "vt1")
	run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.vt0.accept_dad=1")
	run(t, "ip", "-n", ns, "addr", "add", "fe80::1/64", "dev", "vt0")
	for _, tc := range []struct {
		ifname string
		family int
		want   netip.Addr
		err    string
	}{
		{"vb", 4, l.b.v4, ""},
		{"vb", 6, l.b.ll, ""},
		{"vt0", 4, netip.Addr{}, "vrrpnet: vt0: no IPv4 address"},
		{"vt0", 6, netip.Addr{}, "vrrpnet: vt0: link-local address fe80::1 is tentative"},
		{"vt1", 6, netip.Addr{}, "vrrpnet: vt1: no IPv6 link-local address"},
		{"vb", 5, netip.Addr{}, "address family 5"},
		{"nonexistent0", 4, netip.Addr{}, "vrrpnet: nonexistent0:"},
	} {
		var got netip.Addr
		err := l.b.do(func() (err error) {
			got, err = PrimaryAddr(tc.ifname, tc.family)
			return err
		})
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("PrimaryAddr(%s, %d) = %v, %v; want %v", tc.ifname, tc.family, got, err, tc.want)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("PrimaryAddr(%s, %d) = %v, %v; want an error with %q", tc.ifname, tc.family, got, err, tc.err)
		}
	}
}

// TestSocketOptions reads back the options Listen sets (getsockopt(2)).
func TestSocketOptions(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	type opt struct {
		level, opt int
		name       string
		want       int
	}
	for _, tc := range []struct {
		family int
		opts   []opt
	}{
		{4, []opt{
			{unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, "IP_MULTICAST_ALL", 0},
			{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP", 0},
			{unix.IPPROTO_IP, unix.IP_TTL, "IP_TTL", 255},
			{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, "IP_MULTICAST_TTL", 255},
			{unix.IPPROTO_IP, unix.IP_TOS, "IP_TOS", 0xc0},
			{unix.IPPROTO_IP, unix.IP_PKTINFO, "IP_PKTINFO", 1},
			{unix.IPPROTO_IP, unix.IP_HDRINCL, "IP_HDRINCL", 0},
		}},
		{6, []opt{
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, "IPV6_MULTICAST_ALL", 0},
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, "IPV6_MULTICAST_LOOP", 0},
			{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS", 255},
			{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS", 255},
			{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, "IPV6_TCLASS", 0xc0},
			{unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, "IPV6_RECVHOPLIMIT", 1},
			{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO", 1},
			{unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, "IPV6_CHECKSUM", -1},
		}},
	} {
		c := l.b.listen(t, Config{Family: tc.family, ReceiveBuffer: 1 << 19})
		err := c.rc.Control(func(fd uintptr) {
			for _, o := range tc.opts {
				got, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
				if err != nil || got != o.want {
					t.Errorf("IPv%d %s = %d, %v; want %d", tc.family, o.name, got, err, o.want)
				}
			}
			if dev, err := unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err != nil || dev != "vb" {
				t.Errorf("IPv%d SO_BINDTODEVICE = %q, %v; want vb", tc.family, dev, err)
			}
			// socket(7): the kernel doubles the value set.
			if got, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err != nil || got != 2<<19 {
				t.Errorf("IPv%d SO_RCVBUF = %d, %v; want %d", tc.family, got, err, 2<<19)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
