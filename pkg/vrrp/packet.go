package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// TypeAdvertisement is the only VRRP packet type, in both VRRPv2 and VRRPv3
// (RFC 3768 §5.3.2, RFC 5798 §5.2.2).
const TypeAdvertisement = 1

// VRRPv2 authentication types (RFC 2338 §5.3.6). RFC 3768 §5.3.6 retired
// authentication and reserved these values, but keepalived still speaks them,
// so a VRRPv2 peer may send any of the three.
const (
	AuthNone = 0 // no authentication; authentication data should be zero
	AuthPass = 1 // simple text password in the authentication data
	AuthAH   = 2 // IPsec AH (RFC 2402) wraps the message; data should be zero
)

// Wire sizes.
const (
	headerLen   = 8   // fixed header, both versions (RFC 3768 §5.1, RFC 5798 §5.2)
	authDataLen = 8   // VRRPv2 trailing authentication data (RFC 3768 §5.3.10)
	maxAddrs    = 255 // the Count IPvX Addr field is 8 bits wide
	// maxInterval3 is the largest VRRPv3 Max Adver Int: 12 bits of
	// centiseconds (RFC 5798 §5.2.7).
	maxInterval3 = 4095 * centisecond
	// maxInterval2 is the largest VRRPv2 Adver Int: 8 bits of seconds
	// (RFC 3768 §5.3.7).
	maxInterval2 = 255 * time.Second
	centisecond  = 10 * time.Millisecond
)

// Packet is a VRRP advertisement, version 2 (RFC 3768) or 3 (RFC 5798), as it
// is on the wire minus the IP header.
type Packet struct {
	// Version is 2 or 3 (RFC 3768 §5.3.1, RFC 5798 §5.2.1).
	Version uint8
	// Type is TypeAdvertisement; no other type is defined.
	Type uint8
	// VRID is the virtual router identifier, 1 to 255 (RFC 5798 §5.2.3).
	VRID uint8
	// Priority is 255 for the address owner, 1 to 254 for backups, and 0
	// when the master stops participating (RFC 5798 §5.2.4).
	Priority uint8
	// MaxAdvertInterval is the advertisement interval. VRRPv3 carries it in
	// centiseconds, 1 to 4095 (RFC 5798 §5.2.7); VRRPv2 in whole seconds, 1
	// to 255 (RFC 3768 §5.3.7). AppendBinary rejects a value the version
	// cannot carry exactly rather than round it.
	MaxAdvertInterval time.Duration
	// AuthType is the VRRPv2 authentication type, AuthNone, AuthPass or
	// AuthAH. VRRPv3 has no such field, so it must be AuthNone there.
	AuthType uint8
	// AuthData is the VRRPv2 authentication data, carried verbatim both
	// ways: for AuthPass it is the password, zero-padded (RFC 2338
	// §5.3.10). Comparing it with the configured password is the caller's
	// job. It must be zero for VRRPv3.
	AuthData [authDataLen]byte
	// Addrs are the virtual addresses (RFC 5798 §5.2.9), all IPv4 or all
	// IPv6 to match the IP header. Zones are not carried on the wire.
	// RFC 5798 §5.2.5 asks for at least one, but keepalived sends and
	// accepts none for an instance without virtual addresses, so zero is
	// allowed here and left to configuration checks.
	Addrs []netip.Addr
	// Checksum is the checksum field as received by Parse. AppendBinary
	// ignores it and writes the computed value.
	Checksum uint16
}

