package main

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
		{args: nil, code: 2, err: "usage: vrrpctl"},
		{args: []string{"-run-dir", "/nonexistent", "status"}, code: 1, err: "vrrpctl: no supervisor at /nonexistent/control.sock"},
		{args: []string{"-json", "-run-dir", "/nonexistent", "status"}, code: 1, err: "no supervisor"},
		{args: []string{"version"}, code: 0, out: "vrrpctl dev"},
		{args: []string{"frobnicate"}, code: 2, err: `unknown command "frobnicate"`},
		{args: []string{"-h"}, code: 0, err: "commands:"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want %d, stdout ~ %q, stderr ~ %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out, tc.err)
		}
	}
}
