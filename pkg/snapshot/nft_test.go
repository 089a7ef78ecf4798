package snapshot

import (
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/netstate"
)

func TestNFTGlobals(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		table    string
		priority int32
		counters bool
		ifindex  bool
	}{
		{name: "defaults", body: "router_id r", table: "vrrpkit", priority: -1},
		{name: "bare nftables keeps vrrpkit's name", body: "nftables", table: "vrrpkit", priority: -1},
		{name: "all set", body: "nftables fw\nnftables_priority 0\nnftables_counters\nnftables_ifindex",
			table: "fw", priority: 0, counters: true, ifindex: true},
		{name: "priority without nftables", body: "nftables_priority -300", table: "vrrpkit", priority: -300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ds := config.ParseBytes("k.conf", []byte("global_defs {\n"+tt.body+"\n}\n"), config.Options{})
			if ds.HasErrors() {
				t.Fatal(ds)
			}
			g := Build(cfg, "k.conf", 1).GetGlobal()
			if g.GetNftablesTable() != tt.table || g.GetNftablesPriority() != tt.priority ||
				g.GetNftablesCounters() != tt.counters || g.GetNftablesIfindex() != tt.ifindex {
				t.Errorf("got table=%q priority=%d counters=%v ifindex=%v, want %q %d %v %v",
					g.GetNftablesTable(), g.GetNftablesPriority(), g.GetNftablesCounters(), g.GetNftablesIfindex(),
					tt.table, tt.priority, tt.counters, tt.ifindex)
			}
		})
	}
	// The supervisor's default and vrrpd's must not drift apart.
	if defaultNFTTable != netstate.DefaultNFTTable || defaultNFTPriority != netstate.DefaultNFTPriority {
		t.Errorf("snapshot defaults %q/%d, netstate's %q/%d", defaultNFTTable, defaultNFTPriority, netstate.DefaultNFTTable, netstate.DefaultNFTPriority)
	}
}
