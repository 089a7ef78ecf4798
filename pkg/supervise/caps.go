package supervise

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Securebits (capabilities(7), <linux/securebits.h>); golang.org/x/sys/unix
// does not define them.
const (
	secbitNoRoot       = 1 << 0 // SECBIT_NOROOT: uid 0 gets no capabilities from execve
	secbitNoRootLocked = 1 << 1 // SECBIT_NOROOT_LOCKED
)

// CapSet is a set of capabilities as a bit mask: bit n is capability n
// (unix.CAP_NET_RAW is bit 13). It is the format of the Cap* lines of
// /proc/<pid>/status.
type CapSet uint64

// CapSetOf returns the set holding caps. Capabilities above 63 are ignored.
func CapSetOf(caps ...uintptr) CapSet {
	var s CapSet
	for _, c := range caps {
		if c < 64 {
			s |= 1 << c
		}
	}
	return s
}

// Has reports whether c is in s.
func (s CapSet) Has(c uintptr) bool { return c < 64 && s&(1<<c) != 0 }

// String lists the capabilities by name, e.g. "CAP_NET_ADMIN,CAP_NET_RAW";
// the empty set is "none".
func (s CapSet) String() string {
	if s == 0 {
		return "none"
	}
	var names []string
	for c := uintptr(0); c < 64; c++ {
		if s.Has(c) {
			names = append(names, capName(c))
		}
	}
	return strings.Join(names, ",")
}

// capName names capability c as in capabilities(7).
func capName(c uintptr) string {
	names := [...]string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
		"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
		"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
		"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
		"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
		"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
		"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
		"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
		"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
		"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
		"CAP_CHECKPOINT_RESTORE",
	}
	if c < uintptr(len(names)) {
		return names[c]
	}
	return fmt.Sprintf("cap_%d", c)
}

// threadCaps are the capability sets of the calling thread.
type threadCaps struct {
	effective, permitted, inheritable CapSet
}

func capget() (threadCaps, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return threadCaps{}, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) CapSet { return CapSet(lo) | CapSet(hi)<<32 }
	return threadCaps{
		effective:   join(data[0].Effective, data[1].Effective),
		permitted:   join(data[0].Permitted, data[1].Permitted),
		inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}, nil
}

func capset(c threadCaps) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(c.effective), Permitted: uint32(c.permitted), Inheritable: uint32(c.inheritable)},
		{Effective: uint32(c.effective >> 32), Permitted: uint32(c.permitted >> 32), Inheritable: uint32(c.inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// boundingSet returns the calling thread's bounding set, probing with
// PR_CAPBSET_READ up to the first capability the kernel does not know.
func boundingSet() (CapSet, error) {
	var s CapSet
	for c := uintptr(0); c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			return s, nil // past cap_last_cap
		}
		if err != nil {
			return 0, fmt.Errorf("prctl(PR_CAPBSET_READ, %s): %w", capName(c), err)
		}
		if in == 1 {
			s |= 1 << c
		}
	}
	return s, nil
}

// restrictThread changes the credentials of the calling thread so that a
// child forked from it and exec'd with SysProcAttr.AmbientCaps = keep ends
// with exactly keep in all five capability sets (see the package doc).
//
// The calling goroutine must have called runtime.LockOSThread and must exit
// without unlocking: the changes cannot all be undone (the bounding set only
// shrinks, SECBIT_NOROOT_LOCKED and no_new_privs stick), so the thread must
// die with the goroutine. childRoot says whether the child keeps uid 0, where
// the bounding set and securebits are what stands between it and every
// capability; without CAP_SETPCAP that is an error, for other uids they are
// defence in depth and skipped.
func restrictThread(keep CapSet, childRoot, noNewPrivs bool) error {
	cur, err := capget()
	if err != nil {
		return err
	}
	bnd, err := boundingSet()
	if err != nil {
		return err
	}
	if missing := keep &^ (cur.permitted & bnd); missing != 0 {
		return fmt.Errorf("cannot pass %s: not in the supervisor's permitted and bounding sets", missing)
	}
	if cur.effective.Has(unix.CAP_SETPCAP) {
		// The bounding set: everything but keep goes (prctl(2) PR_CAPBSET_DROP).
		for c := uintptr(0); c < 64; c++ {
			if bnd.Has(c) && !keep.Has(c) {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
					return fmt.Errorf("prctl(PR_CAPBSET_DROP, %s): %w", capName(c), err)
				}
			}
		}
		// Root is not special across execve (capabilities(7), "The securebits flags").
		bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
		if err != nil {
			return fmt.Errorf("prctl(PR_GET_SECUREBITS): %w", err)
		}
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits)|secbitNoRoot|secbitNoRootLocked, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_SECUREBITS, NOROOT|NOROOT_LOCKED): %w", err)
		}
	} else if childRoot {
		return errors.New("cannot confine a child that runs as uid 0: the supervisor lacks CAP_SETPCAP " +
			"(needed for PR_CAPBSET_DROP and SECBIT_NOROOT)")
	}
	// Nothing of ours is passed on but keep: the child adds keep to its
	// permitted and inheritable sets itself and raises it as ambient.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	cur.inheritable = keep
	if err := capset(cur); err != nil {
		return fmt.Errorf("setting the inheritable set to %s: %w", keep, err)
	}
	if noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	return nil
}
