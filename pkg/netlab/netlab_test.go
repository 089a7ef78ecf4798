package netlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

func TestMain(m *testing.M) {
	// Leftovers of an earlier run that crashed (or hit the test timeout).
	removed, err := netlab.Sweep(netlab.Prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "netlab: swept stale %s\n", strings.Join(removed, ", "))
	}
	os.Exit(m.Run())
}

func TestTwoHostsPing(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t)
	lan := lab.Segment("lan")
	r1 := lab.Host("r1", lan)
	r2 := lab.Host("r2", lan)

	if got, want := r1.IPv4(), netip.MustParseAddr("192.0.2.1"); got != want {
		t.Errorf("r1.IPv4() = %v, want %v", got, want)
	}
	if got, want := r2.IPv6(), netip.MustParseAddr("2001:db8:1::2"); got != want {
		t.Errorf("r2.IPv6() = %v, want %v", got, want)
	}
	if !r1.LinkLocal().IsLinkLocalUnicast() || r1.LinkLocal() == r2.LinkLocal() {
		t.Errorf("link-local addresses %v, %v: want two distinct fe80::/64 addresses", r1.LinkLocal(), r2.LinkLocal())
	}
	if bytes.Equal(r1.MAC(), r2.MAC()) {
		t.Errorf("r1 and r2 share MAC %v", r1.MAC())
	}
	if r1.Iface() != "eth0" || !strings.HasPrefix(r1.Netns(), lab.Prefix()+"-") {
		t.Errorf("r1: iface %q, netns %q; want eth0 and a name starting with %s-", r1.Iface(), r1.Netns(), lab.Prefix())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		from *netlab.Host
		to   netip.Addr
	}{
		{r1, r2.IPv4()}, {r2, r1.IPv4()},
		{r1, r2.IPv6()}, {r2, r1.IPv6()},
		{r1, r2.LinkLocal()}, {r2, r1.LinkLocal().WithZone("eth0")},
		{r1, r1.IPv4()},
	} {
		if err := c.from.Ping(ctx, c.to, 3); err != nil {
			t.Error(err)
		}
	}

	for _, a := range []netip.Addr{r2.IPv4(), r2.IPv6()} {
		mac, err := r1.Neighbor(a)
		if err != nil {
			t.Error(err)
		} else if !bytes.Equal(mac, r2.MAC()) {
			t.Errorf("r1's neighbour entry for %v: %v, want r2's MAC %v", a, mac, r2.MAC())
		}
	}
	if _, err := r1.Neighbor(netip.MustParseAddr("192.0.2.99")); err == nil {
		t.Error("Neighbor(192.0.2.99): no error for an address never resolved")
	}

	addrs, err := r1.Addrs("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []netip.Prefix{
		netip.PrefixFrom(r1.IPv4(), 24),
		netip.PrefixFrom(r1.IPv6(), 64),
		netip.PrefixFrom(r1.LinkLocal(), 64),
	} {
		if !slices.Contains(addrs, want) {
			t.Errorf("r1.Addrs(eth0) = %v, missing %v", addrs, want)
		}
	}

	// A second segment is a separate layer-2 network with its own IPv6 prefix.
	wan := lab.Segment("wan")
	r3 := lab.Host("r3", wan)
	if got, want := r3.IPv6(), netip.MustParseAddr("2001:db8:2::1"); got != want {
		t.Errorf("r3.IPv6() = %v, want %v", got, want)
	}
	if err := r1.Ping(ctx, r3.LinkLocal(), 1); err == nil {
		t.Errorf("r1 reached r3 (%v) on another segment", r3.LinkLocal())
	}

	out, err := r1.Run(ctx, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "2: eth0@if3: <BROADCAST,...> ..."
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			links = append(links, name)
		}
	}
	if !slices.Equal(links, []string{"lo", "eth0"}) {
		t.Errorf("links in r1's namespace: %q, want lo and eth0; ip -o link show printed:\n%s", links, out)
	}
}

func TestRunAndProcErrors(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t)
	h := lab.Host("h", lab.Segment("lan"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := h.Run(ctx, "sh", "-c", "echo oops; exit 3")
	if err == nil || !strings.Contains(err.Error(), "host h") || !strings.Contains(err.Error(), "oops") ||
		!strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Run error = %v; want host, command output and exit status", err)
	}

	p := h.Start("sh", "-c", "echo hello; exit 4")
	if err := p.WaitLog("never printed", 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitLog on an exited process = %v, want an early 'exited' error", err)
	}
	if err := p.Wait(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 4") ||
		!strings.Contains(err.Error(), "hello") {
		t.Errorf("Wait = %v, want exit status 4 and the log", err)
	}

	s := h.Start("sleep", "300")
	if err := s.Wait(50 * time.Millisecond); err == nil {
		t.Error("Wait on a sleeping process: no timeout error")
	}
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Error(err)
	}
	if err := s.Wait(5 * time.Second); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Wait after SIGTERM = %v, want 'signal: terminated'", err)
	}
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("Signal after exit = %v, want nil", err)
	}
}

