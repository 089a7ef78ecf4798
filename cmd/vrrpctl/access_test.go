package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccessHint: the EACCES hint names the socket's group as the
// supervisor's --status-group when the socket is open to one, and the
// option itself when it is root only.
func TestAccessHint(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil { // the mode and group are what matter
		t.Fatal(err)
	}
	if h := accessHint(sock, "status"); !strings.Contains(h, "root only: sudo vrrpctl status") || !strings.Contains(h, "--status-group GROUP") {
		t.Errorf("root-only socket: %q", h)
	}
	if os.Geteuid() != 0 {
		t.Skip("giving the socket another group needs root")
	}
	if err := os.Chown(sock, 0, 4242); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	h := accessHint(sock, "watch")
	for _, want := range []string{"members of group 4242 (the supervisor's --status-group)", "usermod -aG 4242 $USER", "sudo vrrpctl watch"} {
		if !strings.Contains(h, want) {
			t.Errorf("group socket: no %q in %q", want, h)
		}
	}
}
