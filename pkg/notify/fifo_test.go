package notify

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
)

// execRunner is a minimal real Runner: exec, its own process group,
// killed with the group on timeout or ctx.
type execRunner struct{}

func (execRunner) Run(ctx context.Context, c scriptrun.Command) scriptrun.Result {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	res := scriptrun.Result{Duration: time.Since(start), ExitStatus: cmd.ProcessState.ExitCode()}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		res.Err = err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = ws.Signal()
	}
	res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	return res
}

func fifoConf(path, script string) string {
	s := "global_defs {\n  notify_fifo " + path + "\n"
	if script != "" {
		s += "  notify_fifo_script " + script + "\n"
	}
	return s + `}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 150
  virtual_ipaddress { 192.0.2.1/32 }
}
`
}

// TestFIFONoReader: the FIFO is created (0644, as keepalived's mkfifo),
// far more lines than a pipe holds are written with nobody reading and
// nothing blocks; Close unlinks the FIFO it created.
func TestFIFONoReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	d := New(Options{Runner: &fakeRunner{}})
	if err := d.Apply(parseConf(t, fifoConf(path, "")), 1); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 || st.Mode().Perm() != 0o644 {
		t.Fatalf("fifo: %v %v", st.Mode(), err)
	}
	start := time.Now()
	for i := 0; i < 5000; i++ { // ~130 kB, twice the 64 kB pipe buffer
		d.Event(tr("VI_1", sBackup, sMaster, 150))
		d.Event(tr("VI_1", sMaster, sBackup, 150))
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("writes blocked: %v", el)
	}
	lines := readFIFO(t, path)
	if len(lines) == 0 || lines[0] != `INSTANCE "VI_1" MASTER 150` || lines[1] != `INSTANCE "VI_1" BACKUP 150` {
		t.Fatalf("fifo starts %q", lines[:min(2, len(lines))])
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("fifo left behind: %v", err)
	}
}

// TestFIFOReaderScript: notify_fifo_script runs for real, gets the FIFO
// path as its last argument, reads the lines, and is stopped by Close.
// An existing FIFO is used as it is and not removed.
func TestFIFOReaderScript(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "reader.sh")
	body := "#!/bin/sh\necho \"args: $*\" > " + out + ".args\nwhile read -r l; do echo \"$l\" >> " + out + "; done < \"$2\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	d := New(Options{Runner: execRunner{}})
	if err := d.Apply(parseConf(t, fifoConf(path, `"`+script+` arg1"`)), 1); err != nil {
		t.Fatal(err)
	}
	d.Event(tr("VI_1", sInit, sBackup, 150))
	d.Event(tr("VI_1", sBackup, sMaster, 150))
	waitFor(t, "reader output", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n") == 2
	})
	b, _ := os.ReadFile(out)
	if want := "INSTANCE \"VI_1\" BACKUP 150\nINSTANCE \"VI_1\" MASTER 150\n"; string(b) != want {
		t.Fatalf("reader read %q, want %q", b, want)
	}
	args, _ := os.ReadFile(out + ".args")
	if want := "args: arg1 " + path + "\n"; string(args) != want {
		t.Fatalf("reader args %q, want %q", args, want)
	}
	// Apply with the same FIFO keeps reader and FIFO.
	if err := d.Apply(parseConf(t, fifoConf(path, `"`+script+` arg1"`)), 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a FIFO notify did not create was removed: %v", err)
	}
}

// TestNotifyScriptRealExec: a real notify script sees keepalived's
// arguments, and a hanging one is killed at ScriptTimeout.
func TestNotifyScriptRealExec(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	rec := filepath.Join(dir, "rec.sh")
	if err := os.WriteFile(rec, []byte("#!/bin/sh\necho \"$*\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hang := filepath.Join(dir, "hang.sh")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 150
  virtual_ipaddress { 192.0.2.1/32 }
  notify_master ` + hang + `
  notify "` + rec + ` x"
}
`
	logs := &logRecorder{}
	d := New(Options{Runner: execRunner{}, ScriptTimeout: 200 * time.Millisecond, Log: logs.logger()})
	if err := d.Apply(parseConf(t, conf), 1); err != nil {
		t.Fatal(err)
	}
	d.Event(tr("VI_1", sBackup, sMaster, 150))
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if want := "x INSTANCE VI_1 MASTER 150\n"; string(b) != want {
		t.Fatalf("notify got %q, want %q", b, want)
	}
	if !logs.has("notify script timed out and was killed") {
		t.Fatal("no timeout logged for the hanging notify_master")
	}
}
