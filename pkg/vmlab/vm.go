package vmlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/wire"
)

// Options describes a VM. The zero value boots the host's kernel with
// nothing but busybox.
type Options struct {
	// Kernel is the bzImage to boot. Default: $VMLAB_KERNEL, else
	// /boot/vmlinuz-<running release>, else the newest /boot/vmlinuz-*.
	Kernel string
	// ModulesDir holds the kernel's modules (modules.dep ...). Default:
	// /lib/modules/<release>, the release taken from the kernel's file
	// name (vmlinuz-<release>).
	ModulesDir string
	// Modules are loaded at boot, each after its dependencies (modules.dep
	// and modules.softdep, like modprobe): e.g. "ip_vs_rr", "ip_vs_wrr",
	// "veth", "bridge", "dummy". Names or aliases as modprobe takes them.
	Modules []string
	// Binaries are host files copied into the VM: guest path -> host path.
	// A dynamically linked one brings its loader and libraries along.
	Binaries map[string]string
	// HostPrograms are host programs (a name looked up in PATH, or a path)
	// copied to the same path in the VM with their libraries, e.g. "ip"
	// (iproute2, for ip netns and veth, which busybox ip lacks) or
	// "ipvsadm".
	HostPrograms []string
	// Files are written into the VM: guest path -> contents (mode 0644).
	Files map[string][]byte
	// Sysctls are set after the modules load, e.g. "net.ipv4.ip_forward": "1".
	Sysctls map[string]string
	// Memory is qemu's -m. Default "256M".
	Memory string
	// CPUs is qemu's -smp. Default 1.
	CPUs int
	// Accel is qemu's -accel. Default: $VMLAB_ACCEL, else "tcg" (nested
	// KVM, where /dev/kvm exists at all, hangs on the test machines).
	Accel string
	// BootTimeout bounds the boot, up to the agent's hello. Default 90s.
	BootTimeout time.Duration
	// Busybox is a static busybox; its applets are linked into /bin etc.
	// Default /bin/busybox.
	Busybox string
	// Hostname of the VM. Default "vmlab".
	Hostname string
	// Append is added to the kernel command line.
	Append string
}

// VM is a booted qemu guest with an agent that runs commands for the test.
type VM struct {
	t       testing.TB
	opts    Options
	dir     string
	console string
	qemu    *exec.Cmd
	qemuErr bytes.Buffer // qemu's stdout and stderr
	// qemuDone is closed when qemu has exited, qemuWaitErr then says how.
	qemuDone    chan struct{}
	qemuWaitErr error
	conn        net.Conn
	out         *wire.Writer

	// Hello is what the agent reported at boot.
	Hello wire.Hello
	// BootTime is from starting qemu to the agent's hello.
	BootTime time.Duration

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan wire.Response
	procs   map[*Proc]bool
	dead    chan struct{} // closed when the command channel is gone
	deadErr error

	closeOnce sync.Once
	readerWG  sync.WaitGroup
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr []byte
	// Exit is the exit status; -1 when the command was killed by a signal.
	Exit int
	// Signal describes the signal that killed the command, if one did.
	Signal string
}

// Cmd is a command to run in the VM.
type Cmd struct {
	Argv  []string
	Env   []string // added to PATH, HOME=/root, TERM=dumb
	Dir   string
	Stdin []byte
}

// ErrVMDead is wrapped by every error from a VM whose qemu has gone.
var ErrVMDead = errors.New("vmlab: VM is gone")

