// Command supervisor is vrrpkit's root process: it reads keepalived.conf,
// starts and watches vrrpd and checkerd, and turns SIGHUP into a validated
// configuration push. It accepts keepalived's command line so that existing
// unit files and habits keep working.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/vrrpkit/vrrpkit/pkg/checkerd"
	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/procmem"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	"github.com/vrrpkit/vrrpkit/pkg/vrrpd/vrrpdcmd"
)

// version is stamped by the Makefile (-X main.version).
var version = "dev"

func main() {
	// The supervisor's binary is also vrrpd: unless --vrrpd names another
	// binary, the supervisor runs vrrpd as its own executable with argv[0]
	// "vrrpd", so that the two processes share the binary's pages (the
	// runtime, gRPC and protobuf are most of both) instead of each paying
	// for them. They stay two processes with their own privileges.
	switch filepath.Base(os.Args[0]) {
	case childVrrpd:
		// The name ps, top and pgrep show (proc(5) /proc/pid/comm), which is
		// otherwise the executable's.
		_ = os.WriteFile("/proc/self/comm", []byte(childVrrpd), 0)
		os.Exit(vrrpdcmd.Main(os.Args[1:], os.Stdout, os.Stderr, version))
	case childCheckerd:
		// Likewise checkerd, which the supervisor runs as an unprivileged
		// user with no capabilities.
		_ = os.WriteFile("/proc/self/comm", []byte(childCheckerd), 0)
		os.Exit(checkerd.Main(os.Args[1:], os.Stdout, os.Stderr, version))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// configTest is -t / --config-test[=FILE]: a flag that may carry a file.
type configTest struct {
	on   bool
	file string
}

func (c *configTest) IsBoolFlag() bool { return true }
func (c *configTest) String() string   { return "" }
func (c *configTest) Set(s string) error {
	switch s {
	case "true":
		c.on = true
	case "false":
		c.on = false
	default:
		c.on, c.file = true, s
	}
	return nil
}

type options struct {
	file      string
	test      configTest
	dump      bool
	configID  string
	runDir    string
	vrrpdPath string
	// checkerdPath: "" runs this binary as checkerd; "none" runs none.
	checkerdPath string
	checkerUser  string
	logLevel     string
	version      bool
	// metricsListen: host:port for Prometheus metrics (metrics.go); "" off.
	metricsListen string
	// statusGroup: members may use vrrpctl's read-only commands
	// (controlAccess); "" leaves the control socket root only.
	statusGroup string
	dumpOptions // dump.go: dump files, --signum, pid files
}

// shortBools are keepalived's single-letter switches that take no value;
// "-nlD" is split into "-n -l -D" as getopt would.
const shortBools = "nlDPCtvhdSGXRmMrbB"

func expandShort(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && !strings.ContainsRune(a, '=') {
			all := true
			for _, c := range a[1:] {
				if !strings.ContainsRune(shortBools, c) {
					all = false
					break
				}
			}
			if all {
				for _, c := range a[1:] {
					out = append(out, "-"+string(c))
				}
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("supervisor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(fs.Output(), fs) }
	for _, name := range []string{"f", "use-file"} {
		fs.StringVar(&o.file, name, "/etc/keepalived/keepalived.conf", "configuration `file`")
	}
	for _, name := range []string{"t", "config-test"} {
		fs.Var(&o.test, name, "check the configuration and exit: 0 usable, 1 refused; =`file` checks file instead of -f's")
	}
	for _, name := range []string{"i", "config-id"} {
		fs.StringVar(&o.configID, name, defaultConfigID(), "configuration `id` for @ID lines, by default the hostname up to the first dot")
	}
	fs.BoolVar(&o.dump, "dump-conf", false, "print the parsed configuration as JSON and exit")
	fs.StringVar(&o.runDir, "run-dir", rundir.Default, "`directory` for vrrpkit's sockets")
	fs.StringVar(&o.vrrpdPath, "vrrpd", "", "`path` of a vrrpd binary (default: this program, run as vrrpd)")
	fs.StringVar(&o.checkerdPath, "checkerd", "", "`path` of a checkerd binary (default: this program, run as checkerd), or none")
	fs.StringVar(&o.checkerUser, "checker-user", defaultCheckerUser(user.Lookup), "`user` checkerd runs as, with no capabilities")
	fs.StringVar(&o.statusGroup, "status-group", "", "`group` whose members may use vrrpctl status, peers, watch, ipvs (not reload); default root only")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus metrics on http://`address`/metrics (e.g. 127.0.0.1:9650 or [::1]:9650); empty: off")
	for _, name := range []string{"v", "version"} {
		fs.BoolVar(&o.version, name, false, "print the version and exit")
	}
	// keepalived switches accepted for compatibility: vrrpkit always runs
	// in the foreground, logs through slog to stderr (journald under
	// systemd) and runs both VRRP and checkers.
	var ignored bool
	var ignoredStr string
	for _, name := range []string{"n", "dont-fork", "l", "log-console", "D", "log-detail", "P", "vrrp", "C", "check",
		"d", "dump-conf-keepalived", "S", "G", "no-syslog", "X", "release-vips", "R", "dont-respawn", "m", "core-dump", "M", "B", "all"} {
		if fs.Lookup(name) == nil {
			fs.BoolVar(&ignored, name, false, compatUsage)
		}
	}
	addDumpFlags(fs, &o.dumpOptions)
	for _, name := range []string{"s", "namespace", "log-facility", "e", "debug"} {
		fs.StringVar(&ignoredStr, name, "", compatUsage)
	}
	if err := fs.Parse(expandShort(args)); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.test.file != "" {
		o.file = o.test.file
	}
	o.resolvePidFiles()
	return o, nil
}

// compatUsage is the help of the keepalived switches that vrrpkit accepts
// and ignores; printUsage lists the flags that have it on one line.
const compatUsage = "accepted for keepalived compatibility"

// printUsage is -h. The handful of flags that do something come first, with
// their help, each spelled the ways it can be typed (-f, --use-file); the
// thirty-odd keepalived switches accepted only so that old command lines
// still start follow in one paragraph, where they cannot hide the others.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	type option struct {
		names []string // aliases, as VisitAll gives them (sorted)
		flag  *flag.Flag
	}
	var options []*option
	byValue := map[uintptr]*option{}
	var compat, compatWithValue []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == compatUsage {
			if isBool(f) {
				compat = append(compat, dashed(f.Name))
			} else {
				compatWithValue = append(compatWithValue, dashed(f.Name))
			}
			return
		}
		// Aliases are flags defined on the same variable (-f and
		// --use-file), so they share the Value's pointer.
		if v := reflect.ValueOf(f.Value); v.Kind() == reflect.Pointer {
			if o := byValue[v.Pointer()]; o != nil {
				o.names = append(o.names, f.Name)
				return
			}
			o := &option{names: []string{f.Name}, flag: f}
			byValue[v.Pointer()] = o
			options = append(options, o)
			return
		}
		options = append(options, &option{names: []string{f.Name}, flag: f})
	})
	// keepalived's own switches (those with a one-letter form) first, then
	// vrrpkit's; the short spelling before the long one.
	for _, o := range options {
		sort.Slice(o.names, func(i, j int) bool { return shortFirst(o.names[i], o.names[j]) })
	}
	sort.Slice(options, func(i, j int) bool { return shortFirst(options[i].names[0], options[j].names[0]) })
	sort.Slice(compat, func(i, j int) bool { return shortFirst(compat[i], compat[j]) })
	sort.Slice(compatWithValue, func(i, j int) bool { return shortFirst(compatWithValue[i], compatWithValue[j]) })

	var b strings.Builder
	b.WriteString(`usage: supervisor [flags]

vrrpkit's root process: it reads keepalived.conf, starts and watches vrrpd,
and serves vrrpctl on <run-dir>/control.sock. It takes keepalived's flags, so
existing unit files and habits keep working.

`)
	for _, o := range options {
		name, usage := flag.UnquoteUsage(o.flag)
		spelled := make([]string, len(o.names))
		for i, n := range o.names {
			spelled[i] = dashed(n)
		}
		fmt.Fprintf(&b, "  %s", strings.Join(spelled, ", "))
		switch {
		case name != "" && isBool(o.flag):
			fmt.Fprintf(&b, "[=%s]", name) // -t or --config-test=FILE
		case name != "":
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n    \t%s", usage)
		if d := o.flag.DefValue; d != "" && !(isBool(o.flag) && d == "false") {
			fmt.Fprintf(&b, " (default %q)", d)
		}
		b.WriteString("\n")
	}
	b.WriteString("  -h, --help\n    \tprint this help and exit\n\n")
	text := "Accepted for keepalived compatibility and ignored: " + strings.Join(compat, ", ")
	if len(compatWithValue) > 0 {
		text += "; with a value: " + strings.Join(compatWithValue, ", ")
	}
	// Why ignoring them is harmless, and that -P and -C (VRRP only,
	// checkers only) do not split the work here.
	text += ". vrrpkit always runs in the foreground, logs to stderr (the journal under systemd) and runs both VRRP and the checkers."
	b.WriteString(wrap(text, 80, "  "))
	io.WriteString(w, b.String())
}

// shortFirst orders one-letter flags before long ones, each alphabetically;
// names may carry their dashes.
func shortFirst(a, b string) bool {
	a, b = strings.TrimLeft(a, "-"), strings.TrimLeft(b, "-")
	if (len(a) == 1) != (len(b) == 1) {
		return len(a) == 1
	}
	return a < b
}

// isBool reports whether f takes no value (-n rather than -p FILE).
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dashed spells a flag as keepalived's getopt does: -f, --use-file. (Go's
// flag package takes one or two dashes for either.)
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// wrap breaks text into lines of at most width columns at spaces, starting
// every line but the first with indent; it ends with a newline.
func wrap(text string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(text) {
		switch {
		case i == 0:
		case col+1+len(word) > width:
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteString(" ")
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString("\n")
	return b.String()
}

// defaultConfigID is keepalived's: the hostname up to the first dot.
func defaultConfigID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	id, _, _ := strings.Cut(h, ".")
	return id
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "supervisor: %v\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "vrrpkit supervisor", version, "(keepalived.conf compatible)")
		return 0
	}
	if o.signum != "" {
		return printSignum(o.signum, stdout, stderr)
	}
	cfg, diags := config.Parse(o.file, config.Options{ConfigID: o.configID, Host: config.OSHost{}})
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if o.dump && cfg != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cfg); err != nil {
			fmt.Fprintf(stderr, "supervisor: encoding the configuration: %v\n", err)
			return 1
		}
	}
	if diags.HasErrors() {
		fmt.Fprintf(stderr, "supervisor: %s: configuration refused (%d errors)\n", o.file, len(diags.Errors()))
		return 1
	}
	if o.test.on || o.dump {
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "supervisor: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// A smaller heap target than Go's default: procmem.Daemon has the figures.
	log.Debug("gc", "settings", procmem.Apply(procmem.Daemon(), os.LookupEnv).String())
	return runDaemon(o, cfg, log)
}
