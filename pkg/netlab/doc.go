// Package netlab is the integration-test harness for vrrpkit: it builds
// throwaway networks out of Linux network namespaces, veth pairs and bridges,
// and drives real tools in them (ip, keepalived, tcpdump, tshark), so that
// interop tests can run vrrpkit against keepalived on a real kernel.
//
// Everything a lab creates lives in namespaces of its own: the host's
// namespaces are never touched, and t.Cleanup removes it all, on every exit
// path (pass, Fatal, Skip, panic). A lab needs root and iproute2's ip; New
// skips the test, saying why, when either is missing, so `go test ./...` works
// for anyone.
//
// # Layout
//
// A lab's names start with a per-lab prefix "vk<pid><3 letters>", e.g.
// "vk48213qzt": the fixed [Prefix] "vk", the test binary's pid (so [Sweep]
// can tell a crashed run's leftovers from a live one) and three random
// letters. The lab's "switch" namespace carries the bare prefix and holds one
// bridge per [Segment] ("br-<segment>", multicast snooping off, so VRRP
// adverts to 224.0.0.18 and ff02::12 flood). Each [Host] is the namespace
// "<prefix>-<host>" with lo up and one veth, "eth0", whose peer
// "p-<host>" is a port of the segment's bridge. No interface is ever created
// in the caller's namespace.
//
// Addresses are documentation prefixes only: every segment is 192.0.2.0/24
// and 2001:db8:<n>::/64 (n = 1, 2, ... in the order segments are made). Hosts
// get .1, .2, ... and ::1, ::2, ... in the order they are made; .201-.254 and
// ::101-::136 are never given to hosts and are meant for VIPs
// ([Segment.VIP4], [Segment.VIP6]). MACs are 02:76:6b:00:<segment>:<host>.
// IPv6 DAD is off in host namespaces, so global and link-local addresses are
// usable as soon as a Host is returned.
//
// # Processes
//
// [Host.Start] runs a long-lived command in a host's namespace in its own
// process group, with stdout and stderr in a log file under t.TempDir(); when
// the test fails, the last 50 lines of every log are printed with t.Log.
// [Host.Keepalived] starts keepalived 2.2.7 in the foreground with its own pid
// files, so several run side by side. At cleanup every process group is
// killed, then every process still inside a lab namespace, and only then are
// the namespaces deleted.
//
// # Captures and timing
//
// [Host.Capture] runs tcpdump and returns once it is listening;
// [Capture.Fields] decodes the file with tshark. frame.time_epoch gives
// timestamps, which is how a test measures a failover:
//
//	c := obs.Capture("eth0", "ip proto 112")
//	r1 := a.Keepalived(conf(200))
//	r2 := b.Keepalived(conf(100))
//	// ... wait for r1 to be master, then:
//	r1.Kill()
//	if err := r2.WaitLog("Entering MASTER STATE", 10*time.Second); err != nil {
//		t.Fatal(err)
//	}
//	rows, err := c.Fields("vrrp", "frame.time_epoch", "ip.src")
//	// last advert from a.IPv4() to first advert from b.IPv4():
//	var lastOld, firstNew time.Time
//	for _, r := range rows {
//		at, _ := netlab.ParseEpoch(r[0])
//		switch r[1] {
//		case a.IPv4().String():
//			lastOld = at
//		case b.IPv4().String():
//			if firstNew.IsZero() {
//				firstNew = at
//			}
//		}
//	}
//	gap := firstNew.Sub(lastOld) // about Master_Down_Interval: 3*1s + skew
//
// TestKeepalivedFailover in this package does exactly that.
//
// # Namespaces and goroutines
//
// Setup methods (New, Segment, Host, Start, Keepalived, Capture) report
// failures with t.Fatal and t.Skip, so they must be called from the test's
// goroutine. The query methods (Run, Ping, Neighbor, Addrs, SendRaw,
// Fields, ...) return errors and may be called from any goroutine.
// [Host.InNetns] runs Go code on an OS thread switched into a host's
// namespace; sockets opened there stay in that namespace after the thread
// switches back, which is how Ping and SendRaw work and how vrrpkit's own
// socket code can be tested inside a lab.
package netlab