// AppendBinary appends the encoded advertisement to b and returns the
// extended slice. src and dst are the addresses the IP header will carry: they
// choose the address family and, for VRRPv3, enter the checksum's
// pseudo-header (RFC 5798 §5.2.8), so a packet encoded for one destination
// must not be sent to another. When b has room for the message, AppendBinary
// allocates nothing.
//
// It returns b unchanged and an error if the packet cannot be encoded as is:
// an unknown version or type, VRID 0, an interval the version cannot carry,
// more than 255 addresses, addresses not of the IP header's family, VRRPv2
// over IPv6, or authentication fields on VRRPv3.
func (p *Packet) AppendBinary(b []byte, src, dst netip.Addr) ([]byte, error) {
	is6, interval, err := p.check(src, dst)
	if err != nil {
		return b, err
	}
	start := len(b)
	b = slices.Grow(b, wireLen(p.Version, is6, len(p.Addrs)))
	b = append(b, p.Version<<4|p.Type, p.VRID, p.Priority, uint8(len(p.Addrs)))
	if p.Version == 3 {
		// The 4 reserved bits above the interval are sent as zero.
		b = binary.BigEndian.AppendUint16(b, interval)
	} else {
		b = append(b, p.AuthType, uint8(interval))
	}
	b = append(b, 0, 0) // checksum, filled in below
	for _, a := range p.Addrs {
		if is6 {
			a16 := a.As16()
			b = append(b, a16[:]...)
		} else {
			a4 := a.As4()
			b = append(b, a4[:]...)
		}
	}
	if p.Version == 2 {
		b = append(b, p.AuthData[:]...)
	}
	sum, _ := Checksum(p.Version, b[start:], src, dst) // check vetted src and dst
	binary.BigEndian.PutUint16(b[start+checksumOffset:], sum)
	return b, nil
}

// check validates p for encoding between src and dst, and returns the
// address family and the interval in the version's wire unit.
func (p *Packet) check(src, dst netip.Addr) (is6 bool, interval uint16, err error) {
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return false, 0, fmt.Errorf("vrrp: encode VRID %d: source %v and destination %v must be valid addresses of one family", p.VRID, src, dst)
	}
	is6 = !src.Is4()
	if p.Type != TypeAdvertisement {
		return false, 0, fmt.Errorf("vrrp: encode VRID %d: type %d, only %d (advertisement) exists", p.VRID, p.Type, TypeAdvertisement)
	}
	if p.VRID == 0 {
		return false, 0, fmt.Errorf("vrrp: encode: VRID 0 is not a valid virtual router ID (1-255)")
	}
	d := p.MaxAdvertInterval
	switch p.Version {
	case 3:
		if d <= 0 || d > maxInterval3 || d%centisecond != 0 {
			return false, 0, fmt.Errorf("vrrp: encode VRID %d: VRRPv3 interval %v is not a whole number of centiseconds from 10ms to %v", p.VRID, d, maxInterval3)
		}
		if p.AuthType != AuthNone || p.AuthData != [authDataLen]byte{} {
			return false, 0, fmt.Errorf("vrrp: encode VRID %d: VRRPv3 has no authentication (RFC 5798 §9), got auth type %d", p.VRID, p.AuthType)
		}
		interval = uint16(d / centisecond)
	case 2:
		if is6 {
			return false, 0, fmt.Errorf("vrrp: encode VRID %d: VRRPv2 is defined for IPv4 only, use version 3 for IPv6", p.VRID)
		}
		if d < time.Second || d > maxInterval2 || d%time.Second != 0 {
			return false, 0, fmt.Errorf("vrrp: encode VRID %d: VRRPv2 interval %v is not a whole number of seconds from 1s to %v", p.VRID, d, maxInterval2)
		}
		if p.AuthType > AuthAH {
			return false, 0, fmt.Errorf("vrrp: encode VRID %d: unknown auth type %d", p.VRID, p.AuthType)
		}
		interval = uint16(d / time.Second)
	default:
		return false, 0, fmt.Errorf("vrrp: encode VRID %d: version %d, want 2 or 3", p.VRID, p.Version)
	}
	if len(p.Addrs) > maxAddrs {
		return false, 0, fmt.Errorf("vrrp: encode VRID %d: %d addresses, at most %d fit the count field", p.VRID, len(p.Addrs), maxAddrs)
	}
	for i, a := range p.Addrs {
		// Is6 includes IPv4-mapped addresses: those are IPv6 on the wire.
		if !a.IsValid() || a.Is4() == is6 {
			return false, 0, fmt.Errorf("vrrp: encode VRID %d: address %d (%v) is not of the IP header's family (source %v)", p.VRID, i, a, src)
		}
	}
	return is6, interval, nil
}

// wireLen is the length of a message of the given version and family with n
// addresses.
func wireLen(version uint8, is6 bool, n int) int {
	size := 4
	if is6 {
		size = 16
	}
	l := headerLen + n*size
	if version == 2 {
		l += authDataLen
	}
	return l
}

