// Command lvsbench is the half of bench/lvs.sh that runs inside the qemu VM
// (pkg/vmlab, real IPVS): it measures the health checking of many real
// servers by vrrpkit and by keepalived, one after the other on the same
// configuration and the same real servers, and prints the figures.
//
// The real servers are TCP listeners on one address in a network namespace
// behind a veth (198.51.100.2, ports from -port), each accepting and
// closing what connects; the daemon under test runs in the VM's own
// namespace with one virtual_server holding all of them, each with a
// TCP_CHECK. For each size in -n (by default 5,000, the scale,
// then 200, which an emulated VM on a shared host can keep up with), and
// for each daemon:
//
//  1. start it and wait until the kernel's IPVS table holds every real
//     server and every listener has been checked at least once (at most
//     -settle-max: a daemon that falls behind is measured as it is);
//  2. after -settle, read utime+stime (/proc/PID/stat) of every process of
//     the daemon over -steady seconds of wall time (CPU % of one CPU), and
//     their Pss/Rss (/proc/PID/smaps_rollup) at the end; the listeners
//     count the checks meanwhile (checks per server per second shows a
//     daemon that falls behind its delay_loop);
//  3. close -kill listeners, evenly spread over -spread, while a poller
//     dumps the service's destinations over IPVS netlink in a loop: a real
//     server's detection time is from its listener's close to the end of
//     the first dump that lacks it (an upper bound; the dump period, also
//     printed, is the resolution);
//  4. stop the daemon (SIGTERM), clear what it left in IPVS and reopen the
//     closed listeners for the next daemon.
//
// The host side (lvsbench_test.go) builds this program and the supervisor
// statically, boots the VM and relays the report. With -ipvs=false
// -netns=false -rs-addr 127.0.0.1 it runs on a kernel without IPVS (parts
// 1 and 2 only, vrrpkit alone: keepalived's checker exits without IPVS);
// bench/lvs.sh does that natively in a throwaway namespace.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"golang.org/x/sys/unix"
)

// Addresses: TEST-NET-1 for the virtual server, TEST-NET-2 for the real
// servers (RFC 5737, -rs-addr); nothing leaves the VM.
var vip = netip.MustParseAddr("192.0.2.100")

const (
	vport  = 80
	rsNS   = "lvsbench-rs"
	userHZ = 100 // USER_HZ of /proc/PID/stat on x86-64 (sysconf(_SC_CLK_TCK))
)

type options struct {
	n, kill, port                int // n: of the size being measured
	sizes                        []int
	delayLoop, retry, dbr, ctout int // seconds, like the config
	spread, steady, settle       time.Duration
	daemons                      []string
	supervisor, keepalived, ip   string
	work                         string
	debug                        bool
	ipvs, netns                  bool
	rsAddr                       netip.Addr
	settleMax, detectGrace       time.Duration
}