func TestSendRaw(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t)
	lan := lab.Segment("lan")
	r1 := lab.Host("r1", lan)
	r2 := lab.Host("r2", lan)
	c := r2.Capture("eth0", "ether proto 0x88b5")

	frame := make([]byte, 60)
	copy(frame[0:], r2.MAC())
	copy(frame[6:], r1.MAC())
	frame[12], frame[13] = 0x88, 0xb5 // IEEE local experimental EtherType
	copy(frame[14:], "netlab raw frame")
	if err := r1.SendRaw("eth0", frame); err != nil {
		t.Fatal(err)
	}
	if err := r1.SendRaw("nosuch0", frame); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("SendRaw on a missing interface = %v, want an error naming it", err)
	}
	rows, err := c.Fields("eth.type == 0x88b5", "eth.src", "eth.dst", "frame.len")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{r1.MAC().String(), r2.MAC().String(), "60"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("captured %q, want %q", rows, want)
	}
	if n, err := c.Packets(); err != nil || n != 1 {
		t.Errorf("Packets() = %d, %v; want 1", n, err)
	}
	if err := c.WaitPackets(2, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("WaitPackets on a stopped capture = %v, want an 'ended' error", err)
	}

	// A capture that something else stops is an error, not a short file.
	c2 := r2.Capture("eth0", "")
	if err := c2.Proc().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-c2.Proc().Done()
	if _, err := c2.Fields("", "frame.number"); err == nil || !strings.Contains(err.Error(), "ended before Stop") {
		t.Errorf("Fields on a capture that died early = %v, want an 'ended before Stop' error", err)
	}
}

// keepalivedConf is one VRRPv2 instance on eth0, VRID 51, advert_int 1s.
func keepalivedConf(state string, prio int, vip netip.Addr) string {
	return fmt.Sprintf(`global_defs {
    router_id netlab
}
vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    virtual_ipaddress {
        %s/24
    }
}
`, state, prio, vip)
}