// Parse decodes the VRRP message b (the IP payload, nothing before or after)
// into p. src and dst are from the IP header and is6 tells its family; src and
// dst are needed for the VRRPv3 checksum pseudo-header (RFC 5798 §5.2.8) and
// ignored for VRRPv2. IPv4-mapped src and dst are accepted when is6 is false.
//
// Parse checks what the message alone can tell, in the order of RFC 5798 §7.1:
// version, length against the address count (the length must be exact, as
// keepalived requires), checksum; then the type, VRID 0, a zero interval and,
// for VRRPv2, an unknown auth type. Everything that needs the instance's
// configuration (TTL, VRID lookup, auth match, interval and address list) is
// the caller's, which counts those drops with the other DropReasons. The
// returned error is a *ParseError.
//
// p.Addrs is overwritten in place, reusing its capacity, so that parsing in a
// loop allocates nothing once the slice has grown: the caller must copy the
// addresses to keep them past the next Parse into the same p. On error p is
// unchanged.
func Parse(b []byte, src, dst netip.Addr, is6 bool, p *Packet) error {
	if len(b) < headerLen {
		return &ParseError{DropTooShort, fmt.Sprintf("%d bytes, the fixed header alone is %d", len(b), headerLen)}
	}
	version := b[0] >> 4
	switch version {
	case 2:
		if is6 {
			return &ParseError{DropBadFamily, "VRRPv2 over IPv6 (VRRPv2 is defined for IPv4 only)"}
		}
	case 3:
		if !is6 {
			src, dst = src.Unmap(), dst.Unmap()
		}
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() || src.Is4() == is6 {
			// A caller bug rather than a hostile packet, but without
			// a pseudo-header there is no checksum to trust.
			return &ParseError{DropBadFamily, fmt.Sprintf("IP header addresses %v -> %v do not match is6=%t", src, dst, is6)}
		}
	default:
		return &ParseError{DropBadVersion, fmt.Sprintf("version %d, want 2 or 3", version)}
	}
	count := int(b[3])
	if want := wireLen(version, is6, count); len(b) != want {
		return &ParseError{DropBadLength, fmt.Sprintf("VRRPv%d with %d addresses is %d bytes, got %d", version, count, want, len(b))}
	}
	got := binary.BigEndian.Uint16(b[checksumOffset:])
	// Compare values rather than check that the sum folds to zero: that
	// would also accept 0xffff for a computed 0x0000 (one's complement
	// negative zero), which no correct sender produces and which would not
	// re-encode to the same bytes.
	if want, _ := Checksum(version, b, src, dst); got != want {
		return &ParseError{DropBadChecksum, fmt.Sprintf("checksum %#04x, computed %#04x", got, want)}
	}
	if typ := b[0] & 0x0f; typ != TypeAdvertisement {
		return &ParseError{DropBadType, fmt.Sprintf("type %d, only %d (advertisement) exists", typ, TypeAdvertisement)}
	}
	if b[1] == 0 {
		// No instance can have VRID 0, so this is the MIB's VRID error.
		return &ParseError{DropVRIDMismatch, "VRID 0 is reserved"}
	}
	var interval time.Duration
	if version == 3 {
		// RFC 5798 §5.2.6: the reserved bits are ignored on reception.
		interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0x0fff) * centisecond
	} else {
		if b[4] > AuthAH {
			return &ParseError{DropBadAuthType, fmt.Sprintf("auth type %d, want 0, 1 or 2", b[4])}
		}
		interval = time.Duration(b[5]) * time.Second
	}
	if interval == 0 {
		// Adopting a zero interval (RFC 5798 §6.4.2) would make a backup
		// declare the master down after the skew time alone.
		return &ParseError{DropIntervalMismatch, "advertisement interval 0"}
	}

	addrs := p.Addrs[:0]
	rest := b[headerLen:]
	for range count {
		if is6 {
			addrs = append(addrs, netip.AddrFrom16([16]byte(rest)))
			rest = rest[16:]
		} else {
			addrs = append(addrs, netip.AddrFrom4([4]byte(rest)))
			rest = rest[4:]
		}
	}
	*p = Packet{
		Version:           version,
		Type:              TypeAdvertisement,
		VRID:              b[1],
		Priority:          b[2],
		MaxAdvertInterval: interval,
		Addrs:             addrs,
		Checksum:          got,
	}
	if version == 2 {
		p.AuthType = b[4]
		p.AuthData = [authDataLen]byte(rest)
	}
	return nil
}

