package netlab

import (
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on an OS thread switched into the named network namespace
// and switches the thread back before returning fn's error. fn runs on a
// goroutine of its own that is waited for; if the thread cannot be switched
// back it stays locked, so it is destroyed with that goroutine instead of
// running other goroutines in the wrong namespace. A panic in fn is
// re-raised in the caller once the thread is back.
func inNetns(name string, fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("netns: current namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("netns %s: %w", name, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("netns %s: setns: %w", name, err)}
			return
		}
		var r result
		func() {
			defer func() { r.panic = recover() }()
			r.err = fn()
		}()
		if err := netns.Set(orig); err != nil {
			// Thread stays locked and dies with this goroutine.
			res <- result{err: fmt.Errorf("netns %s: switching back: %w (fn: %v)", name, err, r.err), panic: r.panic}
			return
		}
		runtime.UnlockOSThread()
		res <- r
	}()
	r := <-res
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// writeSysctls writes values under /proc/sys, keyed by path relative to it
// ("net/ipv6/conf/all/disable_ipv6"). Run in inNetns, the net.* keys are
// those of that namespace.
func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}
