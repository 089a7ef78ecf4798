// Command vrrpctl talks to a running supervisor over <run-dir>/control.sock.
//
// Flags go anywhere on the line (vrrpctl status --json, vrrpctl --json
// status), every command has -h, and a mistake on the command line exits 2
// with what to type instead. What it prints comes from pkg/ctlview.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/ipc"
	"github.com/vrrpkit/vrrpkit/pkg/rundir"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// version is stamped by the Makefile (-X main.version).
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and failed (e.g. no supervisor)
	exitCmdLine = 2 // the command line is wrong; nothing was attempted
)

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	// Never nil: cobra reads os.Args when given nil.
	root.SetArgs(goStyleFlags(root, args))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "vrrpctl: %v\n", err)
	var ce *cmdLineError
	if errors.As(err, &ce) {
		if ce.usage != nil {
			fmt.Fprint(stderr, "\n"+ce.usage.UsageString())
		}
		return exitCmdLine
	}
	var he *hintedError
	if errors.As(err, &he) {
		fmt.Fprintln(stderr, he.hint)
	}
	return exitFailed
}

// cmdLineError is a mistake on the command line; usage, if set, is the
// command whose usage is printed after it.
type cmdLineError struct {
	err   error
	usage *cobra.Command
}

func (e *cmdLineError) Error() string { return e.err.Error() }
func (e *cmdLineError) Unwrap() error { return e.err }

// hintedError is a failure and, on the lines after it, what to type about it.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

// globals are the flags every command takes.
type globals struct {
	runDir  string
	json    bool
	timeout time.Duration
}

// usageTemplate is cobra's default cut down: one usage line, the commands,
// the command's own flags apart from the global ones, examples.
const usageTemplate = `Usage:
  {{.UseLine}}
{{- if .HasAvailableSubCommands}}

Commands:
{{- range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding}} {{.Short}}{{end}}{{end}}{{end}}
{{- if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}
{{- if .HasAvailableInheritedFlags}}

Global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}
{{- if .HasExample}}

Examples:
{{.Example}}{{end}}
{{- if .HasAvailableSubCommands}}

Run 'vrrpctl <command> -h' for a command's flags.{{end}}
`

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "vrrpctl [flags] <command>",
		Short: "vrrpctl talks to the vrrpkit supervisor",
		Long: "vrrpctl talks to the vrrpkit supervisor over <run-dir>/control.sock.\n" +
			"Flags may come before or after the command.",
		// Errors and usage are printed once, by run, where the exit status
		// is decided.
		SilenceErrors: true,
		SilenceUsage:  true,
		// Runnable with any arguments, so that a missing or unknown command
		// reaches RunE and gets vrrpctl's message rather than cobra's.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &cmdLineError{err: errors.New("no command given"), usage: cmd}
			}
			return unknownCommand(cmd, args[0])
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// SuggestionsFor uses this as is; cobra only defaults it (to 2)
		// for its own unknown-command message, which vrrpctl replaces.
		SuggestionsMinimumDistance: 2,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &cmdLineError{err: err, usage: cmd}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.runDir, "run-dir", rundir.Default, "`directory` of the supervisor's "+rundir.ControlSocket)
	pf.BoolVar(&g.json, "json", false, "print JSON (README.md, \"vrrpctl status --json\") instead of text")
	pf.DurationVar(&g.timeout, "timeout", 3*time.Second, "how long to wait for the supervisor")
	root.AddCommand(statusCmd(g), peersCmd(g), watchCmd(g), reloadCmd(g), ipvsCmd(g), genhashCmd(), versionCmd())
	return root
}

// unknownCommand says so, with cobra's suggestion and the list of commands.
func unknownCommand(root *cobra.Command, name string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown command %q", name)
	if s := root.SuggestionsFor(name); len(s) > 0 {
		fmt.Fprintf(&b, " (did you mean %q?)", s[0])
	}
	b.WriteString("; the commands are:")
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			fmt.Fprintf(&b, "\n  %-*s %s", c.NamePadding(), c.Name(), c.Short)
		}
	}
	b.WriteString("\nRun 'vrrpctl <command> -h' for a command's flags.")
	return &cmdLineError{err: errors.New(b.String())}
}

// noArgs refuses arguments with the command's usage.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &cmdLineError{err: fmt.Errorf("%s takes no arguments, got %q", cmd.Name(), args[0]), usage: cmd}
	}
	return nil
}

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "show the supervisor, its children and every VRRP instance",
		Long: "status shows the running configuration, the supervisor's children and every\n" +
			"VRRP instance: a table, or with --json the JSON documented in README.md.",
		Example: "  vrrpctl status\n" +
			"  vrrpctl status --json | jq -r '.vrrp_instances[] | select(.state == \"MASTER\") | .name'\n" +
			"  vrrpctl status --run-dir /tmp/vrrpkit-test",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := fetchStatus(cmd.Context(), rundir.Dir(g.runDir), g.timeout)
			if err != nil {
				return err
			}
			v := ctlview.FromProto(st)
			if g.json {
				return ctlview.WriteJSON(cmd.OutOrStdout(), v)
			}
			return ctlview.WriteText(cmd.OutOrStdout(), v, time.Local)
		},
	}
}

func ipvsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ipvs",
		Short: "show the kernel's IPVS table with each real server's health",
		Long: "ipvs prints the kernel's IPVS table as ipvsadm -Ln does, each destination that\n" +
			"is a configured real or sorry server followed by its health (\"up 3m2s\",\n" +
			"\"down 12s: <reason>\"); with --json the JSON documented in README.md.",
		Example: "  vrrpctl ipvs\n" +
			"  vrrpctl ipvs --json | jq -r '.services[].destinations[] | select(.real_server.healthy == false) | .address'",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t *pb.IpvsResponse
			err := callSupervisor(cmd.Context(), rundir.Dir(g.runDir), g.timeout, "ipvs",
				func(ctx context.Context, c pb.SupervisorClient) (err error) {
					t, err = c.Ipvs(ctx, &pb.IpvsRequest{})
					return err
				})
			if err != nil {
				return err
			}
			v := ctlview.FromIPVS(t)
			if g.json {
				return ctlview.WriteIPVSJSON(cmd.OutOrStdout(), v)
			}
			return ctlview.WriteIPVS(cmd.OutOrStdout(), v, time.Now())
		},
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print vrrpctl's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "vrrpctl", version)
			return err
		},
	}
}

// fetchStatus asks the supervisor of dir for its status, within timeout.
func fetchStatus(ctx context.Context, dir rundir.Dir, timeout time.Duration) (*pb.SupervisorStatusResponse, error) {
	var st *pb.SupervisorStatusResponse
	err := callSupervisor(ctx, dir, timeout, "status", func(ctx context.Context, c pb.SupervisorClient) (err error) {
		st, err = c.Status(ctx, &pb.SupervisorStatusRequest{})
		return err
	})
	return st, err
}

// callSupervisor dials the supervisor of dir and makes one call (what, for
// messages), within timeout, turning every way it can fail into a message
// the user can act on.
func callSupervisor(ctx context.Context, dir rundir.Dir, timeout time.Duration, what string, call func(context.Context, pb.SupervisorClient) error) error {
	sock := dir.Control()
	// No timeout (0) for a stream that lasts until interrupted: a missing
	// socket still fails at once, through dial below.
	if timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, timeout)
		defer cancelTimeout()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// ipc.Dial waits for the connection until ctx is done, redialling. A
	// missing socket or one nobody listens on will not change within the
	// timeout, so the first connect error ends the wait, and it is that
	// error, not "context deadline exceeded", that the user needs to see.
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			cancel(err)
		}
		return c, err
	}
	// explain turns a failure into what the user can act on, from why ctx
	// ended: the timeout, or a connect error (also one while redialling
	// during the call); nil if ctx did not end.
	explain := func(err error) error {
		cause := context.Cause(ctx)
		switch {
		// gRPC sends the deadline along, so the call can end with
		// DeadlineExceeded an instant before ctx's own timer does.
		case errors.Is(cause, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
			return noAnswer(sock, timeout, err)
		case cause != nil && !errors.Is(cause, context.Canceled):
			return unreachable(sock, cause)
		}
		return nil
	}
	conn, err := ipc.Dial(ctx, sock, grpc.WithContextDialer(dial))
	if err != nil {
		if e := explain(err); e != nil {
			return e
		}
		return fmt.Errorf("connecting to the supervisor at %s: %w", sock, err)
	}
	defer conn.Close()
	if err := call(ctx, pb.NewSupervisorClient(conn)); err != nil {
		if e := explain(err); e != nil {
			return e
		}
		return fmt.Errorf("%s from the supervisor at %s: %s: %s", what, sock, status.Code(err), status.Convert(err).Message())
	}
	return nil
}

// unreachable explains a failed connect(2) to the control socket.
func unreachable(sock string, err error) error {
	// "connect: no such file or directory", without repeating the path.
	if op := (*net.OpError)(nil); errors.As(err, &op) {
		err = op.Err
	}
	err = fmt.Errorf("cannot reach the supervisor at %s: %w", sock, err)
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return &hintedError{err: err, hint: "The control socket is root only for now: sudo vrrpctl status"}
	}
	return &hintedError{err: err, hint: "Is it running? Check with: systemctl status vrrpkit\n" +
		"If it runs with another run directory: vrrpctl --run-dir DIR status"}
}

// noAnswer explains a supervisor that accepted the connection but did not
// answer in time.
func noAnswer(sock string, timeout time.Duration, err error) error {
	return &hintedError{
		err: fmt.Errorf("no answer from the supervisor at %s within %v: %w", sock, timeout, err),
		hint: "It may be busy, stuck or refusing this user (its log says which): journalctl -u vrrpkit\n" +
			"To wait longer: vrrpctl --timeout 10s status",
	}
}

// goStyleFlags rewrites "-json" and "-run-dir=x" into "--json" and
// "--run-dir=x" for vrrpctl's own long flags, and leaves everything else
// alone. vrrpctl used Go's flag package, which takes either spelling (and
// the supervisor still does), so scripts saying "vrrpctl -json status" keep
// working; pflag would read "-json" as -j -s -o -n.
func goStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{"help": true} // cobra adds -h/--help at execution
	add := func(fs *pflag.FlagSet) { fs.VisitAll(func(f *pflag.Flag) { long[f.Name] = true }) }
	add(root.PersistentFlags())
	for _, c := range root.Commands() {
		add(c.Flags())
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			if name, _, _ := strings.Cut(a[1:], "="); len(name) > 1 && long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
