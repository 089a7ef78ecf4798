// Package scriptrun runs the scripts of a keepalived configuration the way
// keepalived runs them (notify scripts, vrrp_script, later MISC_CHECK): as
// script_user, with a clean environment, in a process group of their own,
// with a timeout, and refused when enable_script_security finds them
// unsafe. Only the supervisor runs scripts (design.md, "Processes"); its
// children ask it over gRPC (Server) by naming a script of the running
// configuration, never by sending a command line.
package scriptrun

import (
	"syscall"
	"time"
)

// Command is one script to run.
type Command struct {
	// Name says what the script is for in logs: "vrrp_script chk_nginx",
	// "notify_master VI_1".
	Name string
	// Args are the words keepalived would exec, as config.Script.Args
	// holds them: Args[0] is the program (a path, or a name looked up in
	// PATH), the rest are its arguments. No shell is involved unless Args[0]
	// is one.
	Args []string
	// User and Group to run as; "" means the Runner's default (global_defs
	// script_user / script_group, resolved by the caller).
	User, Group string
	// Timeout kills the script's process group (SIGKILL) when it runs
	// longer; 0 means no timeout.
	Timeout time.Duration
	// KillGrace, when positive, replaces the Runner's KillGrace for this
	// script: SIGTERM at Timeout, SIGKILL KillGrace later.
	KillGrace time.Duration
	// Security is enable_script_security: refuse a script that a non-root
	// user could have modified, as keepalived does.
	Security bool
}

// Result is how a script ended.
type Result struct {
	// ExitStatus is the exit status (0..255) if the script exited, else -1.
	ExitStatus int
	// Signal is the signal that ended it, 0 if none.
	Signal syscall.Signal
	// TimedOut: the script outlived Command.Timeout and was killed.
	TimedOut bool
	// Err is set when the script could not be started (missing, not
	// executable, unknown user, refused by enable_script_security); its
	// message is the log line a keepalived user would recognise, and it
	// is a *StartError whose Kind (ErrNotFound, ErrInsecure ...) errors.Is
	// matches. Err is also set (ErrExec) when the script was killed
	// because the caller's context ended.
	Err error
	// Duration is how long the script ran.
	Duration time.Duration
}

// OK reports whether the script exited with status 0.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && r.ExitStatus == 0 }
