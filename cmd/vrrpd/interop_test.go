package main

// Interop tests: vrrpkit (supervisor + vrrpd, the real binaries) against
// keepalived 2.2.7 on a real kernel, in throwaway network namespaces built
// with pkg/netlab. They need root, keepalived, tcpdump and tshark, and skip
// themselves, saying why, when any is missing.
//
// This file holds TestMain (which builds the binaries once) and the helpers
// the interop_*_test.go files share: a router abstraction over the two
// implementations, keepalived.conf generation, capture analysis and raw
// frame building.

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/netlab"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// The binaries TestMain builds for the interop tests. When there are none,
// skip says why the tests should skip, err why they should fail.
var bins struct {
	dir        string
	supervisor string
	skip       string
	err        error
}

// interopParallel is the -test.parallel TestMain sets when the command line
// does not: the interop labs spend nearly all their time waiting on VRRP
// timers, not on a CPU, so running only GOMAXPROCS of them at once would
// make the package take minutes on a small machine.
const interopParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			explicit = true
		}
	})
	if !explicit && runtime.GOMAXPROCS(0) < interopParallel {
		_ = flag.Set("test.parallel", strconv.Itoa(interopParallel))
	}
	// Leftovers of an earlier run that crashed or hit the test timeout.
	if removed, err := netlab.Sweep(netlab.Prefix); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "netlab: swept stale %s\n", strings.Join(removed, ", "))
	}
	// Only root can run the interop tests: do not make everyone else pay
	// for the build.
	if os.Geteuid() == 0 {
		buildBinaries()
	} else {
		bins.skip = "not built: the interop tests need root"
	}
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// buildBinaries builds supervisor and vrrpd into a temporary directory.
func buildBinaries() {
	goBin, err := exec.LookPath("go")
	if err != nil {
		bins.skip = fmt.Sprintf("go is not in PATH: %v", err)
		return
	}
	dir, err := os.MkdirTemp("", "vrrpkit-interop-bin-")
	if err != nil {
		bins.err = err
		return
	}
	bins.dir = dir
	// checkerd runs as nobody from the supervisor's binary: like /usr/sbin,
	// the directory must let it in.
	if err := os.Chmod(dir, 0o755); err != nil {
		bins.err = err
		return
	}
	// The supervisor's binary is vrrpd too (cmd/supervisor main), as make
	// build ships it.
	cmd := exec.Command(goBin, "build", "-tags", "grpcnotrace", "-o", dir+"/", "github.com/vrrpkit/vrrpkit/cmd/supervisor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		bins.err = fmt.Errorf("go build: %v\n%s", err, out)
		return
	}
	bins.supervisor = filepath.Join(dir, "supervisor")
}

// newLab is netlab.New for the interop tests: it skips when not root, when
// a tool is missing or when the binaries could not be built for want of
// go, and fails the test when the build failed.
func newLab(t *testing.T) *netlab.Lab {
	t.Helper()
	lab := netlab.New(t) // skips unless root
	for _, tool := range []string{"keepalived", "tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("interop: %s is not installed", tool)
		}
	}
	if bins.skip != "" {
		t.Skipf("interop: vrrpkit binaries: %s", bins.skip)
	}
	if bins.err != nil {
		t.Fatalf("interop: building vrrpkit: %v", bins.err)
	}
	return lab
}

// ---------------------------------------------------------------------------
// Configuration.

// inst is one vrrp_instance on eth0, state BACKUP, rendered the same for
// both implementations.
type inst struct {
	name         string // default VI_1
	vrid         int
	prio         int
	version      int
	interval     time.Duration
	vips         []netip.Addr
	authPass     string // VRRPv2 auth_type PASS
	nopreempt    bool
	preemptDelay time.Duration
	unicastSrc   netip.Addr
	unicastPeers []netip.Addr
}

func (c inst) instName() string {
	if c.name == "" {
		return "VI_1"
	}
	return c.name
}

