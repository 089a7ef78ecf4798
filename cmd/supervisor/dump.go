package main

// keepalived's file interface, for the scripts and tools built on it:
//
//   - SIGUSR1 writes keepalived.data, SIGUSR2 keepalived.stats, in $TMPDIR
//     (if absolute) else /tmp, as keepalived 2.2.7's vrrp_print_data and
//     vrrp_print_stats do (vrrp/vrrp_print.c, make_tmp_filename in
//     lib/utils.c); --data-file and --stats-file move them. The text is
//     pkg/kadump's, and Supervisor.Dump (vrrpctl dump, vrrpctl stats)
//     returns the same text without any file.
//   - --signum=NAME prints the signal number, as keepalived --signum does.
//   - -p/--pid, -r/--vrrp_pid, -c/--checkers_pid: the supervisor's, vrrpd's
//     and checkerd's pids, where keepalived keeps its main, VRRP and
//     checker pids (core/main.c: /run/keepalived.pid, /run/vrrp.pid,
//     /run/checkers.pid), removed at exit.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/kadump"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	"github.com/vrrpkit/vrrpkit/pkg/supervise"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// dumpOptions are the flags of this file (options embeds them).
type dumpOptions struct {
	dataFile, statsFile string
	signum              string
	// Pid files; "" writes none. See resolvePidFiles for the defaults.
	pidFile, vrrpPidFile, checkersPidFile string
}

// keepalived's default pid files (core/main.c, RUNSTATEDIR "/" PACKAGE
// ".pid" and so on, when no instance name or pid directory is set).
const (
	defaultPidFile         = "/run/keepalived.pid"
	defaultVrrpPidFile     = "/run/vrrp.pid"
	defaultCheckersPidFile = "/run/checkers.pid"
)

// addDumpFlags defines this file's flags on fs.
func addDumpFlags(fs *flag.FlagSet, o *dumpOptions) {
	fs.StringVar(&o.dataFile, "data-file", tmpFile("keepalived.data"), "`file` SIGUSR1 writes the state to, as keepalived's")
	fs.StringVar(&o.statsFile, "stats-file", tmpFile("keepalived.stats"), "`file` SIGUSR2 writes the counters to, as keepalived's")
	fs.StringVar(&o.signum, "signum", "", "print the number of the signal for `SIGFUNC` (STOP, RELOAD, DATA, STATS) and exit")
	for _, name := range []string{"p", "pid"} {
		fs.StringVar(&o.pidFile, name, "", "supervisor's pid `file` (default "+defaultPidFile+" with the default --run-dir)")
	}
	for _, name := range []string{"r", "vrrp_pid"} {
		fs.StringVar(&o.vrrpPidFile, name, "", "vrrpd's pid `file` (default "+defaultVrrpPidFile+" with the default --run-dir)")
	}
	for _, name := range []string{"c", "checkers_pid"} {
		fs.StringVar(&o.checkersPidFile, name, "", "checkerd's pid `file` (default "+defaultCheckersPidFile+" with the default --run-dir)")
	}
}

// tmpFile is keepalived's make_tmp_filename: $TMPDIR when it is an
// absolute path (set_tmp_dir), else /tmp.
func tmpFile(name string) string {
	dir := os.Getenv("TMPDIR")
	if !strings.HasPrefix(dir, "/") {
		dir = "/tmp"
	}
	return filepath.Join(dir, name)
}

// resolvePidFiles fills in keepalived's default pid files, but only for a
// supervisor on the default run directory: that is the installed one, while
// tests and side-by-side daemons each pass their own --run-dir and must not
// fight over /run/keepalived.pid. A path given on the command line is
// always used.
func (o *options) resolvePidFiles() {
	if o.runDir != rundir.Default {
		return
	}
	for _, p := range []struct {
		file *string
		def  string
	}{{&o.pidFile, defaultPidFile}, {&o.vrrpPidFile, defaultVrrpPidFile}, {&o.checkersPidFile, defaultCheckersPidFile}} {
		if *p.file == "" {
			*p.file = p.def
		}
	}
}

