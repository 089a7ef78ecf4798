package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestUsage: -h shows the flags that do something with their help, and the
// keepalived switches that are only accepted in one paragraph after them.
func TestUsage(t *testing.T) {
	var b bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &b); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h) = %v, want flag.ErrHelp (exit 0)", err)
	}
	out := b.String()
	for _, want := range []string{
		"usage: supervisor [flags]\n",
		"  -f, --use-file file\n    \tconfiguration file (default \"/etc/keepalived/keepalived.conf\")\n",
		"  -t, --config-test[=file]\n    \tcheck the configuration and exit: 0 usable, 1 refused",
		"  -i, --config-id id\n    \tconfiguration id for @ID lines",
		"  -v, --version\n    \tprint the version and exit\n",
		"  --dump-conf\n    \tprint the parsed configuration as JSON and exit\n",
		"  --run-dir directory\n    \tdirectory for vrrpkit's sockets (default \"/run/vrrpkit\")\n",
		"  --vrrpd path\n",
		"  --log-level level\n",
		"  -p, --pid file\n    \tsupervisor's pid file (default /run/keepalived.pid with the default --run-dir)\n",
		"  -r, --vrrp_pid file\n",
		"  -c, --checkers_pid file\n",
		"  --signum SIGFUNC\n",
		"  --data-file file\n",
		"  -h, --help\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-h has no %q:\n%s", want, out)
		}
	}

	// The compatibility paragraph: the last one, every line within 80
	// columns, and every compat flag named in it, and nowhere else.
	paras := strings.Split(strings.TrimRight(out, "\n"), "\n\n")
	compat := paras[len(paras)-1]
	if !strings.HasPrefix(compat, "Accepted for keepalived compatibility and ignored: ") {
		t.Fatalf("last paragraph of -h is not the compatibility one:\n%s", out)
	}
	for _, line := range strings.Split(compat, "\n") {
		if len(line) > 80 {
			t.Errorf("line longer than 80 columns: %q", line)
		}
	}
	joined := " " + strings.Join(strings.Fields(compat), " ") + " "
	listed := func(spelled string) bool {
		for _, sep := range []string{",", ";", "."} {
			if strings.Contains(joined, " "+spelled+sep) {
				return true
			}
		}
		return false
	}
	rest := strings.Join(paras[:len(paras)-1], "\n\n")
	// keepalived's switches that vrrpkit takes and ignores (parseFlags).
	for _, name := range []string{"n", "dont-fork", "l", "log-console", "D", "log-detail", "P", "vrrp", "C", "check",
		"d", "dump-conf-keepalived", "S", "G", "no-syslog", "X", "release-vips", "R", "dont-respawn", "m", "core-dump", "M", "B", "all",
		"s", "namespace", "log-facility", "e", "debug"} {
		spelled := dashed(name)
		if !listed(spelled) {
			t.Errorf("compat flag %s missing from the compatibility paragraph:\n%s", spelled, compat)
		}
		if strings.Contains(rest, "  "+spelled+"\n") || strings.Contains(rest, "  "+spelled+" ") {
			t.Errorf("compat flag %s still has a line of its own:\n%s", spelled, rest)
		}
	}
	for _, spelled := range []string{"-f", "--use-file", "-t", "--config-test", "-i", "-v", "--dump-conf", "--run-dir", "--vrrpd", "--log-level",
		"-p", "--pid", "-r", "--vrrp_pid", "-c", "--checkers_pid", "--signum", "--data-file", "--stats-file"} {
		if listed(spelled) {
			t.Errorf("%s does something but is listed as ignored", spelled)
		}
	}
	if got := strings.Count(out, compatUsage); got != 0 {
		t.Errorf("%q printed %d times: the compat flags are listed one by one again", compatUsage, got)
	}
}
