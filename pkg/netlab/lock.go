package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// LockMachine serializes the tests, across packages and processes (go test
// runs packages in parallel), that use a resource of the whole machine
// under name: OpenSMTPD's control socket /var/run/smtpd.sock, which a
// network namespace does not separate, so a second smtpd exits with
// "control socket already listening". The lock is an flock(2) on a file
// under os.TempDir, released when the test ends.
func LockMachine(t testing.TB, name string) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "vrrpkit-test-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("netlab: lock %s: %v", name, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("netlab: lock %s: %v", name, fmt.Errorf("flock %s: %w", path, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}
