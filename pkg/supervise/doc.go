// Package supervise runs the vrrpkit child processes (vrrpd, checkerd): it
// execs them with exactly the privileges they need, restarts them with
// backoff when they die, and stops them with SIGTERM, then SIGKILL.
//
// # Privileges
//
// A [Spec] names the capabilities the child keeps (Spec.AmbientCaps) and,
// optionally, the uid/gid it runs as (Spec.Credential). The child ends with
//
//	CapInh == CapPrm == CapEff == CapAmb == CapBnd == Spec.AmbientCaps
//
// whether it runs as root or not. The mechanism (capabilities(7)):
//
//   - Ambient capabilities. syscall.SysProcAttr.AmbientCaps makes the forked
//     child, before execve, set PR_SET_KEEPCAPS, change uid/gid, add each cap
//     to its permitted and inheritable sets with capset(2) and raise it with
//     prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE) (prctl(2)). A program
//     without file capabilities then execs with P'(permitted) =
//     P'(effective) = P'(ambient).
//   - That rule does not hold for uid 0: execve(2) by root grants the whole
//     bounding set. The parent therefore sets SECBIT_NOROOT and
//     SECBIT_NOROOT_LOCKED (PR_SET_SECUREBITS) so root is not special across
//     the exec, and drops every other capability from the bounding set
//     (PR_CAPBSET_DROP), so neither setuid binaries nor file capabilities can
//     give them back. Both need CAP_SETPCAP in the parent. The inheritable
//     set is set to exactly the kept caps and the ambient set cleared first,
//     so nothing of the parent's leaks through.
//   - Optionally (Spec.NoNewPrivs) PR_SET_NO_NEW_PRIVS.
//
// Securebits, the bounding set, the capability sets and no_new_privs are
// per-thread attributes in Linux, and a child inherits them from the thread
// that forks it. vrrpkit changes them only on a dedicated OS thread: each
// start of a child runs in a goroutine that calls runtime.LockOSThread,
// restricts its thread, forks the child, waits for it, and returns without
// unlocking, so the Go runtime destroys the thread rather than reuse it. The
// runtime never clones a new thread from a thread locked with LockOSThread
// (it uses its template thread), so no other goroutine ever sees the
// restricted credentials. The main thread is the exception: the runtime never
// lets it exit, so a start that lands on it keeps it locked, idle and
// untouched, and does the work on another goroutine (hence another thread).
//
// # Parent death
//
// Children get Pdeathsig SIGTERM (prctl(PR_SET_PDEATHSIG)): when the
// supervisor dies they step down gracefully. The kernel delivers the signal
// when the *thread* that forked the child exits, not the process. Go
// threads come and go (a goroutine that exits while locked takes its thread
// with it), so a child forked from an arbitrary thread could be sent SIGTERM
// while the supervisor is alive and well. The dedicated locked thread above
// lives exactly as long as its child, which removes that hazard.
//
// # Restarts
//
// A child that exits while it is not being stopped is restarted: at once the
// first time, then after a delay that grows exponentially with jitter
// ([Backoff]). A child that stayed up for Backoff.Stable resets the count.
// Starting a child that cannot be started (missing binary, capabilities the
// supervisor does not have) counts as an exit after zero uptime.
//
// Each child gets its own process group (Setpgid), so Stop can SIGKILL
// whatever it left behind, and a terminal's ^C does not reach it.
package supervise
