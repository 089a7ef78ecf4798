package kadump

import (
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/snapshot"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// The testdata files were written by keepalived 2.2.7 (Debian) run on
// testdata/keepalived.conf in a network namespace with eth0 10.0.0.1/24
// (and, for the master capture, its veth peer eth1 beside it), on SIGUSR1
// and SIGUSR2: keepalived-master.* alone on the link (both instances
// MASTER), keepalived-backup.* with a priority 200 peer at 10.0.0.2
// (both BACKUP).

func loadSnapshot(t *testing.T) *pb.ConfigSnapshot {
	t.Helper()
	return loadSnapshotFile(t, "testdata/keepalived.conf")
}

func loadSnapshotFile(t *testing.T, file string) *pb.ConfigSnapshot {
	t.Helper()
	cfg, diags := config.Parse(file, config.Options{})
	if diags.HasErrors() {
		t.Fatalf("parse: %v", diags)
	}
	return snapshot.Build(cfg, file, 1)
}

// fixtureStatus is what vrrpd reports for the capture's situation.
func fixtureStatus(master bool) *pb.SupervisorStatusResponse {
	since := timestamppb.New(time.Date(2026, 12, 2, 4, 25, 29, 667176000, time.UTC))
	state, addr := pb.VrrpState_VRRP_STATE_BACKUP, "10.0.0.2"
	if master {
		state, addr = pb.VrrpState_VRRP_STATE_MASTER, "10.0.0.1"
	}
	peers := func(interval time.Duration) []*pb.PeerStatus {
		if master {
			return nil
		}
		return []*pb.PeerStatus{{Address: "10.0.0.2", Priority: 200, AdvertInterval: durationpb.New(interval), Adverts: 6}}
	}
	return &pb.SupervisorStatusResponse{
		Generation: 1,
		Instances: []*pb.InstanceStatus{
			{
				Name: "VI_1", State: state, Priority: 100, EffectivePriority: 100, MasterAddr: addr, Interface: "eth0", Vrid: 51,
				StateSince: since, VirtualIpaddress: []string{"10.0.0.100/24"}, Peers: peers(time.Second),
				Counters: &pb.InstanceCounters{AdvertsSent: 5, BecameMaster: 1, Drops: []*pb.DropCount{{Reason: "auth_mismatch", Count: 2}, {Reason: "too_short", Count: 1}, {Reason: "bad_length", Count: 3}}},
			},
			{
				Name: "VI_2", State: state, Priority: 150, EffectivePriority: 150, MasterAddr: addr, Interface: "eth0", Vrid: 52,
				StateSince: since, VirtualIpaddress: []string{"10.0.0.101/24", "10.0.0.102/24"}, Peers: peers(500 * time.Millisecond),
				Counters: &pb.InstanceCounters{AdvertsSent: 13, BecameMaster: 1},
			},
		},
	}
}

var fixtureInterfaces = []Interface{
	{Name: "lo", Index: 1, IPv4: "127.0.0.1", Up: true, Running: true, Loopback: true, MTU: 65536, HWType: "LOOPBACK"},
	{Name: "eth0", Index: 3, IPv4: "10.0.0.1", IPv6: "fe80::8eb:5ff:fe44:2b29", MAC: "0a:eb:05:44:2b:29", Broadcast: "ff:ff:ff:ff:ff:ff",
		Up: true, Running: true, Broadcasting: true, Multicast: true, MTU: 1500, HWType: "ETHERNET"},
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func compareData(t *testing.T, got, want string) {
	t.Helper()
	for _, d := range DiffData(got, want) {
		t.Error(d)
	}
}

func compareStats(t *testing.T, got, want string) {
	t.Helper()
	for _, d := range DiffStats(got, want) {
		t.Error(d)
	}
}

func TestDataMatchesKeepalived(t *testing.T) {
	snap := loadSnapshot(t)
	for _, tc := range []struct {
		name   string
		master bool
		file   string
		lines  []string
	}{
		{"master", true, "testdata/keepalived-master.data", []string{
			"   State = MASTER", "     10.0.0.100/24 dev eth0 scope global set", "   Master down timer = 3609375 usecs",
			"   Master down timer = 1707031 usecs", "   Advert interval = 500 milli-sec", "   Preempt = disabled", "   Password = secret",
			"   Last transition = 1796185529.667176 (Wed Dec  2 04:25:29.667176 2026)", "     VI_2 vrid 52",
		}},
		{"backup", false, "testdata/keepalived-backup.data", []string{
			"   State = BACKUP", "   Master router = 10.0.0.2", "   Master priority = 200", "   Master advert int = 0.50 sec",
			"   Master advert interval = 500 milli-sec", "     10.0.0.101/24 dev eth0 scope global", "   Using src_ip = 10.0.0.1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Data(Input{Status: fixtureStatus(tc.master), Config: snap, Interfaces: fixtureInterfaces, Location: time.UTC})
			compareData(t, got, readFile(t, tc.file))
			// Values vrrpkit knows are keepalived's too (the structure
			// test above ignores values).
			for _, line := range tc.lines {
				if !strings.Contains(got, line+"\n") {
					t.Errorf("no line %q", line)
				}
			}
			if t.Failed() {
				t.Logf("vrrpkit's rendering:\n%s", got)
			}
		})
	}
}

func TestStatsMatchesKeepalived(t *testing.T) {
	for _, tc := range []struct {
		name   string
		master bool
		file   string
	}{
		{"master", true, "testdata/keepalived-master.stats"},
		{"backup", false, "testdata/keepalived-backup.stats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Stats(fixtureStatus(tc.master))
			compareStats(t, got, readFile(t, tc.file))
			// VI_1's drops: too_short 1 + bad_length 3, auth_mismatch 2.
			for _, line := range []string{"    Sent: 5\n  Became master: 1\n", "    Length: 4\n", "    Failure: 2\n", "VRRP Instance: VI_2\n  Advertisements:\n    Received: 0\n    Sent: 13\n"} {
				if !strings.Contains(got, line) {
					t.Errorf("no %q in\n%s", line, got)
				}
			}
		})
	}
}

// TestSkeletonDetectsDifferences: the comparison fails on a missing key, a
// key out of order, an extra section and a global keepalived does not
// have.
func TestSkeletonDetectsDifferences(t *testing.T) {
	want := readFile(t, "testdata/keepalived-master.data")
	inst := func(text string) []string {
		return ParseSkeleton(text).Section("VRRP Topology").Entries[0].Keys
	}
	if d := SameKeys(inst(strings.Replace(want, "   Wantstate = MASTER\n", "", 1)), inst(want)); !strings.Contains(d, "Number of config faults") {
		t.Errorf("a missing Wantstate: %q", d)
	}
	swapped := strings.Replace(want, "   Priority = 100\n   Effective priority = 100\n", "   Effective priority = 100\n   Priority = 100\n", 1)
	if d := SameKeys(inst(swapped), inst(want)); d == "" {
		t.Error("swapped Priority and Effective priority: no difference found")
	}
	if h := ParseSkeleton(want + "------< VRRP Scripts >------\n VRRP Script = x\n").Headers(); len(h) != 5 || h[4] != "VRRP Scripts" {
		t.Errorf("headers %q", h)
	}
	globals := ParseSkeleton(want).Section("Global definitions").LineKeys()
	if d := Subsequence([]string{" Router ID", " Network namespace"}, globals); d == "" {
		t.Error("globals out of order: no difference found")
	}
	if d := Subsequence([]string{" Router ID", " No such global"}, globals); d == "" {
		t.Error("unknown global: no difference found")
	}
	if d := Subsequence([]string{" Network namespace", " Router ID", " VRRP strict mode"}, globals); d != "" {
		t.Errorf("globals in order: %s", d)
	}
	if d := DiffData(want, want); len(d) != 0 {
		t.Errorf("keepalived's file against itself: %q", d)
	}
	noPool := want[:strings.Index(want, "------< VRRP Sockpool >------")] + want[strings.Index(want, "------< Interfaces >------"):]
	if d := DiffData(noPool, want); len(d) < 2 {
		t.Errorf("without the VRRP Sockpool section: %q, want the sections and the missing section", d)
	}
	stats := readFile(t, "testdata/keepalived-master.stats")
	if d := DiffStats(strings.Replace(stats, "    TTL: 0\n", "", 1), stats); len(d) != 1 {
		t.Errorf("stats without a TTL line: %q", d)
	}
}

// TestDataFullMatchesKeepalived: testdata/keepalived-full.conf has a sync
// group (VI_1, VI_2), a unicast instance (VI_3) tracking a vrrp_script and
// a track_file, notify_master, virtual_ipaddress_excluded and
// track_interface; keepalived-full.data is keepalived's dump of it with
// the three instances MASTER (the file's path rewritten).
func TestDataFullMatchesKeepalived(t *testing.T) {
	snap := loadSnapshotFile(t, "testdata/keepalived-full.conf")
	since := timestamppb.New(time.Date(2026, 12, 2, 4, 38, 54, 0, time.UTC))
	inst := func(name string, vrid, prio uint32, vips ...string) *pb.InstanceStatus {
		return &pb.InstanceStatus{Name: name, State: pb.VrrpState_VRRP_STATE_MASTER, Priority: prio, EffectivePriority: prio, MasterAddr: "10.0.0.1",
			Interface: "eth0", Vrid: vrid, StateSince: since, VirtualIpaddress: vips, Counters: &pb.InstanceCounters{AdvertsSent: 3, BecameMaster: 1}}
	}
	vi1 := inst("VI_1", 51, 100, "10.0.0.100/24", "10.0.1.100/24")
	vi1.SyncGroup = "G1"
	vi2 := inst("VI_2", 52, 150, "10.0.0.101/24")
	vi2.SyncGroup = "G1"
	vi3 := inst("VI_3", 53, 120, "10.0.0.103/24")
	vi3.Tracking = []*pb.TrackedStatus{
		{Kind: pb.TrackerKind_TRACKER_KIND_SCRIPT, Name: "chk", Weight: 10, Up: true, Delta: 10},
		{Kind: pb.TrackerKind_TRACKER_KIND_FILE, Name: "tf", Weight: 3, Up: true, Delta: 0},
	}
	st := &pb.SupervisorStatusResponse{Generation: 1, Instances: []*pb.InstanceStatus{vi1, vi2, vi3}}
	ifaces := append([]Interface{fixtureInterfaces[0], {Name: "eth1", Index: 2, IPv6: "fe80::ec0a:ffff:fe98:d279", MAC: "ee:0a:ff:98:d2:79",
		Broadcast: "ff:ff:ff:ff:ff:ff", Up: true, Running: true, Broadcasting: true, Multicast: true, MTU: 1500, HWType: "ETHERNET"}}, fixtureInterfaces[1])
	got := Data(Input{Status: st, Config: snap, Interfaces: ifaces, Location: time.UTC})
	want := readFile(t, "testdata/keepalived-full.data")
	compareData(t, got, want)
	// The sections keepalived prints only for what is configured: the
	// same entries with the same keys.
	g, w := ParseSkeleton(got), ParseSkeleton(want)
	for _, header := range []string{"VRRP Sync groups", "VRRP Scripts", "VRRP Track files"} {
		gs, ws := g.Section(header), w.Section(header)
		if gs == nil || ws == nil {
			t.Errorf("%s: vrrpkit %v, keepalived %v", header, gs != nil, ws != nil)
			continue
		}
		if len(gs.Entries) != len(ws.Entries) {
			t.Errorf("%s: %d entries, keepalived %d", header, len(gs.Entries), len(ws.Entries))
			continue
		}
		for i := range gs.Entries {
			if gs.Entries[i].Raw != ws.Entries[i].Raw {
				t.Errorf("%s entry %d: %q, keepalived %q", header, i, gs.Entries[i].Raw, ws.Entries[i].Raw)
			}
			if d := SameKeys(gs.Entries[i].Keys, ws.Entries[i].Keys); d != "" {
				t.Errorf("%s %s: %s", header, gs.Entries[i].Raw, d)
			}
		}
	}
	for _, line := range []string{"     10.0.0.9 min_ttl 0 max_ttl 255\n", "   Using src_ip = 10.0.0.1 (from configuration)\n", "     VI_3, weight 10\n", "     tf, weight 3\n",
		" VRRP Sync Group = G1, MASTER\n", "   Type = Unicast\n   Address = 10.0.0.1\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("no line %q", line)
		}
	}
	if t.Failed() || os.Getenv("KADUMP_SHOW") != "" {
		t.Logf("vrrpkit's rendering:\n%s", got)
	}
	compareStats(t, Stats(st), readFile(t, "testdata/keepalived-full.stats"))
}

