// Command vminit is PID 1 of a vmlab VM. As PID 1 it mounts the virtual
// file systems, loads the configured kernel modules, brings lo up, then
// starts a copy of itself ("serve") that answers the host's commands on
// /dev/ttyS1, and from then on only reaps orphans (a process whose parent
// died must not linger as a zombie that kill -0 still sees), powering the VM
// off when the server dies.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/wire"
)

const (
	cmdPort = "/dev/ttyS1"
	path    = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// maxOutput bounds each of a command's stdout and stderr.
	maxOutput = 16 << 20
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "vminit serve:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "vminit: must run as PID 1 (or with \"serve\")")
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "vminit:", pid1())
	// -no-reboot makes qemu exit on restart, so this ends the VM.
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}

// pid1 returns only when the VM must end: why.
func pid1() error {
	cfg, err := setup()
	if err != nil {
		return err
	}
	hello, err := loadModules(cfg)
	if err != nil {
		return err
	}
	b, err := jsonHello(hello)
	if err != nil {
		return err
	}
	child := exec.Command("/init", "serve")
	child.Env = []string{"PATH=" + path, "VMLAB_HELLO=" + b}
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait4: %w", err)
		}
		if pid == child.Process.Pid {
			return fmt.Errorf("server exited: %v", ws)
		}
	}
}

func setup() (wire.Config, error) {
	var cfg wire.Config
	mounts := []struct{ src, dst, fs, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"devpts", "/dev/pts", "devpts", "ptmxmode=0666"},
		{"tmpfs", "/dev/shm", "tmpfs", ""},
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", "mode=1777"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return cfg, fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return cfg, fmt.Errorf("mount %s on %s: %w", m.fs, m.dst, err)
		}
	}
	for _, d := range []string{"/run/netns", "/var/lib", "/var/log", "/etc", "/root"} {
		_ = os.MkdirAll(d, 0o755)
	}
	_ = os.Symlink("/run", "/var/run")
	b, err := os.ReadFile(wire.ConfigPath)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := jsonUnmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("parse %s: %w", wire.ConfigPath, err)
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return cfg, fmt.Errorf("sethostname: %w", err)
		}
	}
	if err := linkUp("lo"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func loadModules(cfg wire.Config) (*wire.Hello, error) {
	h := &wire.Hello{Failed: map[string]string{}}
	for _, p := range cfg.Modules {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		err := finit(p)
		switch {
		case err == nil || errors.Is(err, unix.EEXIST):
			h.Loaded = append(h.Loaded, name)
		case cfg.Optional[p]:
			h.Failed[name] = err.Error()
		default:
			return nil, fmt.Errorf("load module %s: %w", p, err)
		}
	}
	for k, v := range cfg.Sysctls {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return nil, fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	var uname unix.Utsname
	if err := unix.Uname(&uname); err == nil {
		h.Kernel = unix.ByteSliceToString(uname.Release[:])
	}
	return h, nil
}

func finit(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}

func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("link %s up: socket: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("link %s up: get flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("link %s up: set flags: %w", name, err)
	}
	return nil
}

// makeRaw is cfmakeraw(3): no echo, no line editing, no CR/LF mangling, no
// XON/XOFF, so every byte of a frame arrives as sent.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("tcgets: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CLOCAL | unix.CREAD | unix.B115200
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("tcsets: %w", err)
	}
	return nil
}

type server struct {
	out *wire.Writer

	mu      sync.Mutex
	running map[uint64]*os.Process
	wg      sync.WaitGroup
}

func serve() error {
	port, err := os.OpenFile(cmdPort, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", cmdPort, err)
	}
	defer port.Close()
	if err := makeRaw(int(port.Fd())); err != nil {
		return fmt.Errorf("%s raw: %w", cmdPort, err)
	}
	var hello wire.Hello
	if err := jsonUnmarshal([]byte(os.Getenv("VMLAB_HELLO")), &hello); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			hello.Uptime, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	s := &server{out: wire.NewWriter(port), running: map[uint64]*os.Process{}}
	if err := s.out.Write(wire.Response{ID: 0, Hello: &hello}); err != nil {
		return err
	}
	in := wire.NewReader(port)
	for {
		var req wire.Request
		if err := in.Read(&req); err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		switch req.Op {
		case wire.OpRun:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				resp := s.run(req)
				if err := s.out.Write(resp); err != nil {
					fmt.Fprintln(os.Stderr, "vminit: answer", req.ID, err)
				}
			}()
		case wire.OpKill:
			s.mu.Lock()
			p := s.running[req.ID]
			s.mu.Unlock()
			if p != nil {
				_ = unix.Kill(-p.Pid, unix.SIGKILL)
			}
		default:
			_ = s.out.Write(wire.Response{ID: req.ID, Exit: -1, Err: "unknown op " + strconv.Quote(req.Op)})
		}
	}
}

func (s *server) run(req wire.Request) wire.Response {
	resp := wire.Response{ID: req.ID, Exit: -1}
	if len(req.Argv) == 0 {
		resp.Err = "empty argv"
		return resp
	}
	cmd := exec.Command(req.Argv[0], req.Argv[1:]...)
	cmd.Env = append([]string{"PATH=" + path, "HOME=/root", "TERM=dumb", "VMLAB_GUEST=1"}, req.Env...)
	cmd.Dir = req.Dir
	cmd.Stdin = bytes.NewReader(req.Stdin)
	stdout, stderr := &capped{}, &capped{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Own process group, so kill reaches whatever the command forked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A command that leaves a daemon behind (sh -c 'd &') must still
	// answer: once it exits, its output pipes get this long to drain.
	cmd.WaitDelay = 200 * time.Millisecond
	start := time.Now()
	if err := cmd.Start(); err != nil {
		resp.Err = err.Error()
		return resp
	}
	s.mu.Lock()
	s.running[req.ID] = cmd.Process
	s.mu.Unlock()
	err := cmd.Wait()
	s.mu.Lock()
	delete(s.running, req.ID)
	s.mu.Unlock()
	resp.Stdout, resp.Stderr = stdout.b.Bytes(), stderr.b.Bytes()
	var ee *exec.ExitError
	switch {
	case err == nil:
		resp.Exit = 0
	case errors.As(err, &ee):
		resp.Exit = ee.ExitCode() // -1 when signalled
		if resp.Exit < 0 {
			resp.Signal = fmt.Sprintf("%v after %v", ee, time.Since(start).Round(time.Millisecond))
		}
	default:
		resp.Err = err.Error()
	}
	return resp
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ b bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.b.Len(); room > 0 {
		if len(p) > room {
			c.b.Write(p[:room])
		} else {
			c.b.Write(p)
		}
	}
	return len(p), nil
}
