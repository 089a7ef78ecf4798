// Package vmlab runs test commands against a real kernel of one's choice
// (by default the host's own Debian kernel) in a throwaway qemu VM, for
// kernel features the test machine lacks or must not be touched for: IPVS
// above all (ip_vs is not loaded on CI hosts, and loading it there would
// leak state between tests).
//
// # Use from a test
//
//	probe := vmlab.BuildGo(t, "github.com/vrrpkit/vrrpkit/cmd/vrrpd") // static, CGO_ENABLED=0
//	vm := vmlab.Boot(t, vmlab.Options{
//		Modules:      []string{"ip_vs_rr", "ip_vs_wrr", "veth"},
//		Binaries:     map[string]string{"/usr/local/bin/vrrpd": probe},
//		HostPrograms: []string{"ip", "ipvsadm"}, // copied with their shared libraries
//	})
//	out := vm.MustRun("ipvsadm", "-Ln")            // stdout; fails the test unless exit 0
//	vm.Sh("ip netns add rs1; ...")                 // busybox sh -e script
//	r, err := vm.Run(ctx, "cat", "/proc/net/ip_vs") // Result{Stdout, Stderr, Exit, Signal}
//	d := vm.Start(vmlab.Cmd{Argv: []string{"vrrpd", "..."}}) // background; d.Stop()
//
// A package whose own tests need the kernel (say, vrrpd's IPVS code) can
// run them in a VM instead: mark them with [RequireVM] (they skip on the
// host) and add one host test calling [RunTestsInVM], which builds the
// package's test binary statically, boots a VM and runs the matching tests
// in it as root:
//
//	func TestInVM(t *testing.T) {
//		vmlab.RunTestsInVM(t, vmlab.Options{Modules: []string{"ip_vs_wrr"}}, "^TestGuest")
//	}
//	func TestGuestIPVS(t *testing.T) { vmlab.RequireVM(t); c, _ := ipvs.New(); ... }
//
// Boot skips the test, saying why, when qemu-system-x86_64, a kernel in
// /boot, its modules, a static busybox (busybox-static) or the go tool is
// missing. No root is needed: qemu runs under TCG as the calling user.
// t.Cleanup kills qemu and removes the VM's files.
//
// # The VM
//
// The initramfs is pure Go: a newc cpio of busybox and its applet links,
// the requested modules with their dependencies resolved from the kernel's
// modules.dep and modules.softdep (so "ip_vs_rr" brings crc32c, libcrc32c,
// nf_defrag_ipv4/6, nf_conntrack and ip_vs, in that order), the test's
// binaries and host programs with their libraries, and vminit, a small Go
// program that is PID 1. vminit mounts proc, sys, devtmpfs, devpts, /run
// and /tmp, loads the modules with finit_module, sets the sysctls, brings
// lo up, and then serves commands from the host over the VM's second
// serial port, one JSON frame per line; as PID 1 it also reaps orphans, so
// a killed daemon leaves no zombie behind. Every command runs in its own
// process group, which a cancelled context kills. The archive is cached
// under $TMPDIR/vmlab-cache-<uid> by content hash, so the tests of a
// package, and later runs, reuse it; so is the kernel: the bzImage's
// payload is unpacked once with the host's xz and booted through its PVH
// entry, which spares the emulated decompressor about 5.5 s per boot.
//
// The VM has no network to the host: tests build what they need inside it
// with network namespaces, veth pairs and bridges (modules "veth",
// "bridge"; iproute2 via HostPrograms, as busybox ip has no netns), as
// TestIPVSForwarding does for a whole LVS-NAT site.
//
// # Costs and caveats
//
//   - A boot takes about 3.5-5 s under TCG on the 2-CPU test machine
//     (about 3 s of it the kernel's own init), a whole IPVS test 5-10 s;
//     more when other work loads the CPUs. -smp 2 boots no faster, so
//     CPUs defaults to 1; the guest uses about 20 MB of its 256 MB. Nested
//     KVM hangs there; set VMLAB_ACCEL=kvm where it works.
//   - The cache holds the unpacked vmlinux (about 65 MB per kernel) and
//     one archive per distinct content (10-20 MB), pruned after a day
//     unused.
//   - The command channel is an emulated 16550: about 140 KB/s. Fine for
//     command output; copy large files in with Options.Binaries or Files.
//   - Debian's busybox sh runs its applets in preference to PATH: a script
//     must source [ProfilePath] (VM.Sh does) or call a copied program that
//     shares an applet's name by full path. busybox-static's wget
//     segfaults; use nc.
//   - VMLAB_KERNEL picks another kernel, VMLAB_QEMU_ARGS adds qemu options.
package vmlab