// Boot builds the initramfs (or reuses a cached identical one), boots it
// under qemu and returns once the agent answers. t.Cleanup stops the VM.
// The test is skipped, saying why, when qemu, the kernel, its modules,
// busybox or the go tool is missing.
func Boot(t testing.TB, opts Options) *VM {
	t.Helper()
	opts, qemuBin := defaults(t, opts)
	tr, err := assemble(t, opts)
	if err != nil {
		t.Fatalf("vmlab: %v", err)
	}
	initrd, err := tr.writeCached(cacheDir())
	if err != nil {
		t.Fatalf("vmlab: %v", err)
	}
	// Unix socket paths are limited to 108 bytes: t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "vmlab-")
	if err != nil {
		t.Fatalf("vmlab: %v", err)
	}
	kernel := opts.Kernel
	if pvh, err := pvhKernel(opts.Kernel, cacheDir()); err == nil {
		kernel = pvh
	} else {
		t.Logf("vmlab: booting the bzImage, slower: %v", err)
	}
	vm := &VM{
		t: t, opts: opts, dir: dir, console: filepath.Join(dir, "console.log"),
		pending: map[uint64]chan wire.Response{}, procs: map[*Proc]bool{}, dead: make(chan struct{}), qemuDone: make(chan struct{}),
	}
	t.Cleanup(vm.Close)
	if err := vm.start(qemuBin, kernel, initrd); err != nil {
		t.Fatalf("vmlab: boot: %v", err)
	}
	t.Logf("vmlab: booted %s in %v (kernel up %.2fs at hello)", vm.Hello.Kernel, vm.BootTime.Round(time.Millisecond), vm.Hello.Uptime)
	return vm
}

func defaults(t testing.TB, o Options) (Options, string) {
	t.Helper()
	qemuBin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("vmlab: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	if o.Kernel == "" {
		o.Kernel = os.Getenv("VMLAB_KERNEL")
	}
	if o.Kernel == "" {
		o.Kernel = findKernel()
	}
	if o.Kernel == "" {
		t.Skip("vmlab: no kernel in /boot (apt-get install linux-image-amd64) and VMLAB_KERNEL unset")
	}
	if f, err := os.Open(o.Kernel); err != nil {
		t.Skipf("vmlab: kernel not readable: %v", err)
	} else {
		f.Close()
	}
	if o.ModulesDir == "" {
		rel := strings.TrimPrefix(filepath.Base(o.Kernel), "vmlinuz-")
		o.ModulesDir = filepath.Join("/lib/modules", rel)
	}
	if _, err := os.Stat(filepath.Join(o.ModulesDir, "modules.dep")); err != nil && len(o.Modules) > 0 {
		t.Skipf("vmlab: no modules for %s: %v", o.Kernel, err)
	}
	if o.Busybox == "" {
		o.Busybox = "/bin/busybox"
	}
	if _, err := os.Stat(o.Busybox); err != nil {
		t.Skipf("vmlab: no static busybox (apt-get install busybox-static): %v", err)
	}
	if o.Memory == "" {
		o.Memory = "256M"
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.Accel == "" {
		o.Accel = os.Getenv("VMLAB_ACCEL")
	}
	if o.Accel == "" {
		o.Accel = "tcg"
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 90 * time.Second
	}
	if o.Hostname == "" {
		o.Hostname = "vmlab"
	}
	return o, qemuBin
}

func findKernel() string {
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		p := "/boot/vmlinuz-" + strings.TrimSpace(string(b))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		return ""
	}
	sort.Strings(ks)
	return ks[len(ks)-1]
}

func cacheDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("vmlab-cache-%d", os.Getuid()))
}

// agentPkg is the VM's init, built for every Boot (the go build cache makes
// that a link step).
const agentPkg = "github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/vminit"

