package vrrp_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
)

// FuzzParse checks that Parse never panics, fails only with a *ParseError
// carrying a known reason and leaves p alone when it does, and that whatever
// it accepts re-encodes to the same bytes.
//
// A mutated message almost never has a valid checksum, which would confine the
// fuzzer to the checks before it; so each input is also parsed with its
// checksum field corrected, to reach the field checks and the round trip.
func FuzzParse(f *testing.F) {
	for _, g := range wireGoldens() {
		f.Add(g.wire, g.is6, g.src.AsSlice(), g.dst.AsSlice())
	}
	f.Add([]byte{}, false, []byte{192, 0, 2, 1}, []byte{224, 0, 0, 18})
	f.Add(wireZeroChecksumPacket(), false, []byte{192, 0, 2, 1}, []byte{192, 0, 2, 2})

	f.Fuzz(func(t *testing.T, b []byte, is6 bool, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb) // invalid unless 4 or 16 bytes
		dst, _ := netip.AddrFromSlice(dstb)
		wireCheckParse(t, b, src, dst, is6)
		if len(b) >= 8 {
			if sum, ok := vrrp.Checksum(b[0]>>4, b, src, dst); ok {
				fixed := bytes.Clone(b)
				binary.BigEndian.PutUint16(fixed[6:], sum)
				wireCheckParse(t, fixed, src, dst, is6)
			}
		}
	})
}

func wireCheckParse(t *testing.T, b []byte, src, dst netip.Addr, is6 bool) {
	t.Helper()
	// Parse into a packet holding an earlier result, as the receive loop does.
	stale := vrrp.Packet{Version: 7, VRID: 7, AuthData: [8]byte{7}, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.7")}}
	p := stale
	p.Addrs = slices.Clone(stale.Addrs)
	err := vrrp.Parse(b, src, dst, is6, &p)
	if err != nil {
		var pe *vrrp.ParseError
		if !errors.As(err, &pe) || pe.Reason.String() == "unknown" || pe.Detail == "" {
			t.Fatalf("Parse(% x): error %v (%T) is not a *ParseError with a known reason and detail", b, err, err)
		}
		if !reflect.DeepEqual(p, stale) {
			t.Fatalf("Parse(% x) failed (%v) but changed p to %+v", b, err, p)
		}
		return
	}

	if len(p.Addrs) != int(b[3]) {
		t.Fatalf("Parse(% x): %d addresses, count field says %d", b, len(p.Addrs), b[3])
	}
	// Parse ignores the reserved bits (RFC 5798 §5.2.6) and AppendBinary
	// sends them as zero, so the re-encoding differs there and, in
	// consequence, in the checksum.
	want := bytes.Clone(b)
	if p.Version == 3 {
		want[4] &= 0x0f
	}
	// For VRRPv2 the IP header addresses do not enter the checksum and
	// Parse ignores them, but AppendBinary wants IPv4 ones.
	esrc, edst := src, dst
	switch {
	case p.Version == 2:
		esrc, edst = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
	case !is6:
		esrc, edst = src.Unmap(), dst.Unmap()
	}
	sum, ok := vrrp.Checksum(p.Version, want, esrc, edst)
	if !ok {
		t.Fatalf("Parse(% x) accepted addresses %v -> %v that Checksum rejects", b, esrc, edst)
	}
	binary.BigEndian.PutUint16(want[6:], sum)

	got, err := p.AppendBinary(nil, esrc, edst)
	if err != nil {
		t.Fatalf("Parse(% x) = %+v, which does not encode: %v", b, p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("round trip:\n  in % x\n out % x\nwant % x", b, got, want)
	}
}
