package vrrp

import (
	"encoding/binary"
	"net/netip"
)

// IPProtocol is the IP protocol number (IPv4) and Next Header value (IPv6)
// assigned to VRRP (RFC 5798 §5.1.1.4, §5.1.2.3). It also goes into the
// VRRPv3 checksum pseudo-header.
const IPProtocol = 112

// checksumOffset is where the checksum field sits in both the v2 and the v3
// header (RFC 3768 §5.1, RFC 5798 §5.2).
const checksumOffset = 6

// Checksum returns the value of the checksum field for the VRRP message msg,
// which starts at the version field and runs to the end of the message
// (through the authentication data for v2). Whatever msg holds in the
// checksum field itself (bytes 6 and 7) is treated as zero, so the result can
// be written into an outgoing message or compared with a received one.
//
// For version 3 the sum includes a pseudo-header (RFC 5798 §5.2.8): the IPv6
// one of RFC 8200 §8.1 when src and dst are IPv6, and the IPv4 one (source,
// destination, zero, protocol 112, 16-bit length) when they are IPv4, as
// keepalived and other implementations do for VRRPv3 over IPv4. Version 2
// sums the VRRP message only (RFC 3768 §5.3.8); src and dst are then ignored.
//
// ok is false when the version is neither 2 nor 3, or when a v3 src and dst are
// not both valid addresses of the same family: no meaningful checksum exists.
// An IPv4-mapped IPv6 address counts as IPv6, since it is what the IPv6
// header would carry.
func Checksum(version uint8, msg []byte, src, dst netip.Addr) (sum uint16, ok bool) {
	var acc uint64
	switch version {
	case 2:
	case 3:
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
			return 0, false
		}
		acc = pseudoHeaderSum(src, dst, len(msg))
	default:
		return 0, false
	}
	if len(msg) <= checksumOffset {
		acc = sumWords(acc, msg)
	} else {
		acc = sumWords(acc, msg[:checksumOffset])
		if len(msg) > checksumOffset+2 {
			// Both halves start at even offsets, so skipping the field
			// keeps the 16-bit word alignment RFC 1071 sums over.
			acc = sumWords(acc, msg[checksumOffset+2:])
		}
	}
	return ^fold(acc), true
}

// InternetChecksum returns the RFC 1071 internet checksum of b: the one's
// complement of the one's complement sum of its 16-bit big-endian words, an
// odd trailing byte padded with zero.
func InternetChecksum(b []byte) uint16 {
	return ^fold(sumWords(0, b))
}

// pseudoHeaderSum is the unfolded one's complement sum of the pseudo-header
// for a VRRP message of length n between src and dst. The caller has checked
// that src and dst are valid and of the same family.
func pseudoHeaderSum(src, dst netip.Addr, n int) uint64 {
	var acc uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = sumWords(acc, s[:])
		acc = sumWords(acc, d[:])
	} else {
		s, d := src.As16(), dst.As16()
		acc = sumWords(acc, s[:])
		acc = sumWords(acc, d[:])
	}
	// The IPv4 layout (zero, protocol, 16-bit length) and the IPv6 one
	// (32-bit length, 24 zero bits, next header) contribute the same words to
	// the sum, so one expression serves both. A VRRP message is at most a few
	// kilobytes, far below 2^32.
	return acc + IPProtocol + uint64(uint32(n)>>16) + uint64(uint32(n)&0xffff)
}

// sumWords adds the 16-bit big-endian words of b to acc without folding. It
// reads 32 bits at a time: since 2^16 ≡ 1 (mod 2^16-1), adding a 32-bit word
// is the same as adding its two halves, and a uint64 cannot overflow for any
// input a VRRP socket can deliver.
func sumWords(acc uint64, b []byte) uint64 {
	for len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces acc to 16 bits with end-around carry (RFC 1071 §4.1).
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}