func assemble(t testing.TB, o Options) (fsTree, error) {
	t.Helper()
	tr := fsTree{}
	cfg := wire.Config{Optional: map[string]bool{}, Sysctls: o.Sysctls, Hostname: o.Hostname}

	if err := tr.file("/bin/busybox", o.Busybox); err != nil {
		return nil, err
	}
	list, err := exec.Command(o.Busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	applets := map[string]bool{}
	for _, l := range busyboxApplets(list) {
		if l != "/bin/busybox" && l != "/linuxrc" {
			tr.symlink(l, "/bin/busybox")
			applets[filepath.Base(l)] = true
		}
	}
	tr.charDev("/dev/console", 5, 1)
	tr.data("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	tr.data("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	tr.data("/etc/hosts", 0o644, []byte("127.0.0.1 localhost "+o.Hostname+"\n::1 localhost\n"))

	if len(o.Modules) > 0 {
		ix, err := readModIndex(os.DirFS(o.ModulesDir))
		if err != nil {
			return nil, err
		}
		loads, err := ix.resolve(o.Modules)
		if err != nil {
			return nil, err
		}
		for _, m := range loads {
			b, err := readModule(filepath.Join(o.ModulesDir, m.path))
			if err != nil {
				return nil, err
			}
			guest := "/lib/modules/" + strings.TrimSuffix(m.path, filepath.Ext(m.path))
			if !strings.HasSuffix(guest, ".ko") {
				guest = "/lib/modules/" + m.path
			}
			tr.data(guest, 0o644, b)
			cfg.Modules = append(cfg.Modules, guest)
			if m.optional {
				cfg.Optional[guest] = true
			}
		}
	}

	progs := map[string]string{}
	for _, p := range o.HostPrograms {
		hp, err := exec.LookPath(p)
		if err != nil {
			return nil, fmt.Errorf("host program %s: %w", p, err)
		}
		if hp, err = filepath.Abs(hp); err != nil {
			return nil, err
		}
		progs[hp] = hp
	}
	for g, h := range o.Binaries {
		progs[g] = h
	}
	for g, h := range progs {
		if err := tr.file(g, h); err != nil {
			return nil, err
		}
		libs, err := sharedDeps(h)
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			if _, ok := tr[l]; !ok {
				if err := tr.file(l, l); err != nil {
					return nil, err
				}
			}
		}
	}
	// Debian's busybox sh runs its own applet for a bare name even when
	// PATH has a real program first (FEATURE_SH_STANDALONE); a shell
	// function beats an applet, so the profile Sh sources defines one per
	// copied program that shares an applet's name (ip, ...).
	var profile strings.Builder
	guests := make([]string, 0, len(progs))
	for g := range progs {
		guests = append(guests, g)
	}
	sort.Strings(guests)
	for _, g := range guests {
		if name := filepath.Base(g); applets[name] {
			fmt.Fprintf(&profile, "%s() { %s \"$@\"; }\n", name, g)
		}
	}
	tr.data(ProfilePath, 0o644, []byte(profile.String()))
	for g, b := range o.Files {
		tr.data(g, 0o644, b)
	}

	agent := BuildGo(t, agentPkg)
	if err := tr.file("/init", agent); err != nil {
		return nil, err
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	tr.data(wire.ConfigPath, 0o644, cb)
	return tr, nil
}

// readModule returns a module's bytes, uncompressed: finit_module of
// Debian 12's kernel takes no compressed modules.
func readModule(p string) ([]byte, error) {
	var tool string
	switch filepath.Ext(p) {
	case ".ko":
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("module: %w", err)
		}
		return b, nil
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	default:
		return nil, fmt.Errorf("module %s: unknown format", p)
	}
	out, err := exec.Command(tool, "-dc", p).Output()
	if err != nil {
		return nil, fmt.Errorf("module %s: %s -dc: %w", p, tool, err)
	}
	return out, nil
}

func (vm *VM) start(qemuBin, kernel, initrd string) error {
	sock := filepath.Join(vm.dir, "cmd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()
	appendLine := "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off " + vm.opts.Append
	args := []string{
		"-accel", vm.opts.Accel, "-m", vm.opts.Memory, "-smp", fmt.Sprint(vm.opts.CPUs),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", strings.TrimSpace(appendLine),
		"-chardev", "file,id=con,path=" + vm.console, "-serial", "chardev:con",
		"-chardev", "socket,id=cmd,path=" + sock, "-serial", "chardev:cmd",
	}
	// VMLAB_QEMU_ARGS adds qemu options, for debugging a boot.
	args = append(args, strings.Fields(os.Getenv("VMLAB_QEMU_ARGS"))...)
	vm.qemu = exec.Command(qemuBin, args...)
	vm.qemu.Stdout, vm.qemu.Stderr = &vm.qemuErr, &vm.qemuErr
	// A test binary killed outright (go test -timeout, ^C) takes its VMs
	// with it.
	vm.qemu.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	begin := time.Now()
	if err := vm.qemu.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		vm.qemuWaitErr = vm.qemu.Wait()
		close(vm.qemuDone)
	}()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	timer := time.NewTimer(vm.opts.BootTimeout)
	defer timer.Stop()
	select {
	case vm.conn = <-accepted:
	case <-vm.qemuDone:
		return fmt.Errorf("qemu exited before connecting: %v: %s", vm.qemuWaitErr, vm.qemuErr.Bytes())
	case <-timer.C:
		return fmt.Errorf("qemu did not connect within %v", vm.opts.BootTimeout)
	}
	vm.out = wire.NewWriter(vm.conn)
	in := wire.NewReader(vm.conn)
	hello := make(chan error, 1)
	go func() {
		var r wire.Response
		err := in.Read(&r)
		if err == nil && r.Hello == nil {
			err = fmt.Errorf("first frame is not a hello: %+v", r)
		}
		if err == nil {
			vm.Hello = *r.Hello
		}
		hello <- err
	}()
	select {
	case err := <-hello:
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	case <-vm.qemuDone:
		return fmt.Errorf("qemu exited during boot: %v: %s", vm.qemuWaitErr, vm.qemuErr.Bytes())
	case <-timer.C:
		return fmt.Errorf("agent did not say hello within %v", vm.opts.BootTimeout)
	}
	vm.BootTime = time.Since(begin)
	vm.readerWG.Add(1)
	go vm.read(in)
	return nil
}

// read dispatches responses until the channel breaks, then fails every
// pending command.
func (vm *VM) read(in *wire.Reader) {
	defer vm.readerWG.Done()
	var err error
	for {
		var r wire.Response
		if err = in.Read(&r); err != nil {
			break
		}
		vm.mu.Lock()
		ch := vm.pending[r.ID]
		delete(vm.pending, r.ID)
		vm.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	select {
	case <-vm.qemuDone:
		err = fmt.Errorf("%w: qemu exited (%v): %v", ErrVMDead, vm.qemuWaitErr, err)
	case <-time.After(2 * time.Second):
		err = fmt.Errorf("%w: command channel: %v", ErrVMDead, err)
	}
	vm.mu.Lock()
	vm.deadErr = err
	vm.mu.Unlock()
	close(vm.dead)
}

// Exec runs c in the VM and waits for it to exit. A non-zero exit is no
// error: it is in Result.Exit. When ctx ends first, the command's process
// group is killed and Exec returns ctx's error together with what the
// command wrote until then (nil if the VM did not answer within
// killGrace).
func (vm *VM) Exec(ctx context.Context, c Cmd) (*Result, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("vmlab: exec: empty argv")
	}
	ch := make(chan wire.Response, 1)
	vm.mu.Lock()
	if vm.deadErr != nil {
		err := vm.deadErr
		vm.mu.Unlock()
		return nil, err
	}
	vm.nextID++
	id := vm.nextID
	vm.pending[id] = ch
	vm.mu.Unlock()
	req := wire.Request{ID: id, Op: wire.OpRun, Argv: c.Argv, Env: c.Env, Dir: c.Dir, Stdin: c.Stdin}
	if err := vm.out.Write(req); err != nil {
		vm.forget(id)
		return nil, fmt.Errorf("vmlab: send %q: %w", c.Argv, err)
	}
	select {
	case r := <-ch:
		if r.Err != "" {
			return nil, fmt.Errorf("vmlab: run %q: %s", c.Argv, r.Err)
		}
		return &Result{Stdout: r.Stdout, Stderr: r.Stderr, Exit: r.Exit, Signal: r.Signal}, nil
	case <-ctx.Done():
		err := fmt.Errorf("vmlab: run %q: %w", c.Argv, ctx.Err())
		if werr := vm.out.Write(wire.Request{ID: id, Op: wire.OpKill}); werr != nil {
			vm.forget(id)
			return nil, err
		}
		grace := time.NewTimer(killGrace)
		defer grace.Stop()
		select {
		case r := <-ch:
			return &Result{Stdout: r.Stdout, Stderr: r.Stderr, Exit: r.Exit, Signal: r.Signal}, err
		case <-grace.C:
		case <-vm.dead:
		}
		vm.forget(id)
		return nil, err
	case <-vm.dead:
		return nil, fmt.Errorf("vmlab: run %q: %w", c.Argv, vm.err())
	}
}

// killGrace is how long a cancelled Exec waits for the killed command's
// output.
const killGrace = 5 * time.Second

func (vm *VM) forget(id uint64) {
	vm.mu.Lock()
	delete(vm.pending, id)
	vm.mu.Unlock()
}

func (vm *VM) err() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.deadErr
}

