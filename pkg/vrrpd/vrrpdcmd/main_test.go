package vrrpdcmd

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{args: []string{"-run-dir", "/nonexistent/dir"}, code: 1, err: "control socket"},
		{args: []string{"-version"}, code: 0, out: "vrrpd dev"},
		{args: []string{"-h"}, code: 0, err: "-run-dir"},
		{args: []string{"-h"}, code: 0, err: "-checkerd-socket"},
		{args: []string{"-log-level", "loud"}, code: 2, err: "-log-level"},
		{args: []string{"-no-such-flag"}, code: 2, err: "no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(tc.args, &stdout, &stderr, "dev")
		if code != tc.code || !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want %d, stdout ~ %q, stderr ~ %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out, tc.err)
		}
	}
}
