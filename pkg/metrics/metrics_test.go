package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the collector")

// fixture is a supervisor status of the shapes the collector handles (its
// own, so that other views' fixtures can change without touching this
// golden file): a refused reload; a running and a stopped child; a MASTER
// with drops, trackers and two peers; a BACKUP absent from the
// configuration; a FAULT without VIPs; a NAT virtual server with a healthy
// and a failed real server, and a DR fwmark one without quorum. The
// configuration gives the MASTER a VIP on another dev and an excluded one.
func fixture() Snapshot {
	at := func(s string) *timestamppb.Timestamp {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err) // a typo in this file
		}
		return timestamppb.New(t)
	}
	st := &pb.SupervisorStatusResponse{
		Generation: 3, ConfigLoadedAt: at("2026-03-14T09:26:53.589793238Z"), Version: "v0.3.0",
		LastReloadFailure: &pb.ReloadFailure{At: at("2026-03-14T10:30:00.5Z"), Errors: []string{"keepalived.conf:12: error: ..."}},
		Children: []*pb.ChildStatus{
			{Name: "vrrpd", Pid: 4242, Running: true, Generation: 3, Restarts: 1},
			{Name: "checkerd"},
		},
		Instances: []*pb.InstanceStatus{
			{
				Name: "VI_WEB", State: pb.VrrpState_VRRP_STATE_MASTER, Priority: 150, EffectivePriority: 140,
				VirtualIpaddress: []string{"192.0.2.100/32", "2001:db8::100/128"},
				Interface:        "eth0", Vrid: 51, StateSince: at("2026-03-14T09:20:01.25Z"),
				Tracking: []*pb.TrackedStatus{
					{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "chk_nginx", Weight: -10, Delta: -10},
					{Kind: pb.TrackerKind_TRACKER_KIND_INTERFACE, Name: "eth1", Up: true},
				},
				Counters: &pb.InstanceCounters{
					AdvertsSent: 1520, AdvertsReceived: 12, PriorityZeroReceived: 1, BecameMaster: 2, ReleasedMaster: 1,
					LowerPriorityMasterHeard: 3, ResumedLate: 1, SocketUnknownVrid: 7, SocketBadPackets: 2, OtherMasterHeard: 4,
					Drops: []*pb.DropCount{{Reason: "bad_ttl", Count: 3}, {Reason: "auth_mismatch", Count: 1},
						{Reason: "too_short", Count: 2}, {Reason: "bad_length", Count: 5}},
				},
				Peers: []*pb.PeerStatus{
					{Address: "192.0.2.2", Priority: 100, LastHeard: at("2026-03-14T09:26:59.5Z"), Adverts: 12},
					{Address: "192.0.2.3", Priority: 0},
				},
			},
			{
				Name: "VI_DNS", State: pb.VrrpState_VRRP_STATE_BACKUP, Priority: 100, EffectivePriority: 100,
				Interface: "eth1", Vrid: 52, StateSince: at("2026-03-14T09:20:04.75Z"),
				Counters: &pb.InstanceCounters{AdvertsReceived: 1500},
			},
			{
				Name: "VI_DB", State: pb.VrrpState_VRRP_STATE_FAULT, Priority: 90, EffectivePriority: 90,
				Interface: "bond0", Vrid: 53, StateSince: at("2026-03-14T09:20:01Z"),
			},
		},
		VirtualServers: []*pb.VirtualServerStatus{
			{Name: "192.0.2.100:80/TCP", QuorumUp: true, RealServers: []*pb.RealServerStatus{
				{Address: "10.0.1.1", Port: 80, Weight: 3, Healthy: true},
				{Address: "10.0.1.2", Port: 80},
			}, SorryServer: &pb.RealServerStatus{Address: "10.0.9.9", Port: 80, Healthy: true}},
			{Name: "fwmark 5", RealServers: []*pb.RealServerStatus{{Address: "2001:db8::10"}}},
		},
	}
	cfg := &pb.ConfigSnapshot{Generation: 3, Instances: []*pb.VrrpInstance{
		{Name: "VI_WEB", Interface: "eth0", Vrid: 51,
			VirtualIpaddress: []*pb.VirtualAddress{
				{Prefix: "192.0.2.100/32"}, {Prefix: "192.0.2.101/24", Dev: "eth2"},
			},
			VirtualIpaddressExcluded: []*pb.VirtualAddress{{Prefix: "2001:db8::100/128"}},
			Garp:                     &pb.GarpSettings{MasterDelay: durationpb.New(5 * time.Second)},
		},
		{Name: "VI_DB", Interface: "bond0", Vrid: 53},
	}}
	return Snapshot{Status: st, Config: cfg, VrrpdUp: true}
}