// Run runs argv in the VM; see [VM.Exec].
func (vm *VM) Run(ctx context.Context, argv ...string) (*Result, error) {
	return vm.Exec(ctx, Cmd{Argv: argv})
}

// DefaultTimeout bounds [VM.MustRun] and [VM.Sh].
const DefaultTimeout = 30 * time.Second

// MustRun runs argv, fails the test unless it exits 0 within
// DefaultTimeout, and returns its stdout.
func (vm *VM) MustRun(argv ...string) string {
	vm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	r, err := vm.Run(ctx, argv...)
	if err != nil {
		vm.t.Fatalf("%v", err)
	}
	if r.Exit != 0 {
		vm.t.Fatalf("vmlab: %q exited %d %s\nstdout: %s\nstderr: %s", argv, r.Exit, r.Signal, r.Stdout, r.Stderr)
	}
	return string(r.Stdout)
}

// ProfilePath is a shell file in the VM that makes bare names of programs
// copied in (Options.HostPrograms, Options.Binaries) run those programs
// rather than busybox applets of the same name: Debian's busybox sh
// prefers its applets to PATH. [VM.Sh] sources it; a script of one's own
// should too (". /vmlab/profile") or call such programs by full path.
const ProfilePath = "/vmlab/profile"

// Sh runs a busybox sh script (with -e, after sourcing [ProfilePath]) like
// [VM.MustRun].
func (vm *VM) Sh(script string) string {
	vm.t.Helper()
	return vm.MustRun("/bin/sh", "-ec", ". "+ProfilePath+"\n"+script)
}

