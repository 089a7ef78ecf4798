package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The FRRouting binaries [Host.FRR] runs (Debian's frr package).
const (
	FRRZebra = "/usr/lib/frr/zebra"
	FRRVrrpd = "/usr/lib/frr/vrrpd"
	frrVtysh = "vtysh"
)

// frrUser is the user FRR's daemons drop to. They refuse to run as root
// unless root is in the vty group (privs_init), so they run as the package's
// own user, which keeps CAP_NET_RAW and CAP_NET_ADMIN through zprivs.
const frrUser = "frr"

// FRRRouter is one virtual router of FRR's vrrpd on the host's eth0.
type FRRRouter struct {
	VRID     int // 1..255
	Priority int // 1..254; 0 means FRR's default, 100
	Version  int // 2 or 3; 0 means 3
	// Interval is the advertisement interval. FRR takes milliseconds in
	// steps of 10 ms, 10 ms .. 40.95 s (`vrrp N advertisement-interval`,
	// sent on the wire in centiseconds); 0 means FRR's default, 1 s.
	Interval time.Duration
	// NoPreempt turns preemption off (FRR preempts by default).
	NoPreempt bool
	// VIPs are the virtual addresses, of either family or both. Each
	// family runs as its own virtual router (RFC 5798 §5.2.9), on its own
	// macvlan: see [FRR.Macvlan].
	VIPs []netip.Addr
}

// FRR is one throwaway FRRouting instance, zebra and vrrpd, in a host's
// namespace: its configuration, pid files and sockets live in a directory of
// its own, so several run side by side and none touches /etc/frr or
// /var/run/frr. Create it with [Host.FRR].
type FRR struct {
	h       *Host
	dir     string // config, pid files, vty and zserv sockets
	zebra   *Proc
	vrrpd   *Proc
	routers []FRRRouter

	stopOnce sync.Once
}

// FRR starts FRRouting's zebra and vrrpd in the host's namespace with the
// virtual routers on eth0, and returns once vrrpd answers on its vty and has
// found the macvlan of every family it runs.
//
// FRR's vrrpd does not create the interfaces that carry the virtual MAC: for
// each router and family FRR creates a macvlan on eth0 first, mode bridge
// (so eth0 still receives the other routers' adverts), with the virtual MAC
// 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6) by which vrrpd
// finds it, and the family's VIPs on it. FRR then keeps the macvlan in
// protodown while it is not master instead of removing the VIPs (FRR's
// doc/user/vrrp.rst, "System Configuration"). The IPv6 macvlan gets a random
// link-local address: FRR sends IPv6 adverts from it, and one derived from
// the shared MAC would be the same on every router. The host's arp_ignore
// is set to 1, so eth0 does not answer ARP for a VIP that sits on a macvlan,
// and arp_announce to 2: otherwise the ARP requests eth0 sends to answer a
// client pinging the VIP carry the VIP as sender address with eth0's MAC,
// and the client's neighbour entry for the VIP moves off the virtual MAC.
//
// The test is skipped if FRR is not installed or has no user frr; it fails
// if FRR does not come up. The daemons log to their [Proc.Log] at debug
// level with `debug vrrp protocol`. Everything is stopped and removed when
// the test ends; [FRR.Stop] and [FRR.Kill] do it earlier.
func (h *Host) FRR(routers ...FRRRouter) *FRR {
	t := h.lab.t
	t.Helper()
	for _, bin := range []string{FRRZebra, FRRVrrpd} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("netlab: FRR is not installed (%s: %v)", bin, err)
		}
	}
	if _, err := exec.LookPath(frrVtysh); err != nil {
		t.Skip("netlab: FRR's vtysh is not in PATH")
	}
	u, err := user.Lookup(frrUser)
	if err != nil {
		t.Skipf("netlab: FRR's user %q: %v", frrUser, err)
	}
	sweepFRR(os.TempDir())
	conf, err := frrVrrpdConf(h.name, routers)
	if err != nil {
		t.Fatalf("netlab: host %s: FRR: %v", h.name, err)
	}
	f, err := h.startFRR(u, conf, routers)
	if f != nil {
		t.Cleanup(func() {
			if err := f.Kill(); err != nil {
				t.Errorf("netlab: host %s: FRR cleanup: %v", h.name, err)
			}
		})
	}
	if err != nil {
		t.Fatalf("netlab: host %s: FRR: %v", h.name, err)
	}
	return f
}

