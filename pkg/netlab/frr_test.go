package netlab

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFRRVrrpdConf(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.201")
	v6 := netip.MustParseAddr("2001:db8:1::101")
	for _, c := range []struct {
		name    string
		routers []FRRRouter
		want    []string // lines the config must hold
		wantErr string
	}{
		{
			name:    "v3 both families",
			routers: []FRRRouter{{VRID: 5, Priority: 200, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{v4, v6}}},
			want: []string{"interface eth0", " vrrp 5 version 3", " vrrp 5 priority 200",
				" vrrp 5 advertisement-interval 100", " vrrp 5 ip 192.0.2.201", " vrrp 5 ipv6 2001:db8:1::101"},
		},
		{
			name:    "defaults and no preempt",
			routers: []FRRRouter{{VRID: 7, Version: 2, NoPreempt: true, VIPs: []netip.Addr{v4}}},
			want:    []string{" vrrp 7 version 2", " no vrrp 7 preempt", " vrrp 7 ip 192.0.2.201"},
		},
		{name: "interval not in 10 ms steps", routers: []FRRRouter{{VRID: 1, Interval: 105 * time.Millisecond, VIPs: []netip.Addr{v4}}}, wantErr: "steps of 10 ms"},
		{name: "interval too long", routers: []FRRRouter{{VRID: 1, Interval: 41 * time.Second, VIPs: []netip.Addr{v4}}}, wantErr: "40.95 s"},
		{name: "priority 255", routers: []FRRRouter{{VRID: 1, Priority: 255, VIPs: []netip.Addr{v4}}}, wantErr: "1..254"},
		{name: "vrid 0", routers: []FRRRouter{{VRID: 0, VIPs: []netip.Addr{v4}}}, wantErr: "1..255"},
		{name: "duplicate vrid", routers: []FRRRouter{{VRID: 1, VIPs: []netip.Addr{v4}}, {VRID: 1, VIPs: []netip.Addr{v4}}}, wantErr: "twice"},
		{name: "no VIPs", routers: []FRRRouter{{VRID: 1}}, wantErr: "no VIPs"},
		{name: "v2 IPv6", routers: []FRRRouter{{VRID: 1, Version: 2, VIPs: []netip.Addr{v6}}}, wantErr: "VRRPv2 has no IPv6"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := frrVrrpdConf("r1", c.routers)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one saying %q; config:\n%s", err, c.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(got, "\n")
			for _, w := range c.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("config lacks line %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestFRRElection runs two FRR instances with one virtual router of both
// families: the higher priority becomes master of each family, the other
// backup with its macvlans in protodown; freezing the master hands both
// families to the backup; Kill removes the instance's directory.
func TestFRRElection(t *testing.T) {
	t.Parallel()
	lab := New(t)
	lan := lab.Segment("lan")
	ha, hb := lab.Host("fa", lan), lab.Host("fb", lan)
	r := FRRRouter{VRID: 9, Interval: 100 * time.Millisecond, VIPs: []netip.Addr{lan.VIP4(1), lan.VIP6(1)}}
	r.Priority = 200
	fa := ha.FRR(r)
	r.Priority = 100
	fb := hb.FRR(r)

	waitStates := func(want map[*FRR]string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var bad []string
			for f, s := range want {
				for _, v6 := range []bool{false, true} {
					got, err := f.State(9, v6)
					if err != nil || got != s {
						bad = append(bad, f.Host().Name()+": "+got+" want "+s)
					}
				}
			}
			if len(bad) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("states: %v", bad)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	waitStates(map[*FRR]string{fa: "MASTER", fb: "BACKUP"})

	st, err := fb.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].V4.MasterAdverMs != 100 || st[0].V4.Interface != fb.Macvlan(9, false) {
		t.Errorf("backup's status %+v: want vrid 9 on %s, master advertising every 100 ms", st, fb.Macvlan(9, false))
	}
	src6, err := fa.Source(9, true)
	if err != nil || !src6.IsLinkLocalUnicast() || src6 == ha.LinkLocal() {
		t.Errorf("master's IPv6 source %v (%v): want the macvlan's own link-local address, not eth0's %v", src6, err, ha.LinkLocal())
	}
	out, err := hb.ip("-j", "-d", "link", "show", "dev", fb.Macvlan(9, false))
	if err != nil || !strings.Contains(string(out), `"proto_down":true`) {
		t.Errorf("backup's macvlan: want protodown on; ip link: %s %v", out, err)
	}

	if err := fa.Freeze(); err != nil {
		t.Fatal(err)
	}
	waitStates(map[*FRR]string{fb: "MASTER"})
	dir := fa.dir
	if err := fa.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after Kill, %s: %v, want it gone", dir, err)
	}
	if err := fb.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestSweepFRR(t *testing.T) {
	tmp := t.TempDir()
	dead := 0
	for pid := 4194000; pid > 4000000; pid-- {
		if !alive(pid) {
			dead = pid
			break
		}
	}
	if dead == 0 {
		t.Skip("no free pid to play a dead test binary")
	}
	mk := func(name string) string {
		dir := tmp + "/" + name
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk(Prefix + strconv.Itoa(dead) + "abc" + frrDirSuffix + "123")
	live := mk(Prefix + strconv.Itoa(os.Getpid()) + "abc" + frrDirSuffix + "456")
	other := mk("unrelated" + frrDirSuffix + "789")
	sweepFRR(tmp)
	for dir, want := range map[string]bool{stale: false, live: true, other: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s: exists %v after sweepFRR, want %v", dir, got, want)
		}
	}
}