// WriteFile writes data to path in the VM with mode perm.
func (vm *VM) WriteFile(ctx context.Context, path string, data []byte, perm os.FileMode) error {
	r, err := vm.Exec(ctx, Cmd{
		Argv:  []string{"/bin/sh", "-ec", `mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"`, "sh", path, fmt.Sprintf("%o", perm.Perm())},
		Stdin: data,
	})
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("vmlab: write %s: exit %d: %s", path, r.Exit, r.Stderr)
	}
	return nil
}

// Console returns what the kernel and the agent printed on the console.
func (vm *VM) Console() string {
	b, _ := os.ReadFile(vm.console)
	return string(b)
}

func (vm *VM) logConsole() {
	c := vm.Console()
	lines := strings.Split(strings.TrimRight(c, "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	vm.t.Logf("vmlab: console (last %d lines):\n%s\nqemu: %s", len(lines), strings.Join(lines, "\n"), vm.qemuErr.Bytes())
}

// Close stops every [Proc], kills qemu and removes the VM's files. Boot
// registers it with t.Cleanup; calling it again is harmless.
func (vm *VM) Close() {
	vm.closeOnce.Do(func() {
		vm.mu.Lock()
		procs := make([]*Proc, 0, len(vm.procs))
		for p := range vm.procs {
			procs = append(procs, p)
		}
		vm.mu.Unlock()
		for _, p := range procs {
			p.Stop()
		}
		if vm.t.Failed() {
			vm.logConsole()
		}
		if vm.qemu != nil && vm.qemu.Process != nil {
			_ = vm.qemu.Process.Kill()
			<-vm.qemuDone
		}
		if vm.conn != nil {
			vm.conn.Close()
		}
		vm.readerWG.Wait()
		os.RemoveAll(vm.dir)
	})
}