// conf renders keepalived.conf for the instances.
func conf(routerID string, instances ...inst) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n}\n", routerID)
	for _, c := range instances {
		fmt.Fprintf(&b, "vrrp_instance %s {\n", c.instName())
		fmt.Fprintf(&b, "  state BACKUP\n  interface eth0\n  virtual_router_id %d\n  priority %d\n", c.vrid, c.prio)
		fmt.Fprintf(&b, "  version %d\n  advert_int %s\n", c.version, strconv.FormatFloat(c.interval.Seconds(), 'f', -1, 64))
		if c.authPass != "" {
			fmt.Fprintf(&b, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", c.authPass)
		}
		if c.nopreempt {
			b.WriteString("  nopreempt\n")
		}
		if c.preemptDelay > 0 {
			fmt.Fprintf(&b, "  preempt_delay %s\n", strconv.FormatFloat(c.preemptDelay.Seconds(), 'f', -1, 64))
		}
		if c.unicastSrc.IsValid() {
			fmt.Fprintf(&b, "  unicast_src_ip %s\n", c.unicastSrc)
		}
		if len(c.unicastPeers) > 0 {
			b.WriteString("  unicast_peer {\n")
			for _, p := range c.unicastPeers {
				fmt.Fprintf(&b, "    %s\n", p)
			}
			b.WriteString("  }\n")
		}
		b.WriteString("  virtual_ipaddress {\n")
		for _, v := range c.vips {
			bits := 24
			if v.Is6() {
				bits = 64
			}
			fmt.Fprintf(&b, "    %s/%d\n", v, bits)
		}
		b.WriteString("  }\n}\n")
	}
	return b.String()
}

// masterDownInterval is RFC 5798's Master_Down_Interval of a backup of
// priority prio when the master advertises every interval: 3*interval +
// Skew_Time.
func masterDownInterval(prio int, interval time.Duration) time.Duration {
	return 3*interval + skewTime(prio, interval)
}

// skewTime is RFC 5798's Skew_Time: (256-prio)*interval/256.
func skewTime(prio int, interval time.Duration) time.Duration {
	return time.Duration(256-prio) * interval / 256
}

// ---------------------------------------------------------------------------
// Routers.

// impl names an implementation.
type impl string

const (
	vrrpkit    impl = "vrrpkit"
	keepalived impl = "keepalived"
)

// router is one VRRP implementation running on a lab host.
type router interface {
	Impl() impl
	Host() *netlab.Host
	Proc() *netlab.Proc
	// State returns the instance's state: "MASTER", "BACKUP", "FAULT",
	// "INIT", or "" when it is not known yet.
	State(instance string) (string, error)
	// Crash kills every process of the implementation in the host's
	// namespace at once with SIGKILL, as a power cut would.
	Crash(t *testing.T)
}

// start starts implementation which on h with the configuration text.
func start(t *testing.T, lab *netlab.Lab, which impl, h *netlab.Host, text string) router {
	t.Helper()
	switch which {
	case vrrpkit:
		return startVrrpkit(t, lab, h, text)
	case keepalived:
		return &keepalivedRouter{h: h, p: h.Keepalived(text)}
	}
	t.Fatalf("unknown implementation %q", which)
	return nil
}

// keepalivedRouter is keepalived -n -l -D --vrrp (see netlab.Host.Keepalived).
type keepalivedRouter struct {
	h *netlab.Host
	p *netlab.Proc
}

func (r *keepalivedRouter) Impl() impl         { return keepalived }
func (r *keepalivedRouter) Host() *netlab.Host { return r.h }
func (r *keepalivedRouter) Proc() *netlab.Proc { return r.p }

// State is the last "(NAME) Entering X STATE" keepalived logged.
func (r *keepalivedRouter) State(instance string) (string, error) {
	out, err := r.p.Output()
	if err != nil {
		return "", err
	}
	best, state := -1, ""
	for _, s := range []string{"MASTER", "BACKUP", "FAULT"} {
		if i := strings.LastIndex(out, "("+instance+") Entering "+s+" STATE"); i > best {
			best, state = i, s
		}
	}
	return state, nil
}

// masterEntries counts the instance's "Entering MASTER STATE" lines.
func (r *keepalivedRouter) masterEntries(instance string) int {
	out, _ := r.p.Output()
	return strings.Count(out, "("+instance+") Entering MASTER STATE")
}

