package snapshot

import (
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

func buildGlobal(t *testing.T, body string) *pb.GlobalDefs {
	t.Helper()
	cfg, diags := config.ParseBytes("k.conf", []byte(body), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return Build(cfg, "k.conf", 1).GetGlobal()
}

const lvsGlobalsInstance = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress { 10.0.0.1 }
}
`

func TestLVSGlobals(t *testing.T) {
	g := buildGlobal(t, `global_defs {
  lvs_sync_daemon eth1 VI_1 maxlen 1400 port 9000 ttl 3 group 224.0.0.82
  lvs_timeouts tcp 900 udp 30
  lvs_flush
  lvs_flush_on_stop VS
}
`+lvsGlobalsInstance)
	want := &pb.GlobalDefs{
		LvsSyncDaemon: &pb.LvsSyncDaemon{DefinedAt: "k.conf:2", Interface: "eth1", Instance: "VI_1", SyncId: 51,
			MaxLen: 1400, Port: 9000, Ttl: 3, Group: "224.0.0.82"},
		LvsTimeouts:    &pb.LvsTimeouts{Tcp: durationpb.New(900 * time.Second), Udp: durationpb.New(30 * time.Second)},
		LvsFlush:       true,
		LvsFlushOnStop: pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_VS,
	}
	g.RouterId, g.NftablesTable, g.NftablesPriority = "", "", 0 // not under test
	if !proto.Equal(g, want) {
		t.Errorf("got  %s\nwant %s", prototext.Format(g), prototext.Format(want))
	}

	g = buildGlobal(t, "global_defs {\n lvs_sync_daemon eth1 VI_1 id 0\n lvs_flush_on_stop\n}\n"+lvsGlobalsInstance)
	if d := g.GetLvsSyncDaemon(); d.GetSyncId() != 0 || d.GetInstance() != "VI_1" {
		t.Errorf("id 0: %v", d)
	}
	if g.GetLvsFlushOnStop() != pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_FULL || g.GetLvsFlush() || g.GetLvsTimeouts() != nil {
		t.Errorf("lvs_flush_on_stop alone: %v", prototext.Format(g))
	}

	g = buildGlobal(t, lvsGlobalsInstance)
	if g.GetLvsSyncDaemon() != nil || g.GetLvsTimeouts() != nil || g.GetLvsFlush() ||
		g.GetLvsFlushOnStop() != pb.LvsFlushOnStop_LVS_FLUSH_ON_STOP_UNSPECIFIED {
		t.Errorf("none set: %v", prototext.Format(g))
	}
}