func fixtureEvents() *Events {
	e := NewEvents()
	for _, ev := range []*pb.WatchEvent{
		{Event: &pb.WatchEvent_Vrrp{Vrrp: &pb.VrrpEvent{Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{
			Instance: "VI_WEB", From: pb.VrrpState_VRRP_STATE_INIT, To: pb.VrrpState_VRRP_STATE_BACKUP}}}}},
		{Event: &pb.WatchEvent_Vrrp{Vrrp: &pb.VrrpEvent{Event: &pb.VrrpEvent_Transition{Transition: &pb.StateTransition{
			Instance: "VI_WEB", From: pb.VrrpState_VRRP_STATE_BACKUP, To: pb.VrrpState_VRRP_STATE_MASTER}}}}},
		{Event: &pb.WatchEvent_Vrrp{Vrrp: &pb.VrrpEvent{Event: &pb.VrrpEvent_Address{Address: &pb.AddressChange{Instance: "VI_WEB"}}}}},
		{Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: true, Generation: 2}}},
		{Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: true, Generation: 3}}},
		{Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: false, Generation: 3}}},
		{Event: &pb.WatchEvent_Reload{Reload: &pb.ReloadResponse{Accepted: true, DryRun: true}}},
		{Event: &pb.WatchEvent_Health{Health: &pb.HealthEvent{Event: &pb.HealthEvent_Result{Result: &pb.TrackerResult{
			Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "chk_nginx"}}}}},
	} {
		e.Observe(ev)
	}
	return e
}

func TestLint(t *testing.T) {
	for name, snap := range map[string]Snapshot{"fixture": fixture(), "empty": {}, "vrrpd down": {Status: &pb.SupervisorStatusResponse{Generation: 1}}} {
		c := New(func() Snapshot { return snap }, fixtureEvents())
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
	}
}