func main() {
	var o options
	var daemons string
	sizes := flag.String("n", "5000,200", "real servers, a comma-separated list: each size is measured in turn (listeners are shared)")
	flag.IntVar(&o.kill, "kill", 200, "real servers killed in the detection part")
	flag.IntVar(&o.port, "port", 10000, "first real-server port")
	flag.IntVar(&o.delayLoop, "delay-loop", 1, "delay_loop, seconds")
	flag.IntVar(&o.retry, "retry", 1, "TCP_CHECK retry")
	flag.IntVar(&o.dbr, "delay-before-retry", 1, "TCP_CHECK delay_before_retry, seconds")
	flag.IntVar(&o.ctout, "connect-timeout", 1, "TCP_CHECK connect_timeout, seconds")
	flag.DurationVar(&o.spread, "spread", 4*time.Second, "the kills are spread over this")
	flag.DurationVar(&o.steady, "steady", 10*time.Second, "CPU measurement window")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after every real server is checked, before measuring")
	flag.StringVar(&daemons, "daemons", "vrrpkit,keepalived", "daemons to measure, in order")
	flag.StringVar(&o.supervisor, "supervisor", "/usr/local/sbin/supervisor", "vrrpkit's supervisor binary")
	flag.StringVar(&o.keepalived, "keepalived", "/usr/sbin/keepalived", "keepalived binary")
	flag.StringVar(&o.ip, "ip", "/usr/sbin/ip", "iproute2's ip (busybox's has no netns)")
	flag.StringVar(&o.work, "work", "/tmp/lvsbench", "work directory (configs, logs)")
	flag.BoolVar(&o.debug, "debug", false, "print a summary and the tail of each daemon's log to stderr")
	flag.BoolVar(&o.ipvs, "ipvs", true, "the kernel has IPVS: wait for the table, measure detection (false: CPU and memory only)")
	flag.BoolVar(&o.netns, "netns", true, "make the real servers' namespace and veth; false: listen in this namespace on -rs-addr")
	rs := flag.String("rs-addr", "198.51.100.2", "real servers' address")
	flag.DurationVar(&o.settleMax, "settle-max", 30*time.Second, "longest wait for every real server to be in IPVS and checked once")
	flag.DurationVar(&o.detectGrace, "detect-grace", 5*time.Second, "how long past the longest possible detection to wait for removals")
	flag.Parse()
	var err error
	if o.rsAddr, err = netip.ParseAddr(*rs); err != nil || !o.rsAddr.Is4() {
		fmt.Fprintf(os.Stderr, "lvsbench: -rs-addr %q: want an IPv4 address\n", *rs)
		os.Exit(2)
	}
	for _, f := range strings.Split(*sizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "lvsbench: -n %q: want positive numbers\n", *sizes)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, v)
		o.n = max(o.n, v)
	}
	o.daemons = strings.Split(daemons, ",")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "lvsbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	// 5,000 listeners here, 5,000 checker sockets in the daemon: the
	// kernel's default of 1024 (soft) / 4096 (hard) is not enough. The
	// daemons inherit the limit (keepalived raises its own too,
	// check_daemon.c set_checker_max_fds).
	// Where the hard limit cannot be raised (no CAP_SYS_RESOURCE), the
	// soft one goes up to it.
	lim := &unix.Rlimit{Cur: 1 << 18, Max: 1 << 18}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, lim); err != nil {
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, lim); err != nil {
			return fmt.Errorf("getrlimit NOFILE: %w", err)
		}
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, lim); err != nil {
			return fmt.Errorf("setrlimit NOFILE: %w", err)
		}
	}
	if lim.Cur < uint64(o.n)+1024 {
		return fmt.Errorf("open files limited to %d: too few for %d real servers", lim.Cur, o.n)
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	if o.netns {
		// The namespace (and the veth into it) go on every way out: a run
		// by hand on a host would otherwise leave them, and the next one
		// fail at "netns add".
		defer unnetwork(o)
		if err := network(o); err != nil {
			return err
		}
	}
	srv, err := newServers(o)
	if err != nil {
		return err
	}
	defer srv.closeAll()
	var c ipvs.Client
	if o.ipvs {
		if c, err = ipvs.New(); err != nil {
			return fmt.Errorf("IPVS netlink: %w", err)
		}
	}

	for k, n := range o.sizes {
		o := o
		o.n = n
		// The first n listeners are this size's real servers.
		conf := filepath.Join(o.work, fmt.Sprintf("keepalived-%d.conf", n))
		if err := os.WriteFile(conf, []byte(config(o)), 0o644); err != nil {
			return err
		}
		var results []*result
		for _, d := range o.daemons {
			r, err := measure(o, c, srv, d, conf)
			if err != nil {
				return fmt.Errorf("%s, %d real servers: %w", d, n, err)
			}
			results = append(results, r)
		}
		if k > 0 {
			fmt.Println()
		}
		report(o, results)
	}
	return nil
}

func unnetwork(o options) {
	_ = exec.Command(o.ip, "link", "del", "lb0").Run()
	_ = exec.Command(o.ip, "netns", "del", rsNS).Run()
}

