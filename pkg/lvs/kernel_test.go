package lvs

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

func TestServiceConversion(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		name string
		in   Service
		out  ipvs.Service
	}{
		{"plain TCP", Service{ServiceKey: ServiceKey{Family: INET, Protocol: TCP, Addr: v4, Port: 80}, Scheduler: "wlc"},
			ipvs.Service{Family: ipvs.INET, Protocol: ipvs.TCP, Address: v4, Port: 80, Scheduler: "wlc", Netmask: netmask.MaskFrom(32, 32)}},
		{"persistent with a netmask", Service{ServiceKey: ServiceKey{Family: INET, Protocol: UDP, Addr: v4, Port: 53}, Scheduler: "rr",
			Flags: FlagPersistent | 0x4, Timeout: 360 * time.Second, Netmask: netip.MustParsePrefix("255.255.255.0/32"), PEName: "sip"},
			ipvs.Service{Family: ipvs.INET, Protocol: ipvs.UDP, Address: v4, Port: 53, Scheduler: "rr",
				Flags: ipvs.ServicePersistent | ipvs.ServiceOnePacket, Timeout: 360, Netmask: netmask.MaskFrom4([4]byte{255, 255, 255, 0})}},
		{"IPv6 persistent /64", Service{ServiceKey: ServiceKey{Family: INET6, Protocol: SCTP, Addr: v6, Port: 9}, Scheduler: "sh",
			Flags: FlagPersistent, Timeout: time.Minute, Netmask: netip.MustParsePrefix("::/64")},
			ipvs.Service{Family: ipvs.INET6, Protocol: ipvs.SCTP, Address: v6, Port: 9, Scheduler: "sh",
				Flags: ipvs.ServicePersistent, Timeout: 60, Netmask: netmask.MaskFrom(64, 128)}},
		{"fwmark IPv6", Service{ServiceKey: ServiceKey{Family: INET6, Fwmark: 12}, Scheduler: "wrr"},
			ipvs.Service{Family: ipvs.INET6, FWMark: 12, Scheduler: "wrr", Netmask: netmask.MaskFrom(128, 128)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toIPVSService(tc.in)
			if got != tc.out {
				t.Errorf("toIPVSService:\n got %+v\nwant %+v", got, tc.out)
			}
			// What the kernel reports back (it adds HASHED) reads as the
			// same service, so Reconcile sees no change. The engine name is
			// not in cloudflare/ipvs's Service (see the report).
			back := got
			back.Flags |= ipvs.ServiceHashed
			want := tc.in
			want.PEName = ""
			if r := fromIPVSService(back); !sameService(r, want) {
				t.Errorf("fromIPVSService:\n got %+v\nwant %+v", r, want)
			}
		})
	}
	// The kernel may hand back an IPv4-mapped address; keys use plain IPv4.
	s := fromIPVSService(ipvs.Service{Family: ipvs.INET, Protocol: ipvs.TCP, Address: netip.MustParseAddr("::ffff:192.0.2.1"), Port: 80})
	if s.Addr != v4 {
		t.Errorf("mapped address kept: %v", s.Addr)
	}
}

func TestDestinationConversion(t *testing.T) {
	for _, tc := range []struct {
		in  Destination
		out ipvs.Destination
	}{
		{Destination{DestKey: DestKey{netip.MustParseAddr("10.0.0.1"), 80}, Method: NAT, Weight: 3, UThreshold: 100, LThreshold: 10},
			ipvs.Destination{Address: netip.MustParseAddr("10.0.0.1"), Port: 80, Family: ipvs.INET, FwdMethod: ipvs.Masquerade, Weight: 3, UpperThreshold: 100, LowerThreshold: 10}},
		{Destination{DestKey: DestKey{netip.MustParseAddr("10.0.0.2"), 0}, Method: DR},
			ipvs.Destination{Address: netip.MustParseAddr("10.0.0.2"), Family: ipvs.INET, FwdMethod: ipvs.DirectRoute}},
		{Destination{DestKey: DestKey{netip.MustParseAddr("2001:db8::2"), 80}, Method: Tunnel, Weight: 1, TunnelType: 1, TunnelPort: 6080, TunnelFlags: 1},
			ipvs.Destination{Address: netip.MustParseAddr("2001:db8::2"), Port: 80, Family: ipvs.INET6, FwdMethod: ipvs.Tunnel, Weight: 1,
				TunnelType: ipvs.GUE, TunnelPort: 6080, TunnelFlags: ipvs.TunnelEncapChecksum}},
	} {
		got := toIPVSDest(tc.in)
		if got != tc.out {
			t.Errorf("toIPVSDest(%v):\n got %+v\nwant %+v", tc.in, got, tc.out)
		}
		if back := fromIPVSDest(got); back != tc.in {
			t.Errorf("fromIPVSDest:\n got %+v\nwant %+v", back, tc.in)
		}
	}
	// Tunnel fields the kernel reports for a non-tunnel destination are not
	// settings: they must not make Reconcile edit it.
	d := fromIPVSDest(ipvs.Destination{Address: netip.MustParseAddr("10.0.0.1"), FwdMethod: ipvs.DirectRoute, TunnelType: ipvs.GRE})
	if d.TunnelType != 0 {
		t.Errorf("tunnel type kept on a DR destination: %+v", d)
	}
}
