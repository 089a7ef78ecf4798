package snapshot

import (
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// lvsGlobals carries the IPVS globals: lvs_sync_daemon (its sync id already
// resolved by config's validation), lvs_timeouts, lvs_flush and
// lvs_flush_on_stop.
func lvsGlobals(g *config.GlobalDefs, out *pb.GlobalDefs) {
	if s := g.LVSSyncDaemon; s != nil {
		d := &pb.LvsSyncDaemon{
			DefinedAt: s.Pos.String(), Interface: s.Interface, Instance: s.Instance,
			SyncId: uint32(s.SyncID), MaxLen: uint32(s.MaxLen), Port: uint32(s.Port), Ttl: uint32(s.TTL),
		}
		if s.Group.IsValid() {
			d.Group = s.Group.String()
		}
		out.LvsSyncDaemon = d
	}
	if len(g.LVSTimeouts) > 0 {
		t := &pb.LvsTimeouts{}
		for k, v := range g.LVSTimeouts {
			if v == 0 {
				// keepalived: zero leaves the kernel's value (ipvs_set_timeout).
				continue
			}
			d := durationpb.New(v.Std())
			switch k {
			case "tcp":
				t.Tcp = d
			case "tcpfin":
				t.Tcpfin = d
			case "udp":
				t.Udp = d
			}
		}
		if t.Tcp != nil || t.Tcpfin != nil || t.Udp != nil {
			out.LvsTimeouts = t
		}
	}
	out.LvsFlush = g.LVSFlush
	switch g.LVSFlushOnStop {
	case "full":
		out.LvsFlushOnStop = pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_FULL
	case "VS":
		out.LvsFlushOnStop = pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_VS
	}
}
