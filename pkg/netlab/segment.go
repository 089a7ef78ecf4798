package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Hosts get host numbers 1..maxHosts; vipBase+1..vipBase+maxVIPs are kept
// for VIPs.
const (
	maxHosts = 199
	vipBase  = 200
	maxVIPs  = 54
)

// Segment is one layer-2 network: a bridge in the lab's switch namespace.
// Its IPv4 subnet is 192.0.2.0/24 and its IPv6 subnet 2001:db8:<n>::/64.
type Segment struct {
	lab    *Lab
	name   string
	n      int    // 1-based, in creation order
	bridge string // "br-<name>"

	hosts int // hosts attached so far; guarded by lab.mu
}

// Segment creates a bridge named "br-<name>" in the lab's switch namespace,
// with multicast snooping off (so VRRP multicast floods to every port), STP
// off and no forwarding delay. name is 1-12 of [a-z0-9-], starting with a
// letter, unique among the lab's segments and hosts.
func (l *Lab) Segment(name string) *Segment {
	l.t.Helper()
	l.claim("segment", name)
	l.mu.Lock()
	s := &Segment{lab: l, name: name, n: len(l.segs) + 1, bridge: "br-" + name}
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	if s.n > 255 { // one byte of the hosts' MACs
		l.t.Fatalf("netlab: segment %s: a lab has at most 255 segments", name)
	}
	if err := ipBatch(l.prefix,
		fmt.Sprintf("link add %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0", s.bridge),
		fmt.Sprintf("link set %s up", s.bridge),
	); err != nil {
		l.t.Fatalf("netlab: segment %s: %v", name, err)
	}
	return s
}

// portState returns the bridge port state ("disabled", "forwarding", ...)
// of interface port in the switch namespace, or "" if it is not a port.
func (l *Lab) portState(port string) (string, error) {
	out, err := runCmd(context.Background(), nil, "ip", "-n", l.prefix, "-j", "-d", "link", "show", "dev", port)
	if err != nil {
		return "", err
	}
	var links []struct {
		Linkinfo struct {
			SlaveData struct {
				State string `json:"state"`
			} `json:"info_slave_data"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return "", fmt.Errorf("ip -n %s -j -d link show dev %s: %v\n%s", l.prefix, port, err, out)
	}
	return links[0].Linkinfo.SlaveData.State, nil
}

// Name returns the segment's name.
func (s *Segment) Name() string { return s.name }

// Bridge returns the bridge's interface name in the lab's switch namespace
// ([Lab.SwitchNetns]).
func (s *Segment) Bridge() string { return s.bridge }

// Prefix4 returns the segment's IPv4 subnet, 192.0.2.0/24.
func (s *Segment) Prefix4() netip.Prefix { return netip.MustParsePrefix("192.0.2.0/24") }

// Prefix6 returns the segment's IPv6 subnet, 2001:db8:<n>::/64.
func (s *Segment) Prefix6() netip.Prefix {
	return netip.PrefixFrom(s.addr6(0), 64)
}

// VIP4 returns the k-th address kept for VIPs (k = 1..54): 192.0.2.200+k.
// No host is ever given one.
func (s *Segment) VIP4(k int) netip.Addr {
	s.lab.t.Helper()
	if k < 1 || k > maxVIPs {
		s.lab.t.Fatalf("netlab: segment %s: VIP4(%d): k must be 1..%d", s.name, k, maxVIPs)
	}
	return s.addr4(vipBase + k)
}

// VIP6 returns the k-th IPv6 address kept for VIPs (k = 1..54):
// 2001:db8:<n>::100+k in hex, e.g. 2001:db8:1::101 for k = 1.
// No host is ever given one.
func (s *Segment) VIP6(k int) netip.Addr {
	s.lab.t.Helper()
	if k < 1 || k > maxVIPs {
		s.lab.t.Fatalf("netlab: segment %s: VIP6(%d): k must be 1..%d", s.name, k, maxVIPs)
	}
	return s.addr6(0x100 + k)
}

// addr4 returns 192.0.2.i.
func (s *Segment) addr4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
}

// addr6 returns 2001:db8:<n>::i.
func (s *Segment) addr6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{
		0x20, 0x01, 0x0d, 0xb8, byte(s.n >> 8), byte(s.n),
		14: byte(i >> 8), 15: byte(i),
	})
}
