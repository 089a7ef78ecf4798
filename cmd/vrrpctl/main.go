// Command vrrpctl talks to a running supervisor over <run-dir>/control.sock.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

var version = "dev"

const usage = `usage: vrrpctl [flags] <command>

commands:
  status    show the supervisor, its children and every VRRP instance
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
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the supervisor")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	switch cmd := fs.Arg(0); cmd {
	case "status":
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		st, err := status(ctx, filepath.Join(*runDir, "control.sock"))
		if err != nil {
			fmt.Fprintf(stderr, "vrrpctl: %v\n", err)
			return 1
		}
		v := ctlview.FromProto(st)
		if *jsonOut {
			err = ctlview.WriteJSON(stdout, v)
		} else {
			err = ctlview.WriteText(stdout, v, time.Local)
		}
		if err != nil {
			fmt.Fprintf(stderr, "vrrpctl: %v\n", err)
			return 1
		}
		return 0
	case "version":
		fmt.Fprintln(stdout, "vrrpctl", version)
		return 0
	default:
		fmt.Fprintf(stderr, "vrrpctl: unknown command %q (try: status, version)\n", cmd)
		return 2
	}
}

func status(ctx context.Context, path string) (*pb.SupervisorStatusResponse, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no supervisor at %s: %w", path, err)
	}
	conn, err := ipc.Dial(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	defer conn.Close()
	st, err := pb.NewSupervisorClient(conn).Status(ctx, &pb.SupervisorStatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("status from %s: %w", path, err)
	}
	return st, nil
}
