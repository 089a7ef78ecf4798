package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// reloadLinks and reloadPerLink: 1,000 instances need four interfaces
// (VRIDs are per interface and family).
const reloadLinks, reloadPerLink = 4, 250

// reloadConf renders the 1,000 instances (I_<link>_<vrid>, each master
// alone on its own veth with one VIP 10.77.<link>.<vrid>/32) and VI_K, the
// instance shared with keepalived on the lab segment. prio overrides one
// instance's priority; moved puts 10.77.0.1 on I_0_2 instead of I_0_1;
// withK keeps VI_K.
func reloadConf(kVIP string, prio map[string]int, moved, withK bool) string {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id vk\n}\n")
	if withK {
		fmt.Fprintf(&b, "vrrp_instance VI_K {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  virtual_ipaddress {\n    %s\n  }\n}\n", kVIP)
	}
	for l := 0; l < reloadLinks; l++ {
		for v := 1; v <= reloadPerLink; v++ {
			name := fmt.Sprintf("I_%d_%d", l, v)
			p := 100
			if q, ok := prio[name]; ok {
				p = q
			}
			fmt.Fprintf(&b, "vrrp_instance %s {\n  interface rl%d\n  virtual_router_id %d\n  priority %d\n  advert_int 1\n  virtual_ipaddress {\n", name, l, v, p)
			switch {
			case moved && l == 0 && v == 1:
			case moved && l == 0 && v == 2:
				b.WriteString("    10.77.0.1/32\n    10.77.0.2/32\n")
			default:
				fmt.Fprintf(&b, "    10.77.%d.%d/32\n", l, v)
			}
			b.WriteString("  }\n}\n")
		}
	}
	return b.String()
}