// network makes the real servers' namespace: veth lb0 (198.51.100.1/24)
// here, eth0 (198.51.100.2/24) there; unnetwork removes both.
func network(o options) error {
	for _, args := range [][]string{
		{"netns", "add", rsNS},
		{"link", "add", "lb0", "type", "veth", "peer", "name", "eth0", "netns", rsNS},
		{"addr", "add", "198.51.100.1/24", "dev", "lb0"},
		{"link", "set", "lb0", "up"},
		{"-n", rsNS, "link", "set", "lo", "up"},
		{"-n", rsNS, "addr", "add", o.rsAddr.String() + "/24", "dev", "eth0"},
		{"-n", rsNS, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command(o.ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// config is the keepalived.conf both daemons read.
func config(o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id lvsbench\n}\n")
	fmt.Fprintf(&b, "virtual_server %s %d {\n    delay_loop %d\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", vip, vport, o.delayLoop)
	for i := 0; i < o.n; i++ {
		fmt.Fprintf(&b, "    real_server %s %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout %d\n            retry %d\n            delay_before_retry %d\n        }\n    }\n",
			o.rsAddr, o.port+i, o.ctout, o.retry, o.dbr)
	}
	b.WriteString("}\n")
	return b.String()
}

// servers are the real servers: one listening socket per port, in rsNS,
// served by one goroutine over one epoll set that accepts and closes at
// once. Raw sockets rather than net.Listener: the VM is emulated and
// shared with the daemon under test, so the servers should cost as little
// as they can (no netpoller registration per accepted connection).
type servers struct {
	o        options
	ep       int
	mu       sync.Mutex // guards fds against the epoll loop
	fds      []int      // listening socket per server; -1: closed
	accepted []atomic.Int64
	done     chan struct{}
}

func newServers(o options) (*servers, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	s := &servers{o: o, ep: ep, fds: make([]int, o.n), accepted: make([]atomic.Int64, o.n), done: make(chan struct{})}
	all := make([]int, o.n)
	for i := range all {
		s.fds[i] = -1
		all[i] = i
	}
	if err := s.open(all); err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

// open opens the listening sockets of servers idx in rsNS: on a thread of
// its own that enters the namespace and is never handed back (a goroutine
// that ends locked takes its thread with it), so nothing else runs there;
// a socket stays in the namespace it was made in.
func (s *servers) open(idx []int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if s.o.netns {
			nsfd, err := unix.Open("/run/netns/"+rsNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("open netns %s: %w", rsNS, err)
				return
			}
			defer unix.Close(nsfd)
			if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
				errc <- fmt.Errorf("setns %s: %w", rsNS, err)
				return
			}
		}
		for _, i := range idx {
			fd, err := listenTCP(s.o.rsAddr, s.o.port+i)
			if err != nil {
				errc <- err
				return
			}
			s.mu.Lock()
			s.fds[i] = fd
			s.mu.Unlock()
			ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
			if err := unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				errc <- fmt.Errorf("epoll_ctl: %w", err)
				return
			}
		}
		errc <- nil
	}()
	return <-errc
}

func listenTCP(a netip.Addr, port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: a.As4(), Port: port}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s:%d: %w", a, port, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s:%d: %w", a, port, err)
	}
	return fd, nil
}

// loop accepts and closes, counting per server, until closeAll.
func (s *servers) loop() {
	evs := make([]unix.EpollEvent, 256)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		n, err := unix.EpollWait(s.ep, evs, 100)
		if err != nil {
			continue // EINTR
		}
		s.mu.Lock()
		for _, ev := range evs[:n] {
			i := int(ev.Fd)
			fd := s.fds[i]
			if fd < 0 {
				continue // closed since epoll_wait returned
			}
			for {
				c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
				if err != nil {
					break // EAGAIN, or EMFILE and the like: that check fails, as it should
				}
				s.accepted[i].Add(1)
				unix.Close(c)
			}
		}
		s.mu.Unlock()
	}
}

// kill closes server i's listening socket (which leaves the epoll set
// with it): from then on a connect gets a RST. It returns the time of the
// close.
func (s *servers) kill(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fds[i] >= 0 {
		unix.Close(s.fds[i])
		s.fds[i] = -1
	}
	return time.Now()
}

func (s *servers) closeAll() {
	close(s.done)
	for i := range s.fds {
		s.kill(i)
	}
}

