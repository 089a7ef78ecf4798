package vrrp

import "net/netip"

// RequiredTTL is the IPv4 TTL or IPv6 hop limit every advert is sent with
// and must arrive with (RFC 5798 §5.1.1.3, §7.1): a packet that crossed a
// router cannot be from this LAN.
const RequiredTTL = 255

// Received is what the receive path knows of one parsed advert before it is
// matched against an instance: the IP header's fields and the VRRP fields
// the per-instance checks compare. A value type, so that the receive path
// allocates nothing.
type Received struct {
	Src      netip.Addr
	TTL      uint8
	Version  uint8
	Priority uint8
	AuthType uint8
	AuthData [8]byte
	NumAddrs int
}

// ReceiveChecks are the per-instance receive checks of RFC 5798 §7.1 (and
// RFC 3768 §7.1 for VRRPv2's authentication), those that need the
// instance's configuration. Parse has already done the ones a packet alone
// can show (length, version 2 or 3, type, checksum).
type ReceiveChecks struct {
	// Version is the instance's VRRP version.
	Version uint8
	// Unicast: adverts come from unicast peers. RFC 5798 §7.1 requires TTL
	// 255 for every advert; keepalived waives it for unicast peers, which
	// may be routed hops away, and so does vrrpkit.
	Unicast bool
	// AuthType and AuthData are the VRRPv2 authentication the instance
	// uses (AuthNone, AuthPass with its 8 bytes).
	AuthType uint8
	AuthData [8]byte
	// NumAddrs is the number of addresses the instance advertises.
	NumAddrs int
	// SkipAddrCheck is keepalived's skip_check_adv_addr: do not compare the
	// advert's address list with ours.
	SkipAddrCheck bool
}

// Check applies the checks to r. drop is the reason to discard the advert,
// 0 to accept it; mismatch is a reason to count while accepting it: an
// address list that differs from ours (RFC 5798 §7.1 says to discard it,
// keepalived logs and accepts it, and so does vrrpkit so that routers with
// a VIP added on one side first still agree on a master).
func (c *ReceiveChecks) Check(r *Received) (drop, mismatch DropReason) {
	if !c.Unicast && r.TTL != RequiredTTL {
		return DropBadTTL, 0
	}
	if r.Version != c.Version {
		return DropBadVersion, 0
	}
	if c.Version == 2 {
		if r.AuthType != c.AuthType {
			return DropAuthTypeMismatch, 0
		}
		if c.AuthType == AuthPass && r.AuthData != c.AuthData {
			return DropAuthMismatch, 0
		}
	}
	if r.NumAddrs != c.NumAddrs && !c.SkipAddrCheck {
		return 0, DropAddrListMismatch
	}
	return 0, 0
}