// TestInteropReload: issue 9's reload must-shows against the real
// supervisor, with keepalived as the peer of one instance.
//   - 1,000 masters, one priority changed and one VIP moved between two
//     masters in one SIGHUP: no instance leaves MASTER, the changed one
//     advertises its new priority, and `ip monitor address` sees no address
//     removed or added (the moved VIP stays on the interface);
//   - a broken file: refused with file:line in the supervisor's status, the
//     running generation and every master stay;
//   - VI_K removed by a reload: vrrpd sends priority 0 and keepalived takes
//     over within Skew_Time, well before its Master_Down_Interval.
func TestInteropReload(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha := lab.Host("ra", lan)
	hb := lab.Host("rb", lan)
	kVIP := lan.VIP4(1)
	kPrefix := kVIP.String() + "/24"
	ipn := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", ha.Netns()}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for l := 0; l < reloadLinks; l++ {
		// The namespace owns them: they go with it.
		ipn("link", "add", fmt.Sprintf("rl%d", l), "type", "veth", "peer", "name", fmt.Sprintf("rl%dp", l))
		ipn("link", "set", fmt.Sprintf("rl%dp", l), "up")
		ipn("link", "set", fmt.Sprintf("rl%d", l), "up")
		ipn("addr", "add", fmt.Sprintf("10.78.%d.1/24", l), "dev", fmt.Sprintf("rl%d", l)) // the adverts' source
	}

	ka := start(t, lab, keepalived, hb, conf("rb", inst{name: "VI_K", vrid: 51, prio: 100, version: 2, interval: time.Second,
		vips: []netip.Addr{kVIP}}))
	file := filepath.Join(lab.Dir(), "ra-reload.conf")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file+".tmp", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConf(kPrefix, nil, false, true))
	vk := startVrrpkitFile(t, ha, file)
	total := reloadLinks*reloadPerLink + 1

	// All masters: the 1,000 alone on their links, VI_K over keepalived.
	var since map[string]time.Time
	if err := eventually(60*time.Second, func() (bool, string) {
		st, err := vk.Status()
		if err != nil {
			return false, err.Error()
		}
		since = map[string]time.Time{}
		n := 0
		for _, in := range st.GetInstances() {
			if in.GetState() == pb.VrrpState_VRRP_STATE_MASTER {
				n++
				since[in.GetName()] = in.GetStateSince().AsTime()
			}
		}
		return n == total, fmt.Sprintf("%d of %d instances master", n, total)
	}); err != nil {
		t.Fatal(err)
	}
	waitState(t, ka, "VI_K", "BACKUP", 10*time.Second)

	mon := ha.Start("ip", "-ts", "monitor", "address")
	t.Cleanup(func() { mon.Kill() })
	// The monitor is listening once it reports an address we add and remove
	// by hand (it may not have subscribed yet when it starts).
	if err := eventually(20*time.Second, func() (bool, string) {
		ipn("addr", "add", "10.77.250.1/32", "dev", "rl3")
		ipn("addr", "del", "10.77.250.1/32", "dev", "rl3")
		out, _ := mon.Output()
		return strings.Contains(out, "Deleted") && strings.Contains(out, "10.77.250.1/32"), "ip monitor address reports nothing"
	}); err != nil {
		t.Fatal(err)
	}
	monOut := func() string {
		out, err := mon.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	mark := len(monOut())

	// Reload 1: one priority, one VIP moved between two masters. First its
	// plan (vrrpctl reload --dry-run), which changes nothing.
	write(reloadConf(kPrefix, map[string]int{"I_2_7": 110}, true, true))
	dry, err := supervisorReload(vk, true)
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, it := range dry.GetPlan().GetItems() {
		items = append(items, fmt.Sprintf("%s %s %s %v", it.GetSection(), it.GetOp(), it.GetName(), it.GetDetails()))
	}
	wantItems := []string{
		"instance change I_0_1 [virtual_ipaddress: [10.77.0.1/32] -> []]",
		"instance change I_0_2 [virtual_ipaddress: [10.77.0.2/32] -> [10.77.0.1/32, 10.77.0.2/32]]",
		"instance change I_2_7 [priority: 100 -> 110]",
		"address remove 10.77.0.1/32 [from I_0_1]",
		"address add 10.77.0.1/32 [on I_0_2]",
	}
	if !dry.GetAccepted() || dry.GetGeneration() != 2 || strings.Join(items, "\n") != strings.Join(wantItems, "\n") ||
		dry.GetPlan().GetInstancesChanged() != 3 || dry.GetPlan().GetInstancesUnchanged() != uint32(total-3) {
		t.Fatalf("dry run: accepted %v generation %d plan %v\nitems:\n%s\nwant:\n%s", dry.GetAccepted(), dry.GetGeneration(),
			dry.GetPlan(), strings.Join(items, "\n"), strings.Join(wantItems, "\n"))
	}
	if st, err := vk.Status(); err != nil || st.GetGeneration() != 1 {
		t.Fatalf("after a dry run vrrpd runs generation %d (%v), want 1", st.GetGeneration(), err)
	}
	sighup := time.Now()
	if err := vk.Proc().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var applied time.Duration
	if err := eventually(60*time.Second, func() (bool, string) {
		st, err := vk.Status()
		if err != nil {
			return false, err.Error()
		}
		applied = time.Since(sighup)
		return st.GetGeneration() == 2, fmt.Sprintf("vrrpd runs generation %d", st.GetGeneration())
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("reload of %d instances (1 priority changed, 1 VIP moved) applied %v after SIGHUP", total, applied.Round(time.Millisecond))
	if err := eventually(10*time.Second, func() (bool, string) {
		in, err := vk.Instance("I_2_7")
		if err != nil {
			return false, err.Error()
		}
		return in.GetEffectivePriority() == 110, fmt.Sprintf("I_2_7 effective priority %d, want 110", in.GetEffectivePriority())
	}); err != nil {
		t.Fatal(err)
	}
	// Hold for two advert intervals (every instance has advertised since),
	// checking that none left MASTER or restarted.
	settle := time.Now().Add(2 * time.Second)
	for time.Now().Before(settle) {
		st, err := vk.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range st.GetInstances() {
			if in.GetState() != pb.VrrpState_VRRP_STATE_MASTER || !in.GetStateSince().AsTime().Equal(since[in.GetName()]) {
				t.Fatalf("%s: %v since %v after the reload, want MASTER since %v", in.GetName(), in.GetState(),
					in.GetStateSince().AsTime(), since[in.GetName()])
			}
			if in.GetName() == "I_0_2" && !strings.Contains(fmt.Sprint(in.GetVirtualIpaddress()), "10.77.0.1/32") {
				t.Fatalf("I_0_2 does not hold the moved VIP: %v", in.GetVirtualIpaddress())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ev := strings.TrimSpace(monOut()[mark:]); ev != "" {
		t.Errorf("ip monitor address saw address changes during the reload:\n%s", ev)
	}
	if ok, err := ha.HasAddr("rl0", netip.MustParseAddr("10.77.0.1")); err != nil || !ok {
		t.Errorf("the moved VIP 10.77.0.1 is not on rl0 (%v)", err)
	}

	// Reload 2: a broken file is refused and changes nothing.
	write(reloadConf(kPrefix, nil, true, true) + "vrrp_instance BROKEN {\n  priority lots\n}\n")
	brokenLine := strings.Count(reloadConf(kPrefix, nil, true, true), "\n") + 2
	if err := vk.Proc().Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var failure *pb.ReloadFailure
	if err := eventually(30*time.Second, func() (bool, string) {
		s, err := supervisorStatus(vk)
		if err != nil {
			return false, err.Error()
		}
		failure = s.GetLastReloadFailure()
		return failure != nil && s.GetGeneration() == 2, fmt.Sprintf("generation %d, last reload failure %v", s.GetGeneration(), failure)
	}); err != nil {
		t.Fatal(err)
	}
	wantLoc := fmt.Sprintf("%s:%d:", file, brokenLine)
	if !strings.Contains(strings.Join(failure.GetErrors(), "\n"), wantLoc) {
		t.Errorf("reload failure %q does not name %s", failure.GetErrors(), wantLoc)
	}
	if st, err := vk.Status(); err != nil || st.GetGeneration() != 2 {
		t.Errorf("vrrpd generation after a refused reload: %v (%v), want 2", st.GetGeneration(), err)
	}
	if s, _ := vk.State("VI_K"); s != "MASTER" {
		t.Errorf("VI_K is %s after a refused reload, want MASTER", s)
	}
	if ok, _ := ha.HasAddr("eth0", kVIP); !ok {
		t.Errorf("VI_K's VIP left eth0 after a refused reload")
	}

	// Reload 3, by vrrpctl reload (Supervisor.Reload): VI_K removed:
	// priority 0, keepalived within Skew_Time.
	write(reloadConf(kPrefix, nil, true, false))
	sighup = time.Now()
	resp, err := supervisorReload(vk, false)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetAccepted() || resp.GetGeneration() != 3 || resp.GetPlan().GetInstancesRemoved() != 1 {
		t.Fatalf("reload: %v", resp)
	}
	waitState(t, ka, "VI_K", "MASTER", 10*time.Second)
	took := time.Since(sighup)
	mdi := masterDownInterval(100, time.Second)
	t.Logf("keepalived master %v after the SIGHUP that removed VI_K (Skew_Time %v, Master_Down_Interval %v)",
		took.Round(time.Millisecond), skewTime(100, time.Second), mdi)
	// Without the priority 0 advert keepalived would wait out its
	// Master_Down_Interval after vrrpd's last advert.
	if took >= mdi {
		t.Errorf("keepalived took over %v after the reload: not on priority 0 (Master_Down_Interval %v)", took, mdi)
	}
	if ok, _ := ha.HasAddr("eth0", kVIP); ok {
		t.Errorf("the removed instance's VIP %v is still on eth0", kVIP)
	}
	if !strings.Contains(monOut()[mark:], "Deleted") {
		t.Errorf("ip monitor address did not see VI_K's VIP go:\n%s", monOut()[mark:])
	}
}

// supervisorStatus calls the supervisor's Status on control.sock.
func supervisorStatus(r *vrrpkitRouter) (resp *pb.SupervisorStatusResponse, err error) {
	err = callSupervisor(r, 2*time.Second, func(ctx context.Context, c pb.SupervisorClient) error {
		resp, err = c.Status(ctx, &pb.SupervisorStatusRequest{})
		return err
	})
	return resp, err
}

// supervisorReload calls Supervisor.Reload, as vrrpctl reload does.
func supervisorReload(r *vrrpkitRouter, dryRun bool) (resp *pb.ReloadResponse, err error) {
	err = callSupervisor(r, 30*time.Second, func(ctx context.Context, c pb.SupervisorClient) error {
		resp, err = c.Reload(ctx, &pb.ReloadRequest{DryRun: dryRun})
		return err
	})
	return resp, err
}

// callSupervisor makes one call on r's control.sock within timeout.
func callSupervisor(r *vrrpkitRouter, timeout time.Duration, call func(context.Context, pb.SupervisorClient) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := ipc.Dial(ctx, rundir.Dir(r.runDir).Control())
	if err != nil {
		return err
	}
	defer conn.Close()
	return call(ctx, pb.NewSupervisorClient(conn))
}
