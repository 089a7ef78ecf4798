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
	"strings"

	"github.com/vrrpkit/vrrpkit/pkg/config"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
)

// version is stamped by the Makefile (-X main.version).
var version = "dev"

func main() {
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
	logLevel  string
	version   bool
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
	for _, name := range []string{"f", "use-file"} {
		fs.StringVar(&o.file, name, "/etc/keepalived/keepalived.conf", "configuration `file`")
	}
	for _, name := range []string{"t", "config-test"} {
		fs.Var(&o.test, name, "check the configuration and exit: 0 usable, 1 refused")
	}
	for _, name := range []string{"i", "config-id"} {
		fs.StringVar(&o.configID, name, defaultConfigID(), "configuration `id` for @ID lines (default: hostname up to the first dot)")
	}
	fs.BoolVar(&o.dump, "dump-conf", false, "print the parsed configuration as JSON and exit")
	fs.StringVar(&o.runDir, "run-dir", rundir.Default, "directory for vrrpkit's sockets")
	fs.StringVar(&o.vrrpdPath, "vrrpd", "", "path of vrrpd (default: beside this program)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
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
			fs.BoolVar(&ignored, name, false, "accepted for keepalived compatibility")
		}
	}
	for _, name := range []string{"p", "pid", "r", "vrrp_pid", "c", "checkers_pid", "s", "namespace", "log-facility", "e", "debug"} {
		fs.StringVar(&ignoredStr, name, "", "accepted for keepalived compatibility")
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
	return o, nil
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
	return runDaemon(o, cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
}
