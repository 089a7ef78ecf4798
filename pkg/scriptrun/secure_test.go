package scriptrun

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func nobodyIDs(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// TestCheckSecurity is keepalived's check_security rule, on real files.
func TestCheckSecurity(t *testing.T) {
	needRoot(t)
	uid, gid := nobodyIDs(t)
	type setup func(t *testing.T, dir string) string // returns the script path
	script := func(mode os.FileMode) setup {
		return func(t *testing.T, dir string) string {
			p := writeScript(t, dir, "s", "exit 0")
			must(t, unix.Chmod(p, uint32(mode)))
			return p
		}
	}
	inSub := func(mode os.FileMode, chown func(string) error) setup {
		return func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "sub")
			must(t, os.Mkdir(sub, 0o755))
			must(t, unix.Chmod(sub, uint32(mode)))
			if chown != nil {
				must(t, chown(sub))
			}
			return writeScript(t, sub, "s", "exit 0")
		}
	}
	tests := []struct {
		name     string
		setup    setup
		insecure bool
		errMsg   string // a refusal with or without security
	}{
		{"root 0755 in root dirs", script(0o755), false, ""},
		{"file world-writable", script(0o757), true, ""},
		{"file group-writable, group root", script(0o775), false, ""},
		{"file group-writable, group not root", func(t *testing.T, dir string) string {
			p := script(0o775)(t, dir)
			must(t, os.Chown(p, 0, gid))
			return p
		}, true, ""},
		{"file owned by nobody", func(t *testing.T, dir string) string {
			p := script(0o755)(t, dir)
			must(t, os.Chown(p, uid, 0))
			return p
		}, true, ""},
		{"dir world-writable", inSub(0o777, nil), true, ""},
		{"dir world-writable sticky (like /tmp)", inSub(0o1777, nil), false, ""},
		{"dir group-writable, group root", inSub(0o775, nil), false, ""},
		{"dir group-writable, group not root", inSub(0o775, func(p string) error { return os.Chown(p, 0, gid) }), true, ""},
		{"dir owned by nobody, 0755", inSub(0o755, func(p string) error { return os.Chown(p, uid, 0) }), true, ""},
		{"symlink owned by root", func(t *testing.T, dir string) string {
			script(0o755)(t, dir)
			l := filepath.Join(dir, "l")
			must(t, os.Symlink("s", l))
			return l
		}, false, ""},
		{"symlink owned by nobody", func(t *testing.T, dir string) string {
			script(0o755)(t, dir)
			l := filepath.Join(dir, "l")
			must(t, os.Symlink("s", l))
			must(t, os.Lchown(l, uid, gid))
			return l
		}, true, ""},
		{"a fifo", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo")
			must(t, unix.Mkfifo(p, 0o755))
			return p
		}, false, "Wrong file type found in script path"},
		{"a file in the middle", func(t *testing.T, dir string) string {
			return script(0o755)(t, dir) + "/x"
		}, false, "Wrong file type found in script path"},
		{"missing", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nope", "s")
		}, false, "check_script_secure could not find script"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t, t.TempDir())
			for _, security := range []bool{false, true} {
				insecure, warn, err := checkSecurity(p, security)
				if tc.errMsg != "" {
					if err == nil || !strings.Contains(err.Error(), tc.errMsg) {
						t.Errorf("security %v: error %v, want %q", security, err, tc.errMsg)
					}
					continue
				}
				if insecure != tc.insecure {
					t.Errorf("security %v: insecure = %v, want %v", security, insecure, tc.insecure)
				}
				switch {
				case !tc.insecure && (err != nil || warn != ""):
					t.Errorf("security %v: secure path got %q, %v", security, warn, err)
				case tc.insecure && security && (err == nil || !errors.Is(err, ErrInsecure) || err.Error() != "Unsafe permissions found for script '"+p+"' - disabling."):
					t.Errorf("security on: error %v", err)
				case tc.insecure && !security && (err != nil || warn != "Unsafe permissions found for script '"+p+"'."):
					t.Errorf("security off: warning %q, error %v", warn, err)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesInsecure(t *testing.T) {
	needRoot(t)
	uid, _ := nobodyIDs(t)
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	must(t, os.Mkdir(open, 0o777))
	must(t, os.Chmod(open, 0o777))
	inOpenDir := writeScript(t, open, "s", "exit 0")
	owned := writeScript(t, dir, "owned", "exit 0")
	must(t, os.Chown(owned, uid, 0))
	// A root-owned link in a safe directory to a script in an unsafe one:
	// the real path is checked too.
	link := filepath.Join(dir, "link")
	must(t, os.Symlink(inOpenDir, link))

	for _, p := range []string{inOpenDir, owned, link} {
		r, log := newRunner()
		res := r.Run(context.Background(), Command{Args: []string{p}, Security: true})
		if !errors.Is(res.Err, ErrInsecure) || res.ExitStatus != -1 || !strings.Contains(res.Err.Error(), "Unsafe permissions found for script") {
			t.Errorf("%s with security: got %+v, want refused", p, res)
		}
		if !strings.Contains(log.String(), "Unsafe permissions found for script") {
			t.Errorf("%s: refusal not logged: %q", p, log.String())
		}

		// Without enable_script_security keepalived warns and runs it.
		r, log = newRunner()
		res = r.Run(context.Background(), Command{Args: []string{p}})
		if !res.OK() {
			t.Errorf("%s without security: got %+v, want it run", p, res)
		}
		for _, w := range []string{"Unsafe permissions found for script", "SECURITY VIOLATION - scripts are being executed but script_security not enabled."} {
			if !strings.Contains(log.String(), w) {
				t.Errorf("%s without security: log lacks %q: %q", p, w, log.String())
			}
		}
	}

	// keepalived checks the path only for scripts run with root's uid or
	// gid: nobody gains nothing by replacing a script nobody runs.
	dir2, _ := nobodyDir(t)
	open2 := filepath.Join(dir2, "open")
	must(t, os.Mkdir(open2, 0o777))
	must(t, os.Chmod(open2, 0o777))
	s := writeScript(t, open2, "s", "exit 0")
	r, _ := newRunner()
	if res := r.Run(context.Background(), Command{Args: []string{s}, User: "nobody", Security: true}); !res.OK() {
		t.Errorf("nobody's script in a world-writable dir: got %+v, want run", res)
	}
	// ... but a root group is protected too.
	if res := r.Run(context.Background(), Command{Args: []string{s}, User: "nobody", Group: "root", Security: true}); !errors.Is(res.Err, ErrInsecure) {
		t.Errorf("nobody:root script in a world-writable dir: got %+v, want refused", res)
	}
}