func (s *servers) counts() []int64 {
	out := make([]int64, len(s.accepted))
	for i := range s.accepted {
		out[i] = s.accepted[i].Load()
	}
	return out
}

func service() ipvs.Service {
	return ipvs.Service{Address: vip, Port: vport, Protocol: ipvs.TCP, Family: ipvs.INET, Netmask: netmask.MaskFrom(32, 32)}
}

// dests returns which real servers (by index) the kernel's service holds;
// none when the service does not exist.
func dests(o options, c ipvs.Client) ([]bool, int, error) {
	present := make([]bool, o.n)
	ds, err := c.Destinations(service())
	if errors.Is(err, os.ErrNotExist) {
		return present, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	n := 0
	for _, d := range ds {
		i := int(d.Port) - o.port
		if d.Address == o.rsAddr && i >= 0 && i < o.n && !present[i] {
			present[i] = true
			n++
		}
	}
	return present, n, nil
}

// proc is one process of a daemon at one moment.
type proc struct {
	pid           int
	comm          string
	ticks         int64 // utime+stime
	uticks        int64 // utime alone
	rssKB, pssKB  int64
	threads, fds  int
	cpu, user     float64 // % of one CPU over the window (all, user), set by measure
	bornInWindow  bool
	checker, main bool
}

// tree returns root and its descendants, from /proc.
func tree(root int) []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		kids[ppid] = append(kids[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// statFields are /proc/PID/stat's fields after the comm: [0] is state
// (field 3), [1] ppid, [11] utime (field 14), [12] stime.
func statFields(b []byte) []string {
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Fields(s)
}

func snapshot(root int) map[int]*proc {
	out := map[int]*proc{}
	for _, pid := range tree(root) {
		dir := fmt.Sprintf("/proc/%d/", pid)
		b, err := os.ReadFile(dir + "stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		comm, _ := os.ReadFile(dir + "comm")
		p := &proc{pid: pid, comm: strings.TrimSpace(string(comm)), ticks: ut + st, uticks: ut}
		p.rssKB = kbField(dir+"smaps_rollup", "Rss:")
		p.pssKB = kbField(dir+"smaps_rollup", "Pss:")
		p.threads = int(kbField(dir+"status", "Threads:"))
		if fds, err := os.ReadDir(dir + "fd"); err == nil {
			p.fds = len(fds)
		}
		out[pid] = p
	}
	return out
}

// kbField is the number after key in a "key: N kB" file.
func kbField(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				v, _ := strconv.ParseInt(fs[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// result is what one daemon measured.
type result struct {
	name              string
	programmed        time.Duration // start to every real server in IPVS
	allChecked        time.Duration // start to every listener checked once
	window            time.Duration
	procs             []*proc // at the end of the window, with cpu set
	checks            int64   // accepted by the listeners during the window
	flapped           int     // real servers seen missing from IPVS during the window
	lat               []time.Duration
	notRemoved        int // victims still in IPVS at the deadline
	spurious          int // others that left IPVS meanwhile
	polls             int
	pollMean, pollMax time.Duration // dump period: the resolution
	exit              string
	stopTook          time.Duration
	settled           bool // programmed and all checked within -settle-max
	inIPVS            int  // real servers in IPVS at the start of the window
	killed            int
	detectFor         time.Duration // how long detection was watched
}

// usage is the sum over some of a daemon's processes.
type usage struct {
	cpu, user float64 // % of one CPU
	pss, rss  int64   // kB
}

func (r *result) sum(filter func(*proc) bool) usage {
	var u usage
	for _, p := range r.procs {
		if filter(p) {
			u.cpu += p.cpu
			u.user += p.user
			u.pss += p.pssKB
			u.rss += p.rssKB
		}
	}
	return u
}

// perCheck is u's CPU time per check made in the window, in µs.
func (r *result) perCheck(u usage) float64 {
	if r.checks == 0 {
		return 0
	}
	return u.cpu / 100 * r.window.Seconds() * 1e6 / float64(r.checks)
}

func (r *result) checksPerSec(n int) float64 {
	return float64(r.checks) / float64(n) / r.window.Seconds()
}

func measure(o options, c ipvs.Client, srv *servers, kind, conf string) (*result, error) {
	r := &result{name: kind}
	if o.ipvs {
		if _, n, err := dests(o, c); err != nil {
			return nil, err
		} else if n != 0 {
			return nil, fmt.Errorf("IPVS is not empty before the start (%d real servers)", n)
		}
	}
	logf, err := os.Create(filepath.Join(o.work, fmt.Sprintf("%s-%d.log", kind, o.n)))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var cmd *exec.Cmd
	switch kind {
	case "vrrpkit":
		cmd = exec.Command(o.supervisor, "-f", conf, "--run-dir", filepath.Join(o.work, "run"))
	case "keepalived":
		// Checker only (-C), in the foreground (-n), logging to stderr
		// (-l -D) and not to syslog (-G), as bench/vrrp.sh runs it.
		cmd = exec.Command(o.keepalived, "-n", "-l", "-D", "-G", "-C", "-f", conf,
			"-p", filepath.Join(o.work, "keepalived.pid"), "-c", filepath.Join(o.work, "checkers.pid"))
	default:
		return nil, fmt.Errorf("unknown daemon %q", kind)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	base := srv.counts()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		t := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			r.exit = "0"
			if waitErr != nil {
				r.exit = waitErr.Error()
			}
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			r.exit = "SIGKILLed after 20 s"
		}
		r.stopTook = time.Since(t)
	}
	defer stop()
	alive := func() error {
		select {
		case <-exited:
			return fmt.Errorf("exited early (%v); log %s:\n%s", waitErr, logf.Name(), tail(logf.Name(), 20))
		default:
			return nil
		}
	}

	// 1. Every real server programmed and every listener checked once,
	// or -settle-max.
	deadline := start.Add(o.settleMax)
	programmed := func() (bool, error) {
		if !o.ipvs {
			return true, nil
		}
		_, n, err := dests(o, c)
		return n == o.n, err
	}
	for (r.programmed == 0 || r.allChecked == 0) && time.Now().Before(deadline) {
		if err := alive(); err != nil {
			return nil, err
		}
		time.Sleep(250 * time.Millisecond)
		if r.programmed == 0 {
			if ok, err := programmed(); err != nil {
				return nil, err
			} else if ok {
				r.programmed = time.Since(start)
			}
		}
		if r.allChecked == 0 {
			cs, all := srv.counts()[:o.n], true
			for i := range cs {
				if cs[i] == base[i] {
					all = false
					break
				}
			}
			if all {
				r.allChecked = time.Since(start)
			}
		}
	}
	r.settled = r.programmed != 0 && r.allChecked != 0
	if r.settled {
		time.Sleep(o.settle)
	}

	// 2. CPU over the window, memory at its end.
	s0 := snapshot(cmd.Process.Pid)
	c0 := srv.counts()
	t0 := time.Now()
	// Once a second, which real servers the table lacks: a checker that
	// falls behind under load fails checks of live servers.
	flapped := make([]bool, o.n)
	if o.ipvs {
		if p, _, err := dests(o, c); err != nil {
			return nil, err
		} else {
			r.inIPVS = count(p)
			for i := range p {
				flapped[i] = !p[i] // missing already: not counted
			}
		}
	}
	for end := t0.Add(o.steady); time.Now().Before(end); {
		time.Sleep(min(time.Second, time.Until(end)))
		if !o.ipvs {
			continue
		}
		p, _, err := dests(o, c)
		if err != nil {
			return nil, err
		}
		for i := range p {
			if !p[i] && !flapped[i] {
				flapped[i] = true
				r.flapped++
			}
		}
	}
	s1 := snapshot(cmd.Process.Pid)
	c1 := srv.counts()
	r.window = time.Since(t0)
	if err := alive(); err != nil {
		return nil, err
	}
	for i := range c1 {
		r.checks += c1[i] - c0[i]
	}
	for pid, p := range s1 {
		if q, ok := s0[pid]; ok {
			p.cpu = 100 * float64(p.ticks-q.ticks) / userHZ / r.window.Seconds()
			p.user = 100 * float64(p.uticks-q.uticks) / userHZ / r.window.Seconds()
		} else {
			p.cpu = 100 * float64(p.ticks) / userHZ / r.window.Seconds()
			p.user = 100 * float64(p.uticks) / userHZ / r.window.Seconds()
			p.bornInWindow = true
		}
		p.main = pid == cmd.Process.Pid
		// The checker: checkerd for vrrpkit, the child for keepalived
		// (its parent only watches it).
		p.checker = p.comm == "checkerd" || (kind == "keepalived" && !p.main)
		r.procs = append(r.procs, p)
	}
	slices.SortFunc(r.procs, func(a, b *proc) int { return a.pid - b.pid })

	var victims []int
	if o.ipvs {
		if victims, err = detect(o, c, srv, r); err != nil {
			return nil, err
		}
	}

	// 4. Stop, clear, reopen.
	stop()
	if o.ipvs {
		// Both remove what they added at stop; a SIGKILLed one may not have.
		_ = c.RemoveService(service())
	}
	if o.debug {
		b, _ := os.ReadFile(logf.Name())
		fmt.Fprintf(os.Stderr, "%s: %d log lines, most frequent:\n%s\nthe last ones:\n%s\n", kind, strings.Count(string(b), "\n"),
			logSummary(string(b), 15), tail(logf.Name(), 15))
	}
	if err := srv.open(victims); err != nil {
		return nil, fmt.Errorf("reopening the listeners: %w", err)
	}
	return r, nil
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// detect is part 3: it closes o.kill listeners of real servers that are in
// IPVS, evenly spread over o.spread, and polls the table until all of them
// have left it (or a deadline); it returns the victims.
func detect(o options, c ipvs.Client, srv *servers, r *result) ([]int, error) {
	present, _, err := dests(o, c)
	if err != nil {
		return nil, err
	}
	var in []int
	for i, p := range present {
		if p {
			in = append(in, i)
		}
	}
	// At most half of a size's servers, so that the others show spurious
	// removals.
	k := min(o.kill, len(in), o.n/2)
	victims := make([]int, k)
	isVictim := make([]bool, o.n)
	for j := range victims {
		victims[j] = in[j*len(in)/k+len(in)/k/2]
		isVictim[victims[j]] = true
	}
	killedAt := make([]atomic.Int64, k) // unix ns
	removedAt := make([]int64, k)
	gone := make([]bool, o.n) // seen absent
	for i := range present {
		gone[i] = !present[i]
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killerDone := make(chan struct{})
	kstart := time.Now()
	go func() {
		defer close(killerDone)
		for j, v := range victims {
			at := kstart.Add(time.Duration(j) * o.spread / time.Duration(k))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
			killedAt[j].Store(srv.kill(v).UnixNano())
		}
	}()
	worst := time.Duration(o.delayLoop+o.retry*(o.dbr+o.ctout)+o.ctout) * time.Second
	pdeadline := kstart.Add(o.spread + worst + o.detectGrace)
	var prev time.Time
	var sumPoll time.Duration
	left := k
	for left > 0 && time.Now().Before(pdeadline) {
		ts := time.Now()
		p, _, err := dests(o, c)
		if err != nil {
			return nil, err
		}
		te := time.Now()
		if !prev.IsZero() {
			d := te.Sub(prev)
			sumPoll += d
			r.pollMax = max(r.pollMax, d)
		}
		prev = ts
		r.polls++
		for j, v := range victims {
			if p[v] || removedAt[j] != 0 {
				continue
			}
			if killedAt[j].Load() == 0 {
				if !gone[v] { // gone before its listener closed
					gone[v] = true
					r.spurious++
				}
				continue
			}
			removedAt[j] = te.UnixNano()
			left--
		}
		for i := range p {
			if !p[i] && !isVictim[i] && !gone[i] {
				gone[i] = true
				r.spurious++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-killerDone
	r.detectFor = time.Since(kstart)
	if r.polls > 1 {
		r.pollMean = sumPoll / time.Duration(r.polls-1)
	}
	for j := range victims {
		if removedAt[j] == 0 {
			r.notRemoved++
			continue
		}
		r.lat = append(r.lat, time.Duration(removedAt[j]-killedAt[j].Load()))
	}
	slices.Sort(r.lat)
	r.killed = k
	return victims, nil
}

// logSummary counts log lines by message (slog's msg=, else the line with
// its numbers blanked) and lists the top most frequent.
func logSummary(log string, top int) string {
	counts := map[string]int{}
	digits := regexp.MustCompile(`[0-9]+`)
	for _, l := range strings.Split(log, "\n") {
		if l == "" {
			continue
		}
		key := l
		if _, rest, ok := strings.Cut(l, `msg="`); ok {
			key, _, _ = strings.Cut(rest, `"`)
		} else {
			key = digits.ReplaceAllString(l, "N")
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return counts[b] - counts[a] })
	var b strings.Builder
	for i, k := range keys {
		if i == top {
			break
		}
		fmt.Fprintf(&b, "%7d %s\n", counts[k], k)
	}
	return b.String()
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// pct is the nearest-rank percentile of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/1e6) }

func report(o options, rs []*result) {
	mem := kbField("/proc/meminfo", "MemTotal:")
	load, _ := os.ReadFile("/proc/loadavg")
	bound := time.Duration(o.delayLoop+o.retry*o.dbr)*time.Second + 50*time.Millisecond
	where := fmt.Sprintf("in one VM (%d vCPU(s), %d MB; load average in it at the end %s)",
		runtime.NumCPU(), mem/1024, strings.Join(strings.Fields(string(load))[:3], " "))
	if !o.ipvs {
		where = fmt.Sprintf("natively, without IPVS (%d CPUs, load average at the end %s)",
			runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))
	}
	fmt.Printf("LVS health checking: %d real servers (%s, ports %d-%d) in one virtual_server (lb_kind NAT), each with\n",
		o.n, o.rsAddr, o.port, o.port+o.n-1)
	fmt.Printf("TCP_CHECK { connect_timeout %d retry %d delay_before_retry %d }, delay_loop %d; the same keepalived.conf for all,\n",
		o.ctout, o.retry, o.dbr, o.delayLoop)
	fmt.Printf("run one after the other %s.\n", where)
	fmt.Printf("CPU: utime+stime over %v of wall time, %% of one CPU; per check: that CPU time over the checks the\n", o.steady)
	fmt.Printf("listeners accepted meanwhile; PSS/RSS: smaps_rollup at the end of that window.\n")
	if o.ipvs {
		fmt.Printf("Detection: %d listeners closed over %v, time to leaving the IPVS table (goal: p99 <= delay_loop +\n", min(o.kill, o.n/2), o.spread)
		fmt.Printf("retry*delay_before_retry + 50 ms = %s ms; one that dies just after a check takes delay_loop +\n", ms(bound))
		fmt.Printf("retry*delay_before_retry + the checks' own time).\n")
	}
	row := func(label string, f func(*result) string) {
		fmt.Printf("  %-40s", label)
		for _, r := range rs {
			fmt.Printf(" %20s", f(r))
		}
		fmt.Println()
	}
	all := func(*proc) bool { return true }
	checker := func(p *proc) bool { return p.checker }
	row("", func(r *result) string { return r.name })
	row("CPU % (all its processes)", func(r *result) string { return fmt.Sprintf("%.2f", r.sum(all).cpu) })
	row("  of which user", func(r *result) string { return fmt.Sprintf("%.2f", r.sum(all).user) })
	row("CPU % (checker process)", func(r *result) string { return fmt.Sprintf("%.2f", r.sum(checker).cpu) })
	row("CPU µs per check (all / checker)", func(r *result) string {
		return fmt.Sprintf("%.0f / %.0f", r.perCheck(r.sum(all)), r.perCheck(r.sum(checker)))
	})
	row("checks/s per real server", func(r *result) string { return fmt.Sprintf("%.3f", r.checksPerSec(o.n)) })
	if o.ipvs {
		row("live real servers dropped in the window", func(r *result) string { return fmt.Sprint(r.flapped) })
	}
	row("PSS MB (all its processes)", func(r *result) string { return fmt.Sprintf("%.1f", float64(r.sum(all).pss)/1024) })
	row("RSS MB (all its processes)", func(r *result) string { return fmt.Sprintf("%.1f", float64(r.sum(all).rss)/1024) })
	if o.ipvs {
		none := func(r *result) string { return fmt.Sprintf("none in %.0fs", r.detectFor.Seconds()) }
		row("detection p50 / p99 / max, ms", func(r *result) string {
			if len(r.lat) == 0 {
				return none(r)
			}
			return fmt.Sprintf("%s / %s / %s", ms(pct(r.lat, 0.5)), ms(pct(r.lat, 0.99)), ms(pct(r.lat, 1)))
		})
		row("detection min, ms", func(r *result) string {
			if len(r.lat) == 0 {
				return none(r)
			}
			return ms(pct(r.lat, 0))
		})
		row("p99 goal met", func(r *result) string {
			return fmt.Sprint(r.notRemoved == 0 && len(r.lat) > 0 && pct(r.lat, 0.99) <= bound)
		})
		row("killed / not removed / others removed", func(r *result) string {
			return fmt.Sprintf("%d / %d / %d", r.killed, r.notRemoved, r.spurious)
		})
		row("IPVS dump period mean / max, ms", func(r *result) string {
			return fmt.Sprintf("%.1f / %.1f", float64(r.pollMean)/1e6, float64(r.pollMax)/1e6)
		})
	}
	since := func(d time.Duration) string {
		if d == 0 {
			return "never"
		}
		return fmt.Sprintf("%.1f", d.Seconds())
	}
	if o.ipvs {
		row("all in IPVS / all checked after, s", func(r *result) string {
			return fmt.Sprintf("%s / %s", since(r.programmed), since(r.allChecked))
		})
		row("in IPVS at the window's start", func(r *result) string { return fmt.Sprint(r.inIPVS) })
	} else {
		row("all checked after, s", func(r *result) string { return since(r.allChecked) })
	}
	row("stop (SIGTERM) took, s", func(r *result) string { return fmt.Sprintf("%.1f", r.stopTook.Seconds()) })
	row("exit status", func(r *result) string { return r.exit })
	for _, r := range rs {
		if !r.settled {
			fmt.Printf("  note: %s had not settled (every real server in IPVS and checked once) within %v: measured anyway\n", r.name, o.settleMax)
		}
	}
	for _, r := range rs {
		fmt.Printf("  %s per process (CPU %% (user %%), PSS/RSS MB, threads, fds):", r.name)
		for i, p := range r.procs {
			sep := ","
			if i == 0 {
				sep = ""
			}
			born := ""
			if p.bornInWindow {
				born = " (born in the window)"
			}
			fmt.Printf("%s %s %.2f%% (%.2f%%) %.1f/%.1f %d %d%s", sep, p.comm, p.cpu, p.user, float64(p.pssKB)/1024, float64(p.rssKB)/1024, p.threads, p.fds, born)
		}
		fmt.Println()
	}
	if len(rs) == 2 {
		a, b := rs[0], rs[1]
		ratio := func(x, y float64) string {
			if !(y > 0) || math.IsNaN(x) {
				return "n/a"
			}
			return fmt.Sprintf("%.2f", x/y)
		}
		d := func(r *result, p float64) float64 {
			if len(r.lat) == 0 {
				return math.NaN()
			}
			return float64(pct(r.lat, p))
		}
		fmt.Printf("  ratio %s/%s: CPU %s (checker alone %s), CPU per check %s, PSS %s, detection p50 %s p99 %s max %s\n",
			a.name, b.name, ratio(a.sum(all).cpu, b.sum(all).cpu), ratio(a.sum(checker).cpu, b.sum(checker).cpu),
			ratio(a.perCheck(a.sum(all)), b.perCheck(b.sum(all))),
			ratio(float64(a.sum(all).pss), float64(b.sum(all).pss)),
			ratio(d(a, 0.5), d(b, 0.5)), ratio(d(a, 0.99), d(b, 0.99)), ratio(d(a, 1), d(b, 1)))
		fmt.Printf("  (below 1: %s is leaner/faster)\n", a.name)
	}
}