// startFRR makes the macvlans and the directory and starts the daemons. A
// non-nil *FRR is returned whenever there is something to clean up.
func (h *Host) startFRR(u *user.User, conf string, routers []FRRRouter) (*FRR, error) {
	if err := h.frrMacvlans(routers); err != nil {
		return nil, err
	}
	// Not under the lab's directory: t.TempDir's parents are 0700, which
	// FRR's user cannot enter, and Unix socket paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("", h.lab.prefix+frrDirSuffix)
	if err != nil {
		return nil, err
	}
	f := &FRR{h: h, dir: dir, routers: routers}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return f, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return f, err
	}
	zebraConf := fmt.Sprintf("hostname %s\nlog stdout debugging\nlog timestamp precision 6\n", h.name)
	for name, text := range map[string]string{"zebra.conf": zebraConf, "vrrpd.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return f, err
		}
	}
	// -P 0: no vty on TCP; vtysh reaches the daemons through --vty_socket.
	common := func(daemon string) []string {
		return []string{
			"-f", filepath.Join(dir, daemon+".conf"),
			"-i", filepath.Join(dir, daemon+".pid"),
			"-z", f.zservPath(),
			"--vty_socket", dir,
			"-u", frrUser, "-g", frrUser,
			"-P", "0",
		}
	}
	if f.zebra, err = h.lab.start(h.name, h.netns, FRRZebra, common("zebra")...); err != nil {
		return f, err
	}
	if err := f.waitFile(f.zservPath(), f.zebra, 10*time.Second); err != nil {
		return f, err
	}
	if f.vrrpd, err = h.lab.start(h.name, h.netns, FRRVrrpd, common("vrrpd")...); err != nil {
		return f, err
	}
	return f, f.waitReady(10 * time.Second)
}

// zservPath is zebra's API socket, which vrrpd connects to.
func (f *FRR) zservPath() string { return filepath.Join(f.dir, "zserv.api") }

