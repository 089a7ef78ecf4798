package snapshot

import (
	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// vrrpkit's defaults for the no_accept firewall. The table is vrrpkit's own
// name rather than keepalived's DEFAULT_NFTABLES_TABLE ("keepalived"), so a
// keepalived beside it keeps its table (netstate.DefaultNFTTable says why);
// the priority is keepalived's (core/global_parser.c:
// vrrp_nftables_handler).
const (
	defaultNFTTable    = "vrrpkit"
	defaultNFTPriority = -1
)

// nftGlobals folds the nftables global_defs into out, with the defaults
// applied: vrrpd always reads a table name and the priority to use.
// keepalived uses nftables for no_accept whether or not "nftables" is
// written (vrrp/vrrp.c: vrrp_complete_instance configures the default table
// when an instance needs a firewall), so the keyword itself carries nothing
// further.
func nftGlobals(g *config.GlobalDefs, out *pb.GlobalDefs) {
	out.NftablesTable = defaultNFTTable
	if g.NFTablesTable != "" {
		out.NftablesTable = g.NFTablesTable
	}
	out.NftablesPriority = defaultNFTPriority
	if g.NFTablesPriority != nil {
		out.NftablesPriority = *g.NFTablesPriority
	}
	out.NftablesCounters = g.NFTablesCounters
	out.NftablesIfindex = g.NFTablesIfindex
}