func (r *keepalivedRouter) Crash(t *testing.T) {
	t.Helper()
	// keepalived's parent and VRRP child share the process group.
	if err := r.p.Kill(); err != nil {
		t.Fatal(err)
	}
	waitNoProcs(t, r.h)
}

// vrrpkitRouter is the supervisor (which starts vrrpd) on a lab host, with
// its own run directory.
type vrrpkitRouter struct {
	h      *netlab.Host
	p      *netlab.Proc
	runDir string

	mu   sync.Mutex
	conn *grpc.ClientConn
}

func startVrrpkit(t *testing.T, lab *netlab.Lab, h *netlab.Host, text string) *vrrpkitRouter {
	t.Helper()
	file := filepath.Join(lab.Dir(), h.Name()+"-vrrpkit.conf")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return startVrrpkitFile(t, h, file)
}

// startVrrpkitFile runs the supervisor on file (which a test may rewrite
// for a reload) with a run directory of its own.
func startVrrpkitFile(t *testing.T, h *netlab.Host, file string, args ...string) *vrrpkitRouter {
	t.Helper()
	// Not under lab.Dir(): a Unix socket path must fit in 108 bytes.
	runDir, err := os.MkdirTemp("", "vkrun-")
	if err != nil {
		t.Fatal(err)
	}
	r := &vrrpkitRouter{h: h, runDir: runDir}
	t.Cleanup(func() {
		r.mu.Lock()
		if r.conn != nil {
			r.conn.Close()
		}
		r.mu.Unlock()
		os.RemoveAll(runDir)
	})
	// No --vrrpd: the supervisor runs vrrpd as its own binary, as installed.
	r.p = h.Start(bins.supervisor, append([]string{"-f", file, "--run-dir", runDir}, args...)...)
	return r
}

func (r *vrrpkitRouter) Impl() impl         { return vrrpkit }
func (r *vrrpkitRouter) Host() *netlab.Host { return r.h }
func (r *vrrpkitRouter) Proc() *netlab.Proc { return r.p }

// Status calls vrrpd's Status RPC on <run-dir>/vrrpd.sock.
func (r *vrrpkitRouter) Status() (*pb.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		path := rundir.Dir(r.runDir).Vrrpd()
		if _, err := os.Stat(path); err != nil {
			return nil, err
		}
		conn, err := ipc.Dial(ctx, path)
		if err != nil {
			return nil, err
		}
		r.conn = conn
	}
	resp, err := pb.NewVrrpdClient(r.conn).Status(ctx, &pb.StatusRequest{})
	if err != nil {
		r.conn.Close()
		r.conn = nil
		return nil, err
	}
	return resp, nil
}

// Instance returns one instance's status.
func (r *vrrpkitRouter) Instance(name string) (*pb.InstanceStatus, error) {
	resp, err := r.Status()
	if err != nil {
		return nil, err
	}
	for _, in := range resp.GetInstances() {
		if in.GetName() == name {
			return in, nil
		}
	}
	return nil, fmt.Errorf("vrrpd on %s has no instance %s (generation %d)", r.h, name, resp.GetGeneration())
}

func (r *vrrpkitRouter) State(instance string) (string, error) {
	in, err := r.Instance(instance)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(in.GetState().String(), "VRRP_STATE_"), nil
}

