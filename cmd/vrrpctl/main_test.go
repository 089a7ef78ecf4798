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
		{args: []string{"status"}, code: 2, err: "vrrpctl: no daemon to talk to yet"},
		{args: []string{"-json", "-run-dir", "/tmp/x", "status"}, code: 2, err: "no daemon to talk to yet"},
		{args: []string{"watch"}, code: 2, err: "no daemon"},
		{args: []string{"reload"}, code: 2, err: "no daemon"},
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
