// Command vrrpctl talks to a running supervisor over <run-dir>/control.sock:
// status, watch and reload.
//
// This is a placeholder: it knows its commands but has no daemon to talk to.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

var version = "dev"

const usage = `usage: vrrpctl [flags] <command>

commands:
  status    show the supervisor, its children and every VRRP instance
  watch     stream state changes as they happen
  reload    re-read the configuration (like SIGHUP) and report the result
  version   print the version

flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vrrpctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	runDir := fs.String("run-dir", "/run/vrrpkit", "directory of the supervisor's control socket")
	jsonOut := fs.Bool("json", false, "print JSON instead of text")
	verbose := fs.Bool("v", false, "log what vrrpctl does to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	switch cmd := fs.Arg(0); cmd {
	case "status", "watch", "reload":
		log.Debug("command", "cmd", cmd, "run_dir", *runDir, "json", *jsonOut)
		fmt.Fprintln(stderr, "vrrpctl: no daemon to talk to yet")
		return 2
	case "version":
		fmt.Fprintln(stdout, "vrrpctl", version)
		return 0
	default:
		fmt.Fprintf(stderr, "vrrpctl: unknown command %q (try: status, watch, reload, version)\n", cmd)
		return 2
	}
}