// TestDataV6VmacMatchesKeepalived: keepalived-v6vmac.conf has a native
// IPv6 instance (V6) and a VRRPv2 one on a VMAC with preempt_delay (VM),
// both MASTER in keepalived's dump.
func TestDataV6VmacMatchesKeepalived(t *testing.T) {
	snap := loadSnapshotFile(t, "testdata/keepalived-v6vmac.conf")
	since := timestamppb.New(time.Date(2026, 12, 2, 4, 41, 3, 0, time.UTC))
	st := &pb.SupervisorStatusResponse{Generation: 1, Instances: []*pb.InstanceStatus{
		{Name: "V6", State: pb.VrrpState_VRRP_STATE_MASTER, Priority: 100, EffectivePriority: 100, MasterAddr: "fe80::e8cb:a9ff:fe5a:8c6e",
			Interface: "eth0", Vrid: 61, StateSince: since, VirtualIpaddress: []string{"2001:db8::100/64"}},
		{Name: "VM", State: pb.VrrpState_VRRP_STATE_MASTER, Priority: 100, EffectivePriority: 100, MasterAddr: "10.0.0.1",
			Interface: "eth0", Vrid: 62, StateSince: since, VirtualIpaddress: []string{"10.0.0.110/24"}},
	}}
	eth := func(name string, index int, v4, v6, mac string) Interface {
		return Interface{Name: name, Index: index, IPv4: v4, IPv6: v6, MAC: mac, Broadcast: "ff:ff:ff:ff:ff:ff",
			Up: true, Running: true, Broadcasting: true, Multicast: true, MTU: 1500, HWType: "ETHERNET"}
	}
	ifaces := []Interface{fixtureInterfaces[0], eth("eth1", 2, "", "fe80::301b:2bff:fe04:8ecc", "32:1b:2b:04:8e:cc"),
		eth("eth0", 3, "10.0.0.1", "fe80::e8cb:a9ff:fe5a:8c6e", "ea:cb:a9:5a:8c:6e"), eth("vrrp.62", 4, "10.0.0.110", "", "00:00:5e:00:01:3e")}
	got := Data(Input{Status: st, Config: snap, Interfaces: ifaces, Location: time.UTC})
	compareData(t, got, readFile(t, "testdata/keepalived-v6vmac.data"))
	for _, line := range []string{
		"   Using Native IPv6\n", "   Multicast address ff02::12, ifindex 3\n", "   Using src_ip = fe80::e8cb:a9ff:fe5a:8c6e\n",
		"     2001:db8::100/64 dev eth0 scope global preferred_lft forever set\n",
		"   Use VMAC, i/f name vrrp.62, is_up = true, xmit_base = false\n   Interface = vrrp.62, vmac on eth0\n",
		"     10.0.0.110/24 dev vrrp.62@eth0 scope global set\n", "   Preempt delay = 2 secs\n",
		" fd_in -1 fd_out = -1\n   Interface = vrrp.62\n   Family = IPv4\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("no line %q", line)
		}
	}
	if t.Failed() || os.Getenv("KADUMP_SHOW") != "" {
		t.Logf("vrrpkit's rendering:\n%s", got)
	}
	compareStats(t, Stats(st), readFile(t, "testdata/keepalived-v6vmac.stats"))
}
