// Command checkerd runs the health checkers and the vrrp_script, track_file
// and track_process evaluations. The supervisor starts it as an unprivileged
// user with no capabilities; it decides health and streams transitions to
// vrrpd, and never touches the kernel itself.
//
// This is a placeholder: it parses its flags and exits.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/vrrpkit/vrrpkit/pkg/procmem"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
)

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("checkerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runDir := fs.String("run-dir", rundir.Default, "directory of the control sockets")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "checkerd", version)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "checkerd: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// A smaller heap target than Go's default: procmem.Daemon has the figures.
	log.Debug("gc", "settings", procmem.Apply(procmem.Daemon(), os.LookupEnv).String())
	log.Error("checkerd: not implemented yet", "run_dir", *runDir, "version", version)
	return 2
}
