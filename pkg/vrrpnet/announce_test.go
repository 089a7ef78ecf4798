//go:build linux

package vrrpnet

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var testMAC = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01} // locally administered

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGARPGolden checks the gratuitous ARP frame byte for byte against the
// layout keepalived sends (RFC 826 fields): 42 bytes, unpadded.
func TestGARPGolden(t *testing.T) {
	got, err := appendGARP(nil, testMAC, netip.MustParseAddr("192.0.2.100"))
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		ffffffffffff 02005e100001 0806
		0001 0800 06 04 0001
		02005e100001 c0000264
		ffffffffffff c0000264`)
	if !bytes.Equal(got, want) {
		t.Errorf("GARP frame\n got % x\nwant % x", got, want)
	}
	if len(got) != arpFrameLen {
		t.Errorf("GARP frame is %d bytes, want %d", len(got), arpFrameLen)
	}
	// Appending keeps what the buffer held.
	got, err = appendGARP([]byte{0xaa}, testMAC, netip.MustParseAddr("192.0.2.100"))
	if err != nil || !bytes.Equal(got, append([]byte{0xaa}, want...)) {
		t.Errorf("appendGARP onto a prefix: % x, %v", got, err)
	}
}

// TestUnsolicitedNAGolden checks the NA frame byte for byte: the literal
// checksums are those of the hand-built frames that tshark validated
// (TestAnnounceCapture), and each is cross-checked with golang.org/x/net/icmp.
func TestUnsolicitedNAGolden(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::100")
	for _, tc := range []struct {
		router   bool
		flags    string
		checksum string
	}{
		{false, "20", "991c"}, // Override
		{true, "a0", "191c"},  // Router | Override
	} {
		got, err := appendUnsolicitedNA(nil, testMAC, ip, tc.router)
		if err != nil {
			t.Fatal(err)
		}
		body := unhex(t, tc.flags+`000000
			20010db8000000000000000000000100
			02 01 02005e100001`)
		hdr := unhex(t, `
			333300000001 02005e100001 86dd
			60000000 0020 3a ff
			20010db8000000000000000000000100
			ff020000000000000000000000000001`)
		want := append(append(hdr, unhex(t, "88 00"+tc.checksum)...), body...)
		if !bytes.Equal(got, want) {
			t.Errorf("router=%t: NA frame\n got % x\nwant % x", tc.router, got, want)
		}
		msg := icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: body}}
		icmpBytes, err := msg.Marshal(icmp.IPv6PseudoHeader(net.IP(ip.AsSlice()), net.ParseIP("ff02::1")))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(icmpBytes, want[len(hdr):]) {
			t.Errorf("router=%t: x/net/icmp gives % x, the golden ICMPv6 % x", tc.router, icmpBytes, want[len(hdr):])
		}
		if len(got) != naFrameLen {
			t.Errorf("NA frame is %d bytes, want %d", len(got), naFrameLen)
		}
	}
}

// TestAnnounceBuildErrors: what the libraries refuse comes back as an
// error naming the step, not a malformed frame.
func TestAnnounceBuildErrors(t *testing.T) {
	if _, err := appendGARP(nil, testMAC, netip.MustParseAddr("2001:db8::1")); err == nil || !strings.Contains(err.Error(), "build ARP packet") {
		t.Errorf("appendGARP of an IPv6 address: %v", err)
	}
	if _, err := appendUnsolicitedNA(nil, testMAC, netip.MustParseAddr("192.0.2.1"), false); err == nil || !strings.Contains(err.Error(), "marshal neighbor advertisement") {
		t.Errorf("appendUnsolicitedNA of an IPv4 address: %v", err)
	}
}

func TestAnnouncerErrors(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	a := l.a.announcer(t, AnnouncerConfig{})
	if err := a.GratuitousARP(netip.MustParseAddr("2001:db8::1")); err == nil || !strings.Contains(err.Error(), "vrrpnet: va: gratuitous ARP") {
		t.Errorf("GARP for an IPv6 address: %v", err)
	}
	if err := a.UnsolicitedNA(netip.MustParseAddr("192.0.2.1")); err == nil || !strings.Contains(err.Error(), "vrrpnet: va: neighbor advertisement") {
		t.Errorf("NA for an IPv4 address: %v", err)
	}
	if err := l.a.do(func() error {
		_, err := OpenAnnouncer(t.Context(), AnnouncerConfig{Interface: "lo"})
		return err
	}); err == nil || !strings.Contains(err.Error(), "not a 6-byte Ethernet address") {
		t.Errorf("OpenAnnouncer on lo: %v", err)
	}
}

// TestAnnounceCapture sends a gratuitous ARP and an unsolicited NA from the
// interface MAC, and both again from a VRRP virtual MAC, captures them with
// tcpdump in the peer namespace and decodes them with tshark.
func TestAnnounceCapture(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	vmac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07} // RFC 5798 §7.3, VRID 7
	own := l.a.announcer(t, AnnouncerConfig{})
	virt := l.a.announcer(t, AnnouncerConfig{HardwareAddr: vmac})
	if own.HardwareAddr().String() != l.a.mac.String() {
		t.Errorf("announcer MAC %v, want the interface's %v", own.HardwareAddr(), l.a.mac)
	}
	capture := l.b.startCapture(t, 4, "arp or (icmp6 and ip6[40] == 136)")
	vip4 := netip.MustParseAddr("192.0.2.100")
	vip6 := netip.MustParseAddr("2001:db8::100")
	for _, a := range []*Announcer{own, virt} {
		if err := a.GratuitousARP(vip4); err != nil {
			t.Fatal(err)
		}
		if err := a.UnsolicitedNA(vip6); err != nil {
			t.Fatal(err)
		}
	}
	file := capture.wait(t)
	rows := tshark(t, file,
		"eth.src", "eth.dst",
		"arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4", "arp.isgratuitous", "arp.src.hw_mac",
		"ipv6.src", "ipv6.dst", "ipv6.hlim",
		"icmpv6.type", "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o",
		"icmpv6.checksum.status", "icmpv6.nd.na.target_address", "icmpv6.opt.linkaddr")
	if len(rows) != 4 {
		t.Fatalf("tshark decoded %d packets, want 4: %q", len(rows), rows)
	}
	macs := []string{l.a.mac.String(), vmac.String()}
	for i, mac := range macs {
		arp, na := rows[2*i], rows[2*i+1]
		t.Logf("GARP: %q", arp)
		t.Logf("NA:   %q", na)
		wantARP := []string{mac, "ff:ff:ff:ff:ff:ff", "1", "192.0.2.100", "192.0.2.100", "1", mac,
			"", "", "", "", "", "", "", "", "", ""}
		if !equalRow(arp, wantARP) {
			t.Errorf("GARP decoded as\n %q\nwant\n %q", arp, wantARP)
		}
		// checksum.status 1 is "Good"; flags R=0, S=0, O=1.
		wantNA := []string{mac, "33:33:00:00:00:01", "", "", "", "", "",
			"2001:db8::100", "ff02::1", "255", "136", "0", "0", "1", "1", "2001:db8::100", mac}
		if !equalRow(na, wantNA) {
			t.Errorf("NA decoded as\n %q\nwant\n %q", na, wantNA)
		}
	}
}

// equalRow compares tshark fields, reading booleans printed as True/False
// (newer tshark) as 1/0.
func equalRow(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := got[i]
		switch g {
		case "True":
			g = "1"
		case "False":
			g = "0"
		}
		if g != want[i] {
			return false
		}
	}
	return true
}

// TestAnnouncerAllocs bounds what announcing allocates. The frame buffer is
// the Announcer's; mdlayher/arp and mdlayher/ndp allocate their packet and
// message values (3 for a GARP, 12 for an NA with Go 1.26). Announcements
// go out per transition and garp refresh, not per advertisement, so a few
// small allocations are fine; the bound catches a regression to
// allocating per byte or per call of something larger.
func TestAnnouncerAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in a parallel test.
	l := newLab(t)
	a := l.a.announcer(t, AnnouncerConfig{})
	vip4 := netip.MustParseAddr("192.0.2.100")
	vip6 := netip.MustParseAddr("2001:db8::100")
	for _, tc := range []struct {
		what string
		max  float64
		send func() error
	}{
		{"GratuitousARP", 6, func() error { return a.GratuitousARP(vip4) }},
		{"UnsolicitedNA", 20, func() error { return a.UnsolicitedNA(vip6) }},
	} {
		var err error
		allocs := testing.AllocsPerRun(50, func() {
			if err == nil {
				err = tc.send()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v allocations", tc.what, allocs)
		if allocs > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.what, allocs, tc.max)
		}
	}
}
