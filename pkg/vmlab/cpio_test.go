package vmlab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCPIORoundTrip unpacks the writer's archive with GNU cpio, an
// independent reader of the newc format.
func TestCPIORoundTrip(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio is not installed")
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.entry("/bin", cpioDir|0o755, nil, 0, 0))
	must(c.entry("/bin/x", cpioFile|0o755, []byte("hello\n"), 0, 0))
	must(c.entry("/bin/odd", cpioFile|0o644, []byte("abc"), 0, 0))
	must(c.entry("/bin/y", cpioSymlink|0o777, []byte("x"), 0, 0))
	must(c.close())
	if buf.Len()%4 != 0 {
		t.Errorf("archive is %d bytes, not a multiple of 4", buf.Len())
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	for name, want := range map[string]string{"bin/x": "hello\n", "bin/odd": "abc", "bin/y": "hello\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/x")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/x mode = %v, %v; want 0755", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/y")); err != nil || l != "x" {
		t.Errorf("bin/y -> %q, %v; want x", l, err)
	}
}
