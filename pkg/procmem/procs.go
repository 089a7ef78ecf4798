package procmem

import "runtime"

// CheckerProcs is checkerd's GOMAXPROCS: 1. Its work is many short
// non-blocking steps (a connect, a getsockopt, a close, a timer) that the
// runtime, with a P per CPU, spreads over threads that then wake each
// other (futex) and spin or sleep looking for work (nanosleep), at every
// check. With one P that traffic goes: measured natively with 5,000
// TCP_CHECKs at delay_loop 1 (bench/lvs.sh, back to back on a 2-CPU
// host), checkerd's CPU per check went from 39 to 26 µs (12.8% of a CPU
// instead of 19.6%) with the same checks per second. keepalived's checker
// is one thread too (check_daemon.c). Blocking system calls (a script
// run, a file read) still get threads of their own: GOMAXPROCS bounds
// only the Go code that runs at once.
func CheckerProcs() int { return 1 }

// ApplyProcs sets GOMAXPROCS to want unless the GOMAXPROCS environment
// variable is set (an operator's choice wins); lookupEnv is os.LookupEnv,
// or a fake in tests. It returns the setting in effect.
func ApplyProcs(want int, lookupEnv func(string) (string, bool)) int {
	if _, set := lookupEnv("GOMAXPROCS"); set || want <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(want)
	return want
}
