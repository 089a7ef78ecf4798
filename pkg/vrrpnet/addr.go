//go:build linux

package vrrpnet

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PrimaryAddr returns the address adverts on ifname are sent from by
// default, as keepalived chooses it:
//
//   - family 4: the interface's first primary IPv4 address (RFC 5798
//     §5.1.1.1: "the primary IPv4 address of the interface the packet is
//     being sent from"), skipping secondary addresses;
//   - family 6: its IPv6 link-local address (RFC 5798 §5.1.2.1: "the IPv6
//     link-local address of the interface the packet is being sent from"),
//     skipping tentative (DAD not done, ip-address(8)) and DAD-failed ones,
//     which the kernel refuses as a source.
//
// The address is returned without a zone. Addresses are read over netlink
// (rtnetlink(7)) in the calling thread's network namespace.
func PrimaryAddr(ifname string, family int) (netip.Addr, error) {
	var nlFamily int
	switch family {
	case 4:
		nlFamily = netlink.FAMILY_V4
	case 6:
		nlFamily = netlink.FAMILY_V6
	default:
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: address family %d, want 4 or 6", ifname, family)
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, nlFamily)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: list IPv%d addresses: %w", ifname, family, err)
	}
	var tentative netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case family == 4:
			if ip.Is4() && a.Flags&unix.IFA_F_SECONDARY == 0 {
				return ip, nil
			}
		case ip.Is6() && ip.IsLinkLocalUnicast():
			if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) == 0 {
				return ip, nil
			}
			tentative = ip
		}
	}
	if tentative.IsValid() {
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: link-local address %v is tentative or failed duplicate address detection, not usable as a source yet", ifname, tentative)
	}
	if family == 6 {
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: no IPv6 link-local address", ifname)
	}
	return netip.Addr{}, fmt.Errorf("vrrpnet: %s: no IPv4 address", ifname)
}
