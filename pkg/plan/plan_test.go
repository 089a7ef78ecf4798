package plan

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/snapshot"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const before = `vrrp_script chk {
    script "/bin/true"
    interval 2
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.200/24
        192.0.2.50/24
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    priority 100
    virtual_ipaddress {
        192.0.2.153/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.0.2 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`

const after = `vrrp_script chk {
    script "/bin/true"
    interval 5
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 110
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        192.0.2.200/24
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 54
    priority 100
    virtual_ipaddress {
        192.0.2.153/24
    }
}
vrrp_instance VI_4 {
    interface eth0
    virtual_router_id 55
    priority 100
    virtual_ipaddress {
        192.0.2.50/24
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.1 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.0.3 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 5
        }
    }
}
virtual_server fwmark 7 {
    lb_algo rr
    real_server 10.0.0.9 80 {
        weight 1
    }
}
`

func build(t *testing.T, text string, gen uint64) *pb.ConfigSnapshot {
	t.Helper()
	cfg, diags := config.ParseBytes("keepalived.conf", []byte(text), config.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return snapshot.Build(cfg, "keepalived.conf", gen)
}

// text is the plan as vrrpctl reload --dry-run prints it.
func text(t *testing.T, p Plan) string {
	t.Helper()
	var b strings.Builder
	if err := ctlview.WriteReloadText(&b, ctlview.ReloadFromProto(&pb.ReloadResponse{Accepted: true, DryRun: true, Generation: 2, Plan: p.Proto()})); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestPlanGolden: the plan of one reload that touches every section, as
// `vrrpctl reload --dry-run` prints it.
func TestPlanGolden(t *testing.T) {
	p := Make(build(t, before, 1), build(t, after, 2))
	got := text(t, p)
	path := filepath.Join("testdata", "plan.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestPlanGolden -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("plan text changed:\n--- got\n%s--- want\n%s", got, want)
	}
	if pr := p.Proto(); pr.GetInstancesAdded() != 1 || pr.GetInstancesChanged() != 2 || pr.GetInstancesRestarted() != 1 || len(pr.GetItems()) != len(p.Items) {
		t.Errorf("proto %v", pr)
	}
}

// TestPlanSameFile: reloading an unchanged file changes nothing (positions
// and generation do not count).
func TestPlanSameFile(t *testing.T) {
	p := Make(build(t, before, 1), build(t, "\n\n"+before, 2))
	if len(p.Items) != 0 || p.counts().unchanged != 3 {
		t.Errorf("same file, shifted by two lines:\n%s", text(t, p))
	}
}

// TestPlanFirst: at start everything is added.
func TestPlanFirst(t *testing.T) {
	p := Make(nil, build(t, before, 1))
	if len(p.Instances.Added) != 3 || p.Items[0].Op != Add {
		t.Errorf("first plan:\n%s", text(t, p))
	}
}