// DropReason says why a received VRRP packet was discarded. Parse reports the
// reasons a packet alone can show; the receive path reports the others after
// matching the packet to an instance, so that all drop counters share one
// enum. Each constant names the RFC 6527 (VRRPv3 MIB) or RFC 2787 (VRRPv2
// MIB) counter it feeds, where one exists. String gives the metric label.
type DropReason uint8

// Drop reasons. The zero value is not a reason.
const (
	// DropTooShort: shorter than the 8-byte fixed header.
	// vrrpv3StatisticsPacketLengthErrors.
	DropTooShort DropReason = iota + 1
	// DropBadLength: the length does not match the address count (plus the
	// v2 authentication data), or the caller's length disagrees.
	// vrrpv3StatisticsPacketLengthErrors.
	DropBadLength
	// DropBadVersion: neither 2 nor 3, or not the instance's version.
	// vrrpv3RouterVersionErrors.
	DropBadVersion
	// DropBadType: not an advertisement (RFC 5798 §5.2.2).
	// vrrpv3StatisticsRcvdInvalidTypePackets.
	DropBadType
	// DropBadChecksum: the checksum does not match (RFC 5798 §5.2.8).
	// vrrpv3RouterChecksumErrors.
	DropBadChecksum
	// DropBadFamily: VRRPv2 over IPv6, or IP header addresses that do not
	// match the family the caller gave. No MIB counter.
	DropBadFamily
	// DropBadAuthType: a VRRPv2 auth type other than 0, 1 or 2.
	// vrrpStatsInvalidAuthType.
	DropBadAuthType
	// DropBadTTL: TTL or hop limit not 255 (RFC 5798 §7.1); caller-checked.
	// vrrpv3StatisticsIpTtlErrors.
	DropBadTTL
	// DropVRIDMismatch: no instance has this VRID on the interface
	// (caller), or VRID 0 (Parse). vrrpv3RouterVrIdErrors.
	DropVRIDMismatch
	// DropAuthTypeMismatch: the VRRPv2 auth type differs from the
	// instance's; caller-checked. vrrpStatsAuthTypeMismatch.
	DropAuthTypeMismatch
	// DropAuthMismatch: the VRRPv2 password (or AH check) fails;
	// caller-checked. vrrpStatsAuthFailures.
	DropAuthMismatch
	// DropIntervalMismatch: the VRRPv2 interval differs from the
	// instance's (caller), or the interval is 0 (Parse).
	// vrrpv3StatisticsAdvIntervalErrors.
	DropIntervalMismatch
	// DropAddrListMismatch: the addresses differ from the instance's
	// virtual addresses; caller-checked. vrrpv3StatisticsAddressListErrors.
	// keepalived logs and accepts such an advert, and so does vrrpkit: this
	// reason is counted, the advert is not dropped.
	DropAddrListMismatch
	// DropUnknownPeer: a unicast advert from an address that is not in the
	// instance's unicast_peer list; caller-checked. No MIB counter.
	DropUnknownPeer

	// NumDropReasons bounds the reasons: an array indexed by DropReason
	// needs this many entries.
	NumDropReasons = iota + 1
)

// String returns the reason as a snake_case metric label.
func (r DropReason) String() string {
	switch r {
	case DropTooShort:
		return "too_short"
	case DropBadLength:
		return "bad_length"
	case DropBadVersion:
		return "bad_version"
	case DropBadType:
		return "bad_type"
	case DropBadChecksum:
		return "bad_checksum"
	case DropBadFamily:
		return "bad_family"
	case DropBadAuthType:
		return "bad_auth_type"
	case DropBadTTL:
		return "bad_ttl"
	case DropVRIDMismatch:
		return "vrid_mismatch"
	case DropAuthTypeMismatch:
		return "auth_type_mismatch"
	case DropAuthMismatch:
		return "auth_mismatch"
	case DropIntervalMismatch:
		return "interval_mismatch"
	case DropAddrListMismatch:
		return "addr_list_mismatch"
	case DropUnknownPeer:
		return "unknown_peer"
	}
	return "unknown"
}

// ParseError is the error Parse returns: the reason to count and a detail to
// log.
type ParseError struct {
	Reason DropReason
	Detail string
}

func (e *ParseError) Error() string {
	return "vrrp: drop packet (" + e.Reason.String() + "): " + e.Detail
}