// TestGolden compares the whole exposition of the fixture with
// testdata/fixture.golden (go test -update rewrites it).
func TestGolden(t *testing.T) {
	snap := fixture()
	c := New(func() Snapshot { return snap }, fixtureEvents())
	golden := filepath.Join("testdata", "fixture.golden")
	if *update {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, bytes.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestKeepalivedExporterNames pins the parts of keepalived-exporter's
// contract that dashboards depend on, independently of the golden file:
// names, labels and the state encoding (2 is MASTER).
func TestKeepalivedExporterNames(t *testing.T) {
	snap := fixture()
	c := New(func() Snapshot { return snap }, nil)
	want := `
# HELP keepalived_vrrp_state State of vrrp
# TYPE keepalived_vrrp_state gauge
keepalived_vrrp_state{iname="VI_DB",intf="bond0",ip_address="",vrid="53"} 3
keepalived_vrrp_state{iname="VI_DNS",intf="eth1",ip_address="",vrid="52"} 1
keepalived_vrrp_state{iname="VI_WEB",intf="eth0",ip_address="192.0.2.100",vrid="51"} 2
keepalived_vrrp_state{iname="VI_WEB",intf="eth2",ip_address="192.0.2.101/24",vrid="51"} 2
# HELP keepalived_vrrp_excluded_state State of vrrp with excluded VIP
# TYPE keepalived_vrrp_excluded_state gauge
keepalived_vrrp_excluded_state{iname="VI_WEB",intf="eth0",ip_address="2001:db8::100",vrid="51"} 2
# HELP keepalived_packet_length_errors_total Packet length errors
# TYPE keepalived_packet_length_errors_total counter
keepalived_packet_length_errors_total{iname="VI_DB",intf="bond0",vrid="53"} 0
keepalived_packet_length_errors_total{iname="VI_DNS",intf="eth1",vrid="52"} 0
keepalived_packet_length_errors_total{iname="VI_WEB",intf="eth0",vrid="51"} 7
# HELP keepalived_up Status
# TYPE keepalived_up gauge
keepalived_up 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"keepalived_vrrp_state", "keepalived_vrrp_excluded_state", "keepalived_packet_length_errors_total", "keepalived_up"); err != nil {
		t.Error(err)
	}
}

// With use_vmac, keepalived-exporter's intf is the VMAC (keepalived's
// vrrp->ifp), and so is the dev of addresses that name none; vrrpkit's own
// names keep the configured interface.
func TestUseVmac(t *testing.T) {
	st := &pb.SupervisorStatusResponse{Instances: []*pb.InstanceStatus{{Name: "VI_1", State: pb.VrrpState_VRRP_STATE_BACKUP,
		Interface: "eth0", Vrid: 51, Counters: &pb.InstanceCounters{AdvertsReceived: 9}}}}
	cfg := &pb.ConfigSnapshot{Instances: []*pb.VrrpInstance{{Name: "VI_1", Interface: "eth0", Vrid: 51, UseVmac: true, VmacInterface: "vrrp.51",
		VirtualIpaddress: []*pb.VirtualAddress{{Prefix: "10.0.0.1/32"}, {Prefix: "10.0.1.1/24", Dev: "eth1"}}}}}
	c := New(func() Snapshot { return Snapshot{Status: st, Config: cfg, VrrpdUp: true} }, nil)
	want := `
# HELP keepalived_advertisements_received_total Advertisements received
# TYPE keepalived_advertisements_received_total counter
keepalived_advertisements_received_total{iname="VI_1",intf="vrrp.51",vrid="51"} 9
# HELP keepalived_vrrp_state State of vrrp
# TYPE keepalived_vrrp_state gauge
keepalived_vrrp_state{iname="VI_1",intf="eth1",ip_address="10.0.1.1/24",vrid="51"} 1
keepalived_vrrp_state{iname="VI_1",intf="vrrp.51",ip_address="10.0.0.1",vrid="51"} 1
# HELP vrrpkit_vrrp_adverts_received_total VRRP adverts the instance accepted.
# TYPE vrrpkit_vrrp_adverts_received_total counter
vrrpkit_vrrp_adverts_received_total{interface="eth0",vrid="51",vrrp_instance="VI_1"} 9
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"keepalived_advertisements_received_total", "keepalived_vrrp_state", "vrrpkit_vrrp_adverts_received_total"); err != nil {
		t.Error(err)
	}
}

// A vrrpd that is down leaves only what the supervisor knows itself.
func TestVrrpdDown(t *testing.T) {
	snap := Snapshot{Status: &pb.SupervisorStatusResponse{Generation: 2, Version: "dev",
		Children: []*pb.ChildStatus{{Name: "vrrpd", Restarts: 4}}}}
	c := New(func() Snapshot { return snap }, nil)
	want := `
# HELP keepalived_up Status
# TYPE keepalived_up gauge
keepalived_up 0
# HELP vrrpkit_child_restarts_total Times the supervisor restarted the child since it started.
# TYPE vrrpkit_child_restarts_total counter
vrrpkit_child_restarts_total{child="vrrpd"} 4
# HELP vrrpkit_config_generation Generation of the running (last accepted) configuration; it rises by one per accepted reload.
# TYPE vrrpkit_config_generation gauge
vrrpkit_config_generation 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"keepalived_up", "vrrpkit_child_restarts_total", "vrrpkit_config_generation", "vrrpkit_vrrp_state", "keepalived_vrrp_state"); err != nil {
		t.Error(err)
	}
}

// Names lists every family the fixture exports and no other.
func TestNames(t *testing.T) {
	snap := fixture()
	c := New(func() Snapshot { return snap }, fixtureEvents())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := Names()
	if len(names) != len(allDescs) {
		t.Fatalf("Names() = %d names, want %d: %v", len(names), len(allDescs), names)
	}
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			t.Errorf("exported %s, not in Names()", mf.GetName())
		}
	}
	if len(mfs) != len(names) {
		t.Errorf("the fixture exports %d families, Names() has %d", len(mfs), len(names))
	}
}

func TestKeepalivedAddress(t *testing.T) {
	for in, want := range map[string]string{
		"10.9.0.1/32": "10.9.0.1", "10.9.0.2/24": "10.9.0.2/24", "2001:db8::1/128": "2001:db8::1",
		"2001:db8::2/64": "2001:db8::2/64", "10.0.0.7": "10.0.0.7", "junk": "junk",
	} {
		if got := keepalivedAddress(in); got != want {
			t.Errorf("keepalivedAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// Invalid UTF-8 in a name makes that series invalid, not a panic.
func TestBadLabelValue(t *testing.T) {
	snap := Snapshot{Status: &pb.SupervisorStatusResponse{Children: []*pb.ChildStatus{{Name: "bad\xff"}}}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(func() Snapshot { return snap }, nil))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("Gather() error = %v, want one about UTF-8", err)
	}
}