// printSignum is --signum: keepalived's get_signum (lib/signals.c) for the
// functions vrrpkit has. STATS_CLEAR and JSON are refused rather than
// numbered: vrrpkit's counters are monotonic and it writes no JSON dump
// (vrrpctl status --json is its JSON), so a number for them would name a
// signal this process does not handle.
func printSignum(name string, stdout, stderr io.Writer) int {
	signals := map[string]syscall.Signal{"STOP": syscall.SIGTERM, "RELOAD": syscall.SIGHUP, "DATA": syscall.SIGUSR1, "STATS": syscall.SIGUSR2}
	if sig, ok := signals[name]; ok {
		fmt.Fprintln(stdout, int(sig))
		return 0
	}
	switch name {
	case "STATS_CLEAR", "JSON":
		fmt.Fprintf(stderr, "supervisor: sigfunc %s is not supported by vrrpkit (its counters are never cleared; vrrpctl status --json gives JSON)\n", name)
	default:
		// keepalived's message and status for an unknown name.
		fmt.Fprintf(stderr, "Unknown sigfunc %s\n", name)
	}
	return 1
}

// startDumps serves SIGUSR1 and SIGUSR2 and writes the supervisor's pid
// file, until the returned function is called (it waits for the handler
// and removes the pid files). The pid file is written only once the
// signals are caught, so a tool that signals the pid in it always gets its
// file. (Before that, and in vrrpd and checkerd, the Go runtime ignores
// both signals: they do not kill.)
func (d *daemon) startDumps(ctx context.Context) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	if f := d.opts.pidFile; f != "" {
		if err := writePidFile(f, os.Getpid()); err != nil {
			d.log.Error("writing the pid file", "err", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sig:
				kind, file := pb.DumpKind_DUMP_KIND_DATA, d.opts.dataFile
				if s == syscall.SIGUSR2 {
					kind, file = pb.DumpKind_DUMP_KIND_STATS, d.opts.statsFile
				}
				text, err := d.dumpText(ctx, kind)
				if err == nil {
					err = writeDumpFile(file, text)
				}
				if err != nil {
					d.log.Error("writing keepalived's dump file", "signal", s.String(), "file", file, "err", err)
					continue
				}
				d.log.Info("wrote keepalived's dump file", "signal", s.String(), "file", file)
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		cancel()
		<-done
		for _, f := range []string{d.opts.pidFile, d.opts.vrrpPidFile, d.opts.checkersPidFile} {
			removePidFile(f)
		}
	}
}

// childPidFile keeps vrrpd's and checkerd's pid files: written when the
// child starts, removed when it exits (a restarted child writes its new
// pid), as keepalived's parent keeps its children's.
func (d *daemon) childPidFile(ev supervise.Event) {
	file := d.opts.vrrpPidFile
	if ev.Name == childCheckerd {
		file = d.opts.checkersPidFile
	}
	if file == "" {
		return
	}
	switch ev.Kind {
	case supervise.Started:
		if err := writePidFile(file, ev.PID); err != nil {
			d.log.Error("writing the pid file", "child", ev.Name, "err", err)
		}
	case supervise.Exited:
		removePidFile(file)
	}
}

// writePidFile is keepalived's pidfile_write (core/pidfile.c): "PID\n",
// mode 0644, opened with O_NOFOLLOW so that a symbolic link planted at the
// path is not followed to a file of someone else's.
func writePidFile(path string, pid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	_, err = f.WriteString(strconv.Itoa(pid) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

func removePidFile(path string) {
	if path != "" {
		_ = os.Remove(path) // gone already is fine
	}
}

// writeDumpFile replaces path with text as keepalived's fopen_safe (mode
// "w", lib/utils.c) does: the text goes into a new file of a random name in
// the same directory, created exclusively with mode 0600 (keepalived's
// 0666 & ~umask 0177), which is then renamed over path. So a symbolic link
// or file that someone else planted at the path in /tmp is replaced, never
// followed or written through, and a reader who held the old file open
// does not see the new text. (O_NOFOLLOW|O_TRUNC would refuse the link but
// still truncate and write a planted regular file in place.)
func writeDumpFile(path, text string) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Dump is Supervisor.Dump: the text SIGUSR1 or SIGUSR2 writes.
func (c *control) Dump(ctx context.Context, req *pb.DumpRequest) (*pb.DumpResponse, error) {
	text, err := c.d.dumpText(ctx, req.GetKind())
	if err != nil {
		return nil, err
	}
	return &pb.DumpResponse{Text: text}, nil
}

// dumpText renders kind from the status Supervisor.Status gives, the
// running snapshot and this namespace's interfaces (vrrpd's: the
// supervisor runs in the same one).
func (d *daemon) dumpText(ctx context.Context, kind pb.DumpKind) (string, error) {
	if kind != pb.DumpKind_DUMP_KIND_DATA && kind != pb.DumpKind_DUMP_KIND_STATS {
		return "", status.Errorf(codes.InvalidArgument, "dump kind %v: want DATA or STATS", kind)
	}
	st, err := (&control{d: d}).Status(ctx, &pb.SupervisorStatusRequest{})
	if err != nil {
		return "", err
	}
	if kind == pb.DumpKind_DUMP_KIND_STATS {
		return kadump.Stats(st), nil
	}
	d.mu.Lock()
	snap := d.current
	d.mu.Unlock()
	ifaces, err := hostInterfaces()
	if err != nil {
		d.log.Warn("dump: listing interfaces; the Interfaces section is left out", "err", err)
	}
	return kadump.Data(kadump.Input{Status: st, Config: snap, Interfaces: ifaces}), nil
}

// hostInterfaces lists this namespace's interfaces for kadump: addresses
// from net, and the flags and link type net does not give from sysfs
// (/sys/class/net/NAME/flags and type, as ip link shows them).
func hostInterfaces() ([]kadump.Interface, error) {
	list, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []kadump.Interface
	for _, ifc := range list {
		k := kadump.Interface{
			Name: ifc.Name, Index: ifc.Index, MTU: ifc.MTU,
			Up: ifc.Flags&net.FlagUp != 0, Running: ifc.Flags&net.FlagRunning != 0,
			Broadcasting: ifc.Flags&net.FlagBroadcast != 0, Loopback: ifc.Flags&net.FlagLoopback != 0,
			PointToPoint: ifc.Flags&net.FlagPointToPoint != 0, Multicast: ifc.Flags&net.FlagMulticast != 0,
		}
		if len(ifc.HardwareAddr) > 0 {
			k.MAC = ifc.HardwareAddr.String()
			bcast := make(net.HardwareAddr, len(ifc.HardwareAddr))
			for i := range bcast {
				bcast[i] = 0xff
			}
			k.Broadcast = bcast.String()
		}
		if b, err := os.ReadFile("/sys/class/net/" + ifc.Name + "/flags"); err == nil {
			if v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 32); err == nil {
				k.NoARP = v&unix.IFF_NOARP != 0
			}
		}
		k.HWType = "UNKNOWN"
		if b, err := os.ReadFile("/sys/class/net/" + ifc.Name + "/type"); err == nil {
			// The ARPHRD_ names keepalived prints (vrrp_if.c).
			switch strings.TrimSpace(string(b)) {
			case "1":
				k.HWType = "ETHERNET"
			case "772":
				k.HWType = "LOOPBACK"
			case "776":
				k.HWType = "IPV6_IN_IPV4"
			case "65534":
				k.HWType = "NONE"
			}
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			switch {
			case ipn.IP.To4() != nil:
				if k.IPv4 == "" {
					k.IPv4 = ipn.IP.String()
				}
			case ipn.IP.IsLinkLocalUnicast():
				if k.IPv6 == "" {
					k.IPv6 = ipn.IP.String()
				}
			}
		}
		out = append(out, k)
	}
	return out, nil
}