// eventually polls cond every 20ms for up to timeout.
func eventually(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func TestKeepalivedMaster(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t)
	before := rootState(t) // keepalived must change nothing outside the lab
	lan := lab.Segment("lan")
	r1 := lab.Host("r1", lan)
	obs := lab.Host("obs", lan)
	vip := lan.VIP4(1)
	c := obs.Capture("eth0", "ip proto 112")

	ka := r1.Keepalived(keepalivedConf("BACKUP", 150, vip))
	if err := ka.WaitLog("(VI_1) Entering MASTER STATE", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !eventually(3*time.Second, func() bool { ok, _ := r1.HasAddr("eth0", vip); return ok }) {
		t.Fatalf("r1 is MASTER but %v is not on its eth0", vip)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := obs.Ping(ctx, vip, 2); err != nil {
		t.Error(err)
	}
	if mac, err := obs.Neighbor(vip); err != nil || !bytes.Equal(mac, r1.MAC()) {
		t.Errorf("obs's neighbour entry for the VIP: %v, %v; want r1's MAC %v", mac, err, r1.MAC())
	}

	if err := c.WaitPackets(5, 10*time.Second); err != nil { // a few adverts
		t.Fatal(err)
	}
	if err := ka.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := ka.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if ok, err := r1.HasAddr("eth0", vip); err != nil || ok {
		t.Errorf("after keepalived stopped, VIP on r1's eth0: %v, %v; want false", ok, err)
	}
	if ok, err := r1.HasAddr("eth0", r1.IPv4()); err != nil || !ok {
		t.Errorf("after keepalived stopped, r1's own address on eth0: %v, %v; want true", ok, err)
	}

	rows, err := c.Fields("vrrp", "frame.time_epoch", "ip.src", "ip.dst", "vrrp.virt_rtr_id", "vrrp.prio", "vrrp.ip_addr")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 6 {
		t.Fatalf("captured %d adverts, want at least 6: %q", len(rows), rows)
	}
	var intervals []time.Duration
	var prev time.Time
	for i, r := range rows {
		at, err := netlab.ParseEpoch(r[0])
		if err != nil {
			t.Fatal(err)
		}
		wantPrio := "150"
		if i == len(rows)-1 {
			wantPrio = "0" // stepping down on SIGTERM
		} else if i > 1 {
			// Not the first interval: becoming master (VIPs, GARPs) can
			// delay the second advert on a loaded machine.
			intervals = append(intervals, at.Sub(prev))
		}
		if got, want := r[1:], []string{r1.IPv4().String(), "224.0.0.18", "51", wantPrio, vip.String()}; !slices.Equal(got, want) {
			t.Errorf("advert %d: src, dst, vrid, prio, vip = %q, want %q", i, got, want)
		}
		prev = at
	}
	// advert_int 1: adverts are never early, and mostly on time
	// (keepalived's own timers can slip on a loaded machine).
	slices.Sort(intervals)
	if lo, mid := intervals[0], intervals[len(intervals)/2]; lo < 900*time.Millisecond || mid > 1200*time.Millisecond {
		t.Errorf("intervals between adverts %v, want about 1s", intervals)
	}

	if after := rootState(t); !slices.Equal(before, after) {
		t.Errorf("the caller's namespace changed:\nbefore: %q\nafter:  %q", before, after)
	}
}

func TestKeepalivedFailover(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t)
	lan := lab.Segment("lan")
	a := lab.Host("a", lan)
	b := lab.Host("b", lan)
	obs := lab.Host("obs", lan)
	vip := lan.VIP4(1)
	c := lan.Capture("ip proto 112") // on the bridge: sees every host's frames

	ka := a.Keepalived(keepalivedConf("BACKUP", 200, vip))
	kb := b.Keepalived(keepalivedConf("BACKUP", 100, vip))
	if err := ka.WaitLog("(VI_1) Entering MASTER STATE", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// b is a backup that has heard a's adverts (b itself sends none).
	if err := kb.WaitLog("(VI_1) Entering BACKUP STATE", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitPackets(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ka.Kill(); err != nil { // no priority-0 advert: b waits Master_Down_Interval
		t.Fatal(err)
	}
	if err := kb.WaitLog("(VI_1) Entering MASTER STATE", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(mustOutput(t, kb), "Entering MASTER STATE"); n != 1 {
		t.Errorf("b entered MASTER %d times, want 1", n)
	}

	rows, err := c.Fields("vrrp", "frame.time_epoch", "ip.src", "vrrp.prio")
	if err != nil {
		t.Fatal(err)
	}
	var lastA, firstB time.Time
	for _, r := range rows {
		at, err := netlab.ParseEpoch(r[0])
		if err != nil {
			t.Fatal(err)
		}
		switch r[1] {
		case a.IPv4().String():
			lastA = at
		case b.IPv4().String():
			if firstB.IsZero() {
				firstB = at
			}
		}
	}
	if lastA.IsZero() || firstB.IsZero() || !firstB.After(lastA) {
		t.Fatalf("want adverts from a, then from b; got %q", rows)
	}
	// RFC 3768: Master_Down_Interval = 3*Advertisement_Interval + Skew_Time,
	// Skew_Time = (256-Priority)/256 s: 3.609s for priority 100.
	gap := firstB.Sub(lastA)
	t.Logf("failover: %v from a's last advert to b's first", gap)
	// keepalived's timers slip under load (it says "A thread timer expired
	// ... ago"): the upper bound is loose.
	if gap < 3400*time.Millisecond || gap > 5*time.Second {
		t.Errorf("failover took %v, want about 3.61s", gap)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !eventually(3*time.Second, func() bool { ok, _ := b.HasAddr("eth0", vip); return ok }) {
		t.Fatalf("b is MASTER but %v is not on its eth0", vip)
	}
	if err := obs.Ping(ctx, vip, 1); err != nil {
		t.Error(err)
	}
	if mac, err := obs.Neighbor(vip); err != nil || !bytes.Equal(mac, b.MAC()) {
		t.Errorf("obs's neighbour entry for the VIP after failover: %v, %v; want b's MAC %v", mac, err, b.MAC())
	}
}

func mustOutput(t *testing.T, p *netlab.Proc) string {
	t.Helper()
	out, err := p.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rootState lists the interfaces and addresses of the test's own
// namespace, one "ifname addr/len" (or "ifname") string each, sorted.
func rootState(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-j", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -j addr show: %v\n%s", err, out)
	}
	var links []struct {
		Ifname   string `json:"ifname"`
		Address  string `json:"address"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("ip -j addr show: %v", err)
	}
	var s []string
	for _, l := range links {
		s = append(s, l.Ifname+" "+l.Address)
		for _, a := range l.AddrInfo {
			s = append(s, l.Ifname+" "+a.Local+"/"+strconv.Itoa(a.Prefixlen))
		}
	}
	slices.Sort(s)
	return s
}
