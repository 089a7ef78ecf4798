package netstate

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		in      Address
		wantErr string
		nodad   bool
	}{
		{name: "ipv4", in: Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", Label: "eth0:1", Scope: "link"}},
		{name: "ipv4 nodad ignored", in: Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", NoDAD: true}},
		{name: "ipv6 nodad forced", in: Address{Prefix: p("2001:db8::10/64"), Dev: "eth0"}, nodad: true},
		{name: "ipv4 peer", in: Address{Prefix: p("192.0.2.1/32"), Peer: p("192.0.2.2/32"), Dev: "eth0"}},
		{name: "numeric scope", in: Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", Scope: "253"}},
		{name: "no prefix", in: Address{Dev: "eth0"}, wantErr: "invalid or missing prefix"},
		{name: "no dev", in: Address{Prefix: p("192.0.2.10/24")}, wantErr: "no interface"},
		{name: "mapped", in: Address{Prefix: p("::ffff:192.0.2.10/120"), Dev: "eth0"}, wantErr: "IPv4-mapped"},
		{name: "bad scope", in: Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", Scope: "planet"}, wantErr: `scope "planet"`},
		{name: "long label", in: Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", Label: "eth0:0123456789ab"}, wantErr: "longer than 15"},
		{name: "v6 label", in: Address{Prefix: p("2001:db8::10/64"), Dev: "eth0", Label: "eth0:1"}, wantErr: "only for IPv4"},
		{name: "v6 brd", in: Address{Prefix: p("2001:db8::10/64"), Dev: "eth0", Broadcast: a("2001:db8::ff")}, wantErr: "no broadcast"},
		{name: "v6 brd on v4", in: Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", Broadcast: a("2001:db8::ff")}, wantErr: "not an IPv4"},
		{name: "peer with prefix", in: Address{Prefix: p("192.0.2.1/24"), Peer: p("192.0.2.2/32"), Dev: "eth0"}, wantErr: "belongs to the peer"},
		{name: "peer family", in: Address{Prefix: p("192.0.2.1/32"), Peer: p("2001:db8::2/128"), Dev: "eth0"}, wantErr: "same family"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalize(%v) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalize(%v): %v", tt.in, err)
			}
			if got.NoDAD != tt.nodad {
				t.Errorf("NoDAD = %v, want %v", got.NoDAD, tt.nodad)
			}
		})
	}
}

func TestAddressString(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		a    Address
		want string
	}{
		{Address{Prefix: p("192.0.2.10/24"), Dev: "eth0"}, "192.0.2.10/24 dev eth0"},
		{Address{Prefix: p("192.0.2.10/24"), Dev: "eth0", Broadcast: netip.MustParseAddr("192.0.2.255"), Scope: "link", Label: "eth0:1"},
			"192.0.2.10/24 dev eth0 brd 192.0.2.255 scope link label eth0:1"},
		{Address{Prefix: p("192.0.2.1/32"), Peer: p("192.0.2.2/32"), Dev: "ppp0"}, "192.0.2.1 peer 192.0.2.2/32 dev ppp0"},
		{Address{Prefix: p("2001:db8::10/64"), Dev: "eth0", NoDAD: true}, "2001:db8::10/64 dev eth0 nodad"},
	} {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]int{
		"": 0, "global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255, "17": 17, "0xfd": 253,
	} {
		got, err := parseScope(in)
		if err != nil || got != want {
			t.Errorf("parseScope(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"256", "-1", "Global", "lnk"} {
		if _, err := parseScope(in); err == nil {
			t.Errorf("parseScope(%q) succeeded, want error", in)
		}
	}
}