// Crash stops every process in the host's namespace (the supervisor and
// vrrpd) with SIGSTOP, then kills them with SIGKILL: nothing runs between
// the first kill and the last, so neither the supervisor's restart nor
// vrrpd's Pdeathsig SIGTERM (a graceful step-down) can happen.
func (r *vrrpkitRouter) Crash(t *testing.T) {
	t.Helper()
	var pids []int
	hasVrrpd := func() bool {
		for _, pid := range pids {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == "vrrpd" {
				return true
			}
		}
		return false
	}
	if err := eventually(5*time.Second, func() (bool, string) {
		var err error
		if pids, err = netnsPids(r.h); err != nil {
			return false, err.Error()
		}
		return len(pids) >= 2 && hasVrrpd(), fmt.Sprintf("want the supervisor and vrrpd in the namespace, found pids %v", pids)
	}); err != nil {
		t.Fatalf("%s: %v", r.h, err)
	}
	// vrrpd first, with SIGKILL: nothing it can do on the way out (a
	// priority 0 advert on its supervisor's death) may happen. Then the
	// rest.
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(b)) == "vrrpd" {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var err error
	// Freeze everything first, then kill: a vrrpd left running would see
	// its supervisor die and step down with priority 0, which is not a
	// crash. List again until no new process turns up (one listed while it
	// was being started would otherwise be missed).
	stopped := map[int]bool{}
	for round := 0; round < 5; round++ {
		fresh := false
		for _, pid := range pids {
			if !stopped[pid] {
				_ = syscall.Kill(pid, syscall.SIGSTOP)
				stopped[pid], fresh = true, true
			}
		}
		if !fresh {
			break
		}
		if pids, err = netnsPids(r.h); err != nil {
			t.Fatal(err)
		}
	}
	for pid := range stopped {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	select {
	case <-r.p.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: supervisor still running 5s after SIGKILL", r.h)
	}
	waitNoProcs(t, r.h)
}

// netnsPids lists the processes in h's namespace (`ip netns pids`).
func netnsPids(h *netlab.Host) ([]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", h.Netns()).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", h.Netns(), err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// waitNoProcs waits until h's namespace holds no process.
func waitNoProcs(t *testing.T, h *netlab.Host) {
	t.Helper()
	err := eventually(5*time.Second, func() (bool, string) {
		pids, err := netnsPids(h)
		if err != nil {
			return false, err.Error()
		}
		return len(pids) == 0, fmt.Sprintf("processes %v still in %s", pids, h.Netns())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Waiting.

// eventually polls cond every 25ms until it returns true or timeout passes;
// the error carries cond's last explanation.
func eventually(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %s", timeout, why)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitState waits until r's instance is in state want.
func waitState(t *testing.T, r router, instance, want string, timeout time.Duration) {
	t.Helper()
	if err := eventually(timeout, stateIs(r, instance, want)); err != nil {
		t.Fatalf("%s on %s, %s: %v", r.Impl(), r.Host(), instance, err)
	}
}

func stateIs(r router, instance, want string) func() (bool, string) {
	return func() (bool, string) {
		got, err := r.State(instance)
		if err != nil {
			return false, err.Error()
		}
		return got == want, fmt.Sprintf("%s on %s: %s is %q, want %q", r.Impl(), r.Host(), instance, got, want)
	}
}

// hasVIP reports whether vip is on h's eth0.
func hasVIP(t *testing.T, h *netlab.Host, vip netip.Addr) bool {
	t.Helper()
	ok, err := h.HasAddr("eth0", vip)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// waitElected waits until master is MASTER holding every VIP and each
// backup is BACKUP holding none.
func waitElected(t *testing.T, instance string, vips []netip.Addr, timeout time.Duration, master router, backups ...router) {
	t.Helper()
	err := eventually(timeout, func() (bool, string) {
		if ok, why := stateIs(master, instance, "MASTER")(); !ok {
			return false, why
		}
		for _, b := range backups {
			if ok, why := stateIs(b, instance, "BACKUP")(); !ok {
				return false, why
			}
		}
		for _, v := range vips {
			if !hasVIP(t, master.Host(), v) {
				return false, fmt.Sprintf("VIP %v not on the master %s", v, master.Host())
			}
			for _, b := range backups {
				if hasVIP(t, b.Host(), v) {
					return false, fmt.Sprintf("VIP %v on the backup %s", v, b.Host())
				}
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("election: %v", err)
	}
}

// linkDown takes h's eth0 down, as if the machine had lost power: a killed
// router keeps its VIPs and would otherwise still answer ARP and ping.
func linkDown(t *testing.T, h *netlab.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Run(ctx, "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Captures.

// vrrpFilter is the capture filter for VRRP over either family.
const vrrpFilter = "ip proto 112 or ip6 proto 112"

// advert is one VRRP packet seen in a capture.
type advert struct {
	at       time.Time
	src, dst netip.Addr
	prio     int
}

// adverts decodes the VRRP packets of a capture (stopping it).
func adverts(t *testing.T, c *netlab.Capture) []advert {
	t.Helper()
	rows, err := c.Fields("vrrp", "frame.time_epoch", "ip.src", "ipv6.src", "vrrp.prio", "ip.dst", "ipv6.dst")
	if err != nil {
		t.Fatal(err)
	}
	var out []advert
	for _, r := range rows {
		at, err := netlab.ParseEpoch(r[0])
		if err != nil {
			t.Fatal(err)
		}
		s := r[1]
		if s == "" {
			s = r[2]
		}
		src, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("capture row %q: source: %v", r, err)
		}
		prio, err := strconv.Atoi(r[3])
		if err != nil {
			t.Fatalf("capture row %q: priority: %v", r, err)
		}
		d := r[4]
		if d == "" {
			d = r[5]
		}
		dst, err := netip.ParseAddr(d)
		if err != nil {
			t.Fatalf("capture row %q: destination: %v", r, err)
		}
		out = append(out, advert{at: at, src: src, dst: dst, prio: prio})
	}
	return out
}

// takeover finds, in a capture, the last advert of priority > 0 from old
// and the first advert from new after it.
func takeover(list []advert, old, new netip.Addr) (lastOld, firstNew time.Time, ok bool) {
	last := -1
	for i, a := range list {
		if a.src == old && a.prio > 0 {
			last = i
		}
	}
	if last < 0 {
		return time.Time{}, time.Time{}, false
	}
	for _, a := range list[last+1:] {
		if a.src == new {
			return list[last].at, a.at, true
		}
	}
	return list[last].at, time.Time{}, false
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// ---------------------------------------------------------------------------
// Raw frames.

// vrrpGroup4 is the VRRP IPv4 multicast group and its MAC.
var (
	vrrpGroup4 = netip.MustParseAddr("224.0.0.18")
	vrrpMAC4   = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}
)

// encode encodes p from src to the IPv4 VRRP group.
func encode(t *testing.T, p vrrp.Packet, src netip.Addr) []byte {
	t.Helper()
	p.Type = vrrp.TypeAdvertisement
	b, err := p.AppendBinary(nil, src, vrrpGroup4)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ipv4Frame wraps a VRRP payload into Ethernet + IPv4 (protocol 112, TOS
// 0xc0, a correct header checksum) from srcMAC/src to the VRRP group.
func ipv4Frame(srcMAC net.HardwareAddr, src netip.Addr, ttl uint8, payload []byte) []byte {
	return ipv4Fragment(srcMAC, src, ttl, 0, 0, false, payload)
}

// ipv4Fragment is ipv4Frame for one fragment of a datagram: IP ID id,
// data at byte offset off (a multiple of 8) of the VRRP message, more
// saying whether fragments follow.
func ipv4Fragment(srcMAC net.HardwareAddr, src netip.Addr, ttl uint8, id uint16, off int, more bool, payload []byte) []byte {
	f := make([]byte, 0, 14+20+len(payload))
	f = append(f, vrrpMAC4...)
	f = append(f, srcMAC...)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	ip := make([]byte, 20)
	ip[0] = 0x45
	ip[1] = 0xc0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], id)
	frag := uint16(off / 8)
	if more {
		frag |= 0x2000
	}
	binary.BigEndian.PutUint16(ip[6:], frag)
	ip[8] = ttl
	ip[9] = 112
	s, d := src.As4(), vrrpGroup4.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], vrrp.InternetChecksum(ip))
	f = append(f, ip...)
	return append(f, payload...)
}

// sendFrames sends Ethernet frames out of h's eth0 back to back, on one
// AF_PACKET socket opened in h's namespace (netlab's SendRaw opens one per
// frame, which is too slow for a burst).
func sendFrames(h *netlab.Host, frames [][]byte) error {
	var fd, ifindex int
	err := h.InNetns(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	for _, f := range frames {
		proto := binary.BigEndian.Uint16(f[12:14])
		sa := &syscall.SockaddrLinklayer{Ifindex: ifindex, Protocol: proto<<8 | proto>>8}
		if err := syscall.Sendto(fd, f, 0, sa); err != nil {
			return fmt.Errorf("%s: sendto: %w", h, err)
		}
	}
	return nil
}
