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
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

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
		if *jsonOut {
			b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
			if err != nil {
				fmt.Fprintf(stderr, "vrrpctl: %v\n", err)
				return 1
			}
			fmt.Fprintln(stdout, string(b))
			return 0
		}
		printStatus(stdout, st)
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

func printStatus(w io.Writer, st *pb.SupervisorStatusResponse) {
	fmt.Fprintf(w, "config %s, generation %d, loaded %s\n", st.GetConfigPath(), st.GetGeneration(),
		st.GetConfigLoadedAt().AsTime().Local().Format(time.DateTime))
	if f := st.GetLastReloadFailure(); f != nil {
		fmt.Fprintf(w, "last reload REFUSED at %s:\n  %s\n", f.GetAt().AsTime().Local().Format(time.DateTime), strings.Join(f.GetErrors(), "\n  "))
	}
	for _, c := range st.GetChildren() {
		state := "down"
		if c.GetRunning() {
			state = fmt.Sprintf("pid %d", c.GetPid())
		}
		fmt.Fprintf(w, "%s: %s, %d restarts", c.GetName(), state, c.GetRestarts())
		if c.GetLastExit() != "" {
			fmt.Fprintf(w, ", last exit: %s", c.GetLastExit())
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tINTERFACE\tVRID\tSTATE\tPRIO\tMASTER\tSINCE\tDROPS")
	for _, in := range st.GetInstances() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", in.GetName(), in.GetInterface(), in.GetVrid(),
			strings.TrimPrefix(in.GetState().String(), "VRRP_STATE_"), in.GetEffectivePriority(), in.GetMasterAddr(),
			in.GetStateSince().AsTime().Local().Format(time.TimeOnly), drops(in.GetCounters()))
	}
	tw.Flush()
}

// drops lists the drop counters ("bad_ttl=3 bad_checksum=1").
func drops(c *pb.InstanceCounters) string {
	var parts []string
	for _, d := range c.GetDrops() {
		parts = append(parts, fmt.Sprintf("%s=%d", d.GetReason(), d.GetCount()))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
