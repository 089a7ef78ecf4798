package config

import (
	"strings"
	"testing"
)

func TestGlobalDefsNFTables(t *testing.T) {
	p := func(v int32) *int32 { return &v }
	tests := []struct {
		name     string
		body     string
		nft      bool
		table    string
		priority *int32
		ifindex  bool
		counters bool
		warn     string // a piece of the one warning expected; "" for none
		err      string
	}{
		{name: "absent", body: "router_id r1"},
		{name: "bare", body: "nftables", nft: true},
		{name: "named", body: "nftables mytab", nft: true, table: "mytab"},
		{name: "all", body: "nftables t\nnftables_priority -10\nnftables_ifindex\nnftables_counters",
			nft: true, table: "t", priority: p(-10), ifindex: true, counters: true},
		{name: "priority alone", body: "nftables_priority 0", priority: p(0)},
		{name: "priority extremes", body: "nftables_priority -2147483648", priority: p(-2147483648)},
		{name: "priority out of range", body: "nftables_priority 2147483648", err: "not a whole number"},
		{name: "priority not a number", body: "nftables_priority high", err: "not a whole number"},
		// core/global_parser.c vrrp_nftables_handler resets the priority.
		{name: "priority before nftables is reset", body: "nftables_priority 5\nnftables t", nft: true, table: "t", warn: "resets the nftables_priority"},
		{name: "second nftables ignored", body: "nftables a\nnftables b", nft: true, table: "a", warn: "already specified"},
		{name: "name too long", body: "nftables " + strings.Repeat("x", 256), warn: "longer than 255"},
		{name: "extra words", body: "nftables a b", nft: true, table: "a", warn: "extra words"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ds := ParseBytes("nft.conf", []byte("global_defs {\n"+tt.body+"\n}\n"), Options{})
			var warns, errs []string
			for _, d := range ds {
				switch d.Severity {
				case Warning:
					warns = append(warns, d.Message)
				case Error:
					errs = append(errs, d.Message)
				}
			}
			if tt.err != "" {
				if len(errs) != 1 || !strings.Contains(errs[0], tt.err) {
					t.Fatalf("errors %q, want one with %q", errs, tt.err)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors: %q", errs)
			}
			switch {
			case tt.warn == "" && len(warns) > 0:
				t.Errorf("warnings %q, want none", warns)
			case tt.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0], tt.warn)):
				t.Errorf("warnings %q, want one with %q", warns, tt.warn)
			}
			g := cfg.GlobalDefs
			if g.NFTables != tt.nft || g.NFTablesTable != tt.table || g.NFTablesIfindex != tt.ifindex || g.NFTablesCounters != tt.counters {
				t.Errorf("got nftables=%v table=%q ifindex=%v counters=%v, want %v %q %v %v",
					g.NFTables, g.NFTablesTable, g.NFTablesIfindex, g.NFTablesCounters, tt.nft, tt.table, tt.ifindex, tt.counters)
			}
			switch {
			case (g.NFTablesPriority == nil) != (tt.priority == nil):
				t.Errorf("priority %v, want %v", g.NFTablesPriority, tt.priority)
			case g.NFTablesPriority != nil && *g.NFTablesPriority != *tt.priority:
				t.Errorf("priority %d, want %d", *g.NFTablesPriority, *tt.priority)
			}
			for _, ig := range g.Ignored {
				if strings.HasPrefix(ig.Keyword, "nftables") {
					t.Errorf("%s is in Ignored", ig.Keyword)
				}
			}
		})
	}
}
