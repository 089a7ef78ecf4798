// Package vrrpnet is vrrpd's VRRP I/O edge: the raw IP sockets that carry
// VRRP advertisements, and the gratuitous ARP and unsolicited Neighbor
// Advertisement senders that move a virtual address to a new master. It
// holds no protocol logic: encoding, checksums and validation are package
// vrrp's, the state machines are vrrpd's.
//
// # Sockets
//
// A [Conn] is one raw socket (raw(7)) for IP protocol 112 per interface and
// address family, shared by every VRRP instance on that interface; the
// caller demultiplexes received advertisements by VRID, as keepalived does.
// [Listen] applies what RFC 5798 §5.1 and §7 ask of the IP layer and what
// keepalived does on Linux:
//
//   - SO_BINDTODEVICE (socket(7)), so that only the interface's packets are
//     received and adverts leave through it whatever the routing table says;
//   - a join of the VRRP group (224.0.0.18, RFC 5798 §5.1.1.2, or ff02::12,
//     §5.1.2.2) on that interface, unless [Config.Unicast] (keepalived's
//     unicast_peer mode);
//   - IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off (ip(7), ipv6(7)): otherwise
//     Linux hands a raw socket every multicast group joined by any socket on
//     the host, so one interface's socket would see another's group;
//   - bind(2) to the group, or in unicast mode to [Config.Local]
//     (unicast_src_ip), as keepalived does: a multicast Conn receives no
//     unicast adverts, and a bound socket only packets for its address.
//     For IPv6 the bind is what makes the previous point work: Linux
//     applies group membership and IPV6_MULTICAST_ALL to bound raw IPv6
//     sockets only;
//   - multicast loop off, so a master does not read its own adverts;
//   - TTL / hop limit 255 for unicast and multicast (RFC 5798 §5.1.1.3,
//     §5.1.2.3), which receivers check (§7.1), and TOS / traffic class
//     0xc0 (internetwork control), as keepalived sets;
//   - on receive, the TTL (IPv4: from the IP header a raw IPv4 socket
//     returns; IPv6: IPV6_RECVHOPLIMIT) and the destination address
//     (IPv4: the header; IPv6: IPV6_RECVPKTINFO) and arrival interface;
//   - on send, the source address chosen per packet with IP_PKTINFO
//     (ip(7), ipi_spec_dst) or IPV6_PKTINFO (ipv6(7)), because the VRRPv3
//     checksum covers a pseudo-header with the source address (RFC 5798
//     §5.2.8): package vrrp computes it, so IPV6_CHECKSUM stays off and the
//     sender must name the source it encoded for (the primary address, the
//     IPv6 link-local address, or unicast_src_ip).
//
// [Conn.ReadFrom] and [Conn.WriteTo] allocate nothing in steady state: they
// call recvmsg(2) and sendmsg(2) through the runtime poller with buffers
// preallocated in the Conn, so [Conn.Close] unblocks a pending read.
//
// # Announcements
//
// An [Announcer] is a packet(7) socket on one interface that sends, per
// virtual address, the frames keepalived sends when it becomes master: a
// gratuitous ARP request (RFC 5227 §3 "ARP Announcement", RFC 5798 §6.4.1)
// and an unsolicited Neighbor Advertisement with the Override flag (RFC 4861
// §7.2.6). The ARP payload is marshalled by github.com/mdlayher/arp and
// the ICMPv6 message (with its checksum) by github.com/mdlayher/ndp; the
// Ethernet and IPv6 headers around them are written into a buffer owned by
// the Announcer and the frame goes out on the packet socket, so that a
// virtual MAC can be the source and the VIP can be the IPv6 source while
// still tentative, as keepalived sends them. Each frame costs a few small
// allocations in those libraries.
//
// # Capabilities
//
// Raw and packet sockets need CAP_NET_RAW; SO_RCVBUFFORCE uses CAP_NET_ADMIN
// when it is there and falls back to SO_RCVBUF (capped by
// net.core.rmem_max) otherwise. vrrpd holds both.
package vrrpnet
