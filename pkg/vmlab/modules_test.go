package vmlab

import (
	"reflect"
	"testing"
	"testing/fstest"
)

func testIndex(t *testing.T) *modIndex {
	t.Helper()
	fsys := fstest.MapFS{
		"modules.dep": {Data: []byte(`kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_wrr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/drivers/net/veth.ko:
`)},
		"modules.softdep": {Data: []byte("# Soft dependencies\nsoftdep libcrc32c pre: crc32c\n")},
		"modules.alias":   {Data: []byte("alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_intel\nalias crc32c crc32c_generic\nalias pci:v*d* foo\n")},
		"modules.builtin": {Data: []byte("kernel/drivers/net/loopback.ko\n")},
	}
	ix, err := readModIndex(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestResolveModules(t *testing.T) {
	ix := testIndex(t)
	base := []modLoad{
		{"kernel/arch/x86/crypto/crc32c-intel.ko", true},
		{"kernel/crypto/crc32c_generic.ko", true},
		{"kernel/lib/libcrc32c.ko", false},
		{"kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko", false},
		{"kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko", false},
		{"kernel/net/netfilter/nf_conntrack.ko", false},
		{"kernel/net/netfilter/ipvs/ip_vs.ko", false},
	}
	for _, tc := range []struct {
		name  string
		in    []string
		want  []modLoad
		isErr bool
	}{
		{"rr pulls the chain", []string{"ip_vs_rr"}, append(append([]modLoad{}, base...), modLoad{"kernel/net/netfilter/ipvs/ip_vs_rr.ko", false}), false},
		{"shared deps once", []string{"ip_vs_rr", "ip-vs-wrr"}, append(append([]modLoad{}, base...),
			modLoad{"kernel/net/netfilter/ipvs/ip_vs_rr.ko", false}, modLoad{"kernel/net/netfilter/ipvs/ip_vs_wrr.ko", false}), false},
		{"builtin skipped", []string{"loopback", "veth"}, []modLoad{{"kernel/drivers/net/veth.ko", false}}, false},
		{"unknown", []string{"nosuch"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ix.resolve(tc.in)
			if tc.isErr {
				if err == nil {
					t.Fatalf("resolve(%v) = %v, want error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("resolve(%v)\n got %v\nwant %v", tc.in, got, tc.want)
			}
		})
	}
}
