package netstate

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns runs fn on a fresh OS thread that has been moved into the network
// namespace ns, for fn to open sockets there (a socket stays in the
// namespace it was created in). If ns is not open, fn runs directly in the
// caller's namespace.
//
// The thread is locked for the whole time it is away from its namespace. If
// it cannot be moved back, its goroutine exits still locked, and the Go
// runtime terminates the thread instead of reusing it: no other goroutine
// ever runs in the wrong namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			// setns(2) failed, so the thread did not move.
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("return to original network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newHandleAt opens an rtnetlink handle in the network namespace ns. The
// caller closes it.
func newHandleAt(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNetns(ns, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// dupNetns returns a new descriptor for the namespace ns, owned by the
// caller.
func dupNetns(ns netns.NsHandle) (netns.NsHandle, error) {
	fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("duplicate network namespace descriptor: %w", err)
	}
	return netns.NsHandle(fd), nil
}
