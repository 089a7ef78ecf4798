package check

import (
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestPing runs in a network namespace of its own: ping_group_range is
// per namespace, so the test can open it without touching the host's.
// The only interface is lo, so nothing leaves the machine.
func TestPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread stays in the namespace and dies with the
		// goroutine: no UnlockOSThread.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		l, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Errorf("lo up: %v", err)
			return
		}
		p := Ping{Conn: Conn{Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0), Timeout: time.Second}}
		// A new namespace starts at "1 0": nobody may.
		os.WriteFile(PingGroupRange, []byte("1 0"), 0o644)
		if r := once(p); r.Up || !strings.Contains(r.Reason, "ping_group_range") {
			t.Errorf("ping with the range closed: %+v", r)
		}
		if err := os.WriteFile(PingGroupRange, []byte("0 0"), 0o644); err != nil {
			t.Errorf("open ping_group_range: %v", err)
			return
		}
		if r := once(p); !r.Up || r.Reason != "ping 127.0.0.1: echo reply" {
			t.Errorf("ping 127.0.0.1: %+v", r)
		}
		p6 := Ping{Conn: Conn{Target: netip.AddrPortFrom(netip.IPv6Loopback(), 0), Timeout: time.Second}}
		if r := once(p6); !r.Up {
			t.Errorf("ping ::1: %+v", r)
		}
		// No route to it in this namespace.
		un := Ping{Conn: Conn{Target: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 0), Timeout: 300 * time.Millisecond}}
		if r := once(un); r.Up || !strings.Contains(r.Reason, "ping 192.0.2.1: send failed: ") {
			t.Errorf("ping unreachable: %+v", r)
		}
		// lo down: 127.0.0.1 no longer answers.
		netlink.LinkSetDown(l)
		if r := once(p); r.Up {
			t.Errorf("ping with lo down: %+v", r)
		} else {
			t.Logf("lo down: %s", r.Reason)
		}
	}()
	<-done
}