// waitFile waits until path exists while p runs.
func (f *FRR) waitFile(path string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited (%s) before creating %s; last lines of its log:\n%s", p, exitStatus(p.err), path, tail(p.log, 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s after %v; last lines of its log:\n%s", p, path, timeout, tail(p.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady waits until vrrpd reports every configured router, each family
// with VIPs bound to its macvlan and out of Initialize.
func (f *FRR) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	why := ""
	for {
		st, err := f.Status(context.Background())
		if err == nil {
			why = f.notReady(st)
			if why == "" {
				return nil
			}
		} else {
			why = err.Error()
		}
		for _, p := range []*Proc{f.zebra, f.vrrpd} {
			select {
			case <-p.Done():
				return fmt.Errorf("%s exited (%s); last lines of its log:\n%s", p, exitStatus(p.err), tail(p.log, 30))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vrrpd not ready after %v: %s; last lines of its log:\n%s", timeout, why, tail(f.vrrpd.log, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notReady says what of the configuration st does not show yet, or "".
func (f *FRR) notReady(st []FRRStatus) string {
	for _, r := range f.routers {
		var got *FRRStatus
		for i := range st {
			if st[i].VRID == r.VRID {
				got = &st[i]
			}
		}
		if got == nil {
			return fmt.Sprintf("vrid %d not in show vrrp", r.VRID)
		}
		for _, fam := range frrFamilies(r.VIPs) {
			s := got.V4
			if fam == 6 {
				s = got.V6
			}
			if s.Interface == "" || s.State == "Initialize" {
				return fmt.Sprintf("vrid %d IPv%d: interface %q, state %q", r.VRID, fam, s.Interface, s.State)
			}
		}
	}
	return ""
}

// frrFamilies lists the address families (4, 6) the VIPs hold.
func frrFamilies(vips []netip.Addr) []int {
	var has4, has6 bool
	for _, v := range vips {
		if v.Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	var fams []int
	if has4 {
		fams = append(fams, 4)
	}
	if has6 {
		fams = append(fams, 6)
	}
	return fams
}

// frrMacvlans creates the macvlan of every router and family, with its
// VIPs, and sets arp_ignore (see [Host.FRR]).
func (h *Host) frrMacvlans(routers []FRRRouter) error {
	var lines []string
	for _, r := range routers {
		for _, fam := range frrFamilies(r.VIPs) {
			name := frrMacvlanName(r.VRID, fam == 6)
			mode := "none" // no IPv6 link-local: the IPv4 router sends nothing over IPv6
			if fam == 6 {
				mode = "random"
			}
			lines = append(lines,
				fmt.Sprintf("link add %s link %s type macvlan mode bridge", name, h.iface),
				fmt.Sprintf("link set dev %s address %s addrgenmode %s", name, FRRVirtualMAC(r.VRID, fam == 6), mode),
			)
			for _, v := range r.VIPs {
				switch {
				case fam == 4 && v.Is4():
					lines = append(lines, fmt.Sprintf("addr add %s/24 dev %s", v, name))
				case fam == 6 && v.Is6():
					lines = append(lines, fmt.Sprintf("addr add %s/64 dev %s nodad", v, name))
				}
			}
			lines = append(lines, fmt.Sprintf("link set dev %s up", name))
		}
	}
	if err := inNetns(h.netns, func() error {
		return writeSysctls(map[string]string{
			"net/ipv4/conf/all/arp_ignore":       "1",
			"net/ipv4/conf/default/arp_ignore":   "1",
			"net/ipv4/conf/all/arp_announce":     "2",
			"net/ipv4/conf/default/arp_announce": "2",
		})
	}); err != nil {
		return err
	}
	if len(lines) == 0 {
		return nil
	}
	return ipBatch(h.netns, lines...)
}

// frrMacvlanName names the macvlan of a router's family: "vrrp4-VRID" or
// "vrrp6-VRID". vrrpd does not care (it finds the macvlan by its MAC).
func frrMacvlanName(vrid int, ipv6 bool) string {
	if ipv6 {
		return fmt.Sprintf("vrrp6-%d", vrid)
	}
	return fmt.Sprintf("vrrp4-%d", vrid)
}

// FRRVirtualMAC returns RFC 5798 §7.3's virtual router MAC address:
// 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6.
func FRRVirtualMAC(vrid int, ipv6 bool) net.HardwareAddr {
	fam := byte(1)
	if ipv6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, byte(vrid)}
}

// frrVrrpdConf renders vrrpd.conf for the routers, checking what FRR would
// reject.
func frrVrrpdConf(hostname string, routers []FRRRouter) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nlog stdout debugging\nlog timestamp precision 6\ndebug vrrp protocol\n!\ninterface eth0\n", hostname)
	seen := map[int]bool{}
	for _, r := range routers {
		if r.VRID < 1 || r.VRID > 255 {
			return "", fmt.Errorf("vrid %d: want 1..255", r.VRID)
		}
		if seen[r.VRID] {
			return "", fmt.Errorf("vrid %d configured twice", r.VRID)
		}
		seen[r.VRID] = true
		if len(r.VIPs) == 0 {
			return "", fmt.Errorf("vrid %d: no VIPs", r.VRID)
		}
		version := r.Version
		if version == 0 {
			version = 3
		}
		if version != 2 && version != 3 {
			return "", fmt.Errorf("vrid %d: version %d: want 2 or 3", r.VRID, version)
		}
		fmt.Fprintf(&b, " vrrp %d version %d\n", r.VRID, version)
		if r.Priority != 0 {
			if r.Priority < 1 || r.Priority > 254 {
				return "", fmt.Errorf("vrid %d: priority %d: FRR takes 1..254", r.VRID, r.Priority)
			}
			fmt.Fprintf(&b, " vrrp %d priority %d\n", r.VRID, r.Priority)
		}
		if r.Interval != 0 {
			ms := r.Interval.Milliseconds()
			if r.Interval%(10*time.Millisecond) != 0 || ms < 10 || ms > 40950 {
				return "", fmt.Errorf("vrid %d: interval %v: FRR takes 10 ms .. 40.95 s in steps of 10 ms", r.VRID, r.Interval)
			}
			fmt.Fprintf(&b, " vrrp %d advertisement-interval %d\n", r.VRID, ms)
		}
		if r.NoPreempt {
			fmt.Fprintf(&b, " no vrrp %d preempt\n", r.VRID)
		}
		for _, v := range r.VIPs {
			if !v.IsValid() || v.Zone() != "" {
				return "", fmt.Errorf("vrid %d: bad VIP %v", r.VRID, v)
			}
			if v.Is4() {
				fmt.Fprintf(&b, " vrrp %d ip %s\n", r.VRID, v)
			} else {
				if version == 2 {
					return "", fmt.Errorf("vrid %d: VRRPv2 has no IPv6 (%v)", r.VRID, v)
				}
				fmt.Fprintf(&b, " vrrp %d ipv6 %s\n", r.VRID, v)
			}
		}
	}
	b.WriteString("!\n")
	return b.String(), nil
}

// Host returns the host FRR runs on.
func (f *FRR) Host() *Host { return f.h }

// Zebra returns the zebra process.
func (f *FRR) Zebra() *Proc { return f.zebra }

// Vrrpd returns the vrrpd process.
func (f *FRR) Vrrpd() *Proc { return f.vrrpd }

// Macvlan returns the name of the macvlan carrying the router's virtual MAC
// for the family (see [Host.FRR]).
func (f *FRR) Macvlan(vrid int, ipv6 bool) string { return frrMacvlanName(vrid, ipv6) }

// Source returns the address FRR sends the router's adverts from: eth0's
// IPv4 address, or for IPv6 the link-local address of the router's IPv6
// macvlan (FRR's doc/user/vrrp.rst; RFC 5798 §5.1.2.1 only asks for a
// link-local address of the interface).
func (f *FRR) Source(vrid int, ipv6 bool) (netip.Addr, error) {
	if !ipv6 {
		return f.h.v4, nil
	}
	name := frrMacvlanName(vrid, true)
	addrs, err := f.h.Addrs(name)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, p := range addrs {
		if p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("netlab: host %s: %s has no link-local address", f.h.name, name)
}

// Vtysh runs vtysh commands (each one -c) against this instance's daemons
// and returns the output.
func (f *FRR) Vtysh(ctx context.Context, cmds ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := []string{"--vty_socket", f.dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return f.h.Run(ctx, frrVtysh, args...)
}

// FRRFamilyStatus is one family's virtual router in `show vrrp json`.
type FRRFamilyStatus struct {
	Interface         string   `json:"interface"` // the macvlan; "" until vrrpd found it
	VMAC              string   `json:"vmac"`
	PrimaryAddress    string   `json:"primaryAddress"` // the advert source
	State             string   `json:"status"`         // "Initialize", "Backup" or "Master"
	EffectivePriority int      `json:"effectivePriority"`
	MasterAdverMs     int      `json:"masterAdverInterval"` // learnt from the master, ms
	SkewTimeMs        int      `json:"skewTime"`
	MasterDownMs      int      `json:"masterDownInterval"`
	Addresses         []string `json:"addresses"`
	Stats             struct {
		AdverTx     int `json:"adverTx"`
		AdverRx     int `json:"adverRx"`
		Transitions int `json:"transitions"`
	} `json:"stats"`
}

// FRRStatus is one virtual router in `show vrrp json`.
type FRRStatus struct {
	VRID      int             `json:"vrid"`
	Version   int             `json:"version"`
	Interface string          `json:"interface"`
	Shutdown  bool            `json:"shutdown"`
	Preempt   bool            `json:"preemptMode"`
	AdverMs   int             `json:"advertisementInterval"` // configured, ms
	V4        FRRFamilyStatus `json:"v4"`
	V6        FRRFamilyStatus `json:"v6"`
}

// Status returns vrrpd's `show vrrp json`.
func (f *FRR) Status(ctx context.Context) ([]FRRStatus, error) {
	out, err := f.Vtysh(ctx, "show vrrp json")
	if err != nil {
		return nil, err
	}
	var st []FRRStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("netlab: host %s: vtysh show vrrp json: %w\n%s", f.h.name, err, out)
	}
	return st, nil
}

// State returns the state of the router's family as keepalived names states:
// "MASTER", "BACKUP" or "INIT" (FRR's Initialize).
func (f *FRR) State(vrid int, ipv6 bool) (string, error) {
	st, err := f.Status(context.Background())
	if err != nil {
		return "", err
	}
	for _, r := range st {
		if r.VRID != vrid {
			continue
		}
		s := r.V4.State
		if ipv6 {
			s = r.V6.State
		}
		switch s {
		case "Master":
			return "MASTER", nil
		case "Backup":
			return "BACKUP", nil
		case "Initialize":
			return "INIT", nil
		}
		return "", fmt.Errorf("netlab: host %s: FRR vrid %d: unknown state %q", f.h.name, vrid, s)
	}
	return "", fmt.Errorf("netlab: host %s: FRR has no vrid %d", f.h.name, vrid)
}

// Freeze stops zebra and vrrpd with SIGSTOP, as a paused VM would: vrrpd
// sends nothing and keeps its macvlans as they are.
func (f *FRR) Freeze() error { return f.signal(syscall.SIGSTOP) }

// Thaw resumes the daemons after [FRR.Freeze].
func (f *FRR) Thaw() error { return f.signal(syscall.SIGCONT) }

func (f *FRR) signal(sig syscall.Signal) error {
	var errs []error
	for _, p := range []*Proc{f.vrrpd, f.zebra} {
		if p != nil {
			errs = append(errs, p.Signal(sig))
		}
	}
	return errors.Join(errs...)
}

// Stop stops the daemons gracefully with SIGTERM (vrrpd sends priority 0
// adverts for the routers it is master of), then as [FRR.Kill].
func (f *FRR) Stop() error {
	var errs []error
	for _, p := range []*Proc{f.vrrpd, f.zebra} {
		if p == nil {
			continue
		}
		_ = p.Signal(syscall.SIGCONT) // a frozen daemon cannot act on SIGTERM
		if err := p.Signal(syscall.SIGTERM); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.Wait(5 * time.Second); err != nil && !isSignalExit(p) {
			// Still running, or exited with an error status: Kill below.
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, f.Kill())...)
}

// isSignalExit reports whether p has exited (with any status): FRR's
// daemons exit non-zero on SIGTERM in some versions, which is not a failure
// of Stop.
func isSignalExit(p *Proc) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// Kill kills the daemons with SIGKILL, at once, as a power cut would, and
// removes the instance's directory and the crash-log directories FRR makes
// under /var/tmp/frr. Calling it again (the test's cleanup does) does
// nothing. The macvlans stay until the host's namespace goes.
func (f *FRR) Kill() error {
	var err error
	f.stopOnce.Do(func() {
		var errs []error
		procs := map[string]*Proc{"vrrpd": f.vrrpd, "zebra": f.zebra}
		for _, p := range procs {
			if p != nil {
				p.killGroup()
			}
		}
		for daemon, p := range procs {
			if p == nil {
				continue
			}
			if e := p.Kill(); e != nil {
				errs = append(errs, e)
			}
			// lib/libfrr.c keeps per-process crash logs in
			// /var/tmp/frr/<daemon>.<pid>.
			_ = os.RemoveAll(fmt.Sprintf("/var/tmp/frr/%s.%d", daemon, p.Pid()))
		}
		if e := os.RemoveAll(f.dir); e != nil {
			errs = append(errs, e)
		}
		err = errors.Join(errs...)
	})
	return err
}

// frrDirSuffix follows the lab prefix in the name of an FRR instance's
// directory (see startFRR).
const frrDirSuffix = "-frr-"

// sweepFRR removes the directories FRR instances of crashed test runs left
// in tmp (the lab prefix in their name carries the dead test binary's pid,
// as [Sweep] reads namespace names), with the crash-log directories their
// daemons left under /var/tmp/frr, found by the pids in their pid files.
// Directories of live processes are left alone. The daemons themselves died
// with the test binary (Pdeathsig).
func sweepFRR(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		lab, _, ok := strings.Cut(e.Name(), frrDirSuffix)
		if !ok || !e.IsDir() {
			continue
		}
		if pid, ok := labPid(lab); !ok || alive(pid) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		for _, daemon := range []string{"vrrpd", "zebra"} {
			b, err := os.ReadFile(filepath.Join(dir, daemon+".pid"))
			if err != nil {
				continue
			}
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && !alive(pid) {
				_ = os.RemoveAll(fmt.Sprintf("/var/tmp/frr/%s.%d", daemon, pid))
			}
		}
		_ = os.RemoveAll(dir)
	}
}
