package config

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/samples.golden from the current parser")

// samplesDir finds ../shared/keepalived-samples beside the repository (as
// CI lays it out), or $VRRPKIT_SAMPLES.
func samplesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VRRPKIT_SAMPLES")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "keepalived-samples")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("keepalived samples not found at %s (set VRRPKIT_SAMPLES): %v", dir, err)
	}
	return dir
}

// testOptions parse as the verdict recording did: config id "testhost",
// no questions about this host.
var testOptions = Options{ConfigID: "testhost"}

func sampleFiles(t *testing.T, dir string) []string {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), "_") {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// outcome summarises a parse in one stable line.
func outcome(diags Diagnostics) string {
	var errs, warns int
	first := ""
	for _, d := range diags {
		if d.Severity == Error {
			if errs == 0 {
				first = fmt.Sprintf(" first=line %d: %s", d.Pos.Line, d.Message)
			}
			errs++
		} else {
			warns++
		}
	}
	verdict := "usable"
	if errs > 0 {
		verdict = "refused"
	}
	if len(first) > 160 {
		first = first[:160]
	}
	return fmt.Sprintf("%s errors=%d warnings=%d%s", verdict, errs, warns, first)
}

// TestSamplesCorpus runs every file of the keepalived sample corpus (35 at
// the top, 931 under devel-tools/) through the parser and pins the outcome
// of each in testdata/samples.golden. go test -run TestSamplesCorpus -update
// rewrites it after a deliberate change; the diff is then reviewed.
func TestSamplesCorpus(t *testing.T) {
	dir := samplesDir(t)
	files := sampleFiles(t, dir)
	var b strings.Builder
	for _, rel := range files {
		var line string
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: parser panicked: %v", rel, r)
					line = "PANIC"
				}
			}()
			_, diags := Parse(filepath.Join(dir, rel), testOptions)
			line = outcome(diags)
			// ${_PWD} puts the checkout's absolute path into messages.
			if abs, err := filepath.Abs(dir); err == nil {
				line = strings.ReplaceAll(line, abs, "<samples>")
			}
		}()
		fmt.Fprintf(&b, "%s: %s\n", rel, line)
	}
	golden := filepath.Join("testdata", "samples.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSamplesCorpus -update to create it)", err)
	}
	wantLines := strings.Split(strings.TrimSpace(string(want)), "\n")
	gotLines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(gotLines) != len(wantLines) {
		t.Errorf("corpus has %d files, golden has %d", len(gotLines), len(wantLines))
	}
	for i := 0; i < len(gotLines) && i < len(wantLines); i++ {
		if gotLines[i] != wantLines[i] {
			t.Errorf("outcome changed:\n got: %s\nwant: %s", gotLines[i], wantLines[i])
		}
	}
	var usable, refused int
	for _, l := range gotLines {
		if strings.Contains(l, ": usable ") {
			usable++
		} else {
			refused++
		}
	}
	t.Logf("%d sample files: %d usable, %d refused", len(gotLines), usable, refused)
}

// hostFinding matches keepalived messages about the machine rather than the
// file; the issue sets those aside.
var hostFinding = regexp.MustCompile(`doesn't exist|Non-existent interface|SECURITY VIOLATION|script .* not (found|executable)|Unknown user`)

// deliberate lists the samples where vrrpkit's verdict differs from
// keepalived 2.2.7's on purpose, and why.
var deliberate = map[string]string{
	"keepalived.conf.fwmark": "keepalived's -t fails on its own warning that protocol is ignored for a fwmark service; " +
		"vrrpkit warns too, but only errors refuse a configuration",
	"keepalived.conf.track_interface": "keepalived's -t fails on the warning that a route without dev cannot be tracked; " +
		"vrrpkit gives the same warning and accepts",
	"keepalived.conf.vrrp.routes": "keepalived's -t fails on warnings (\"or\" and \"gw\" deprecated, untrackable routes); " +
		"vrrpkit gives the same warnings and accepts",
	"keepalived.conf.vrrp.static_ipaddress": "keepalived's -t fails on the warning that a route without dev cannot be tracked; " +
		"vrrpkit gives the same warning and accepts",
}

type keepalivedVerdict struct {
	rc       int
	findings []string // non-host lines
}

func readVerdict(t *testing.T, path string) keepalivedVerdict {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var v keepalivedVerdict
	if !sc.Scan() {
		t.Fatalf("%s: empty", path)
	}
	v.rc, err = strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil {
		t.Fatalf("%s: first line is not an exit status: %v", path, err)
	}
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !hostFinding.MatchString(l) {
			v.findings = append(v.findings, l)
		}
	}
	return v
}

// TestKeepalivedVerdicts compares vrrpkit's verdict (usable / refused) on
// the 35 top-level samples with keepalived 2.2.7's `keepalived -t`, recorded
// by testdata/keepalived-verdicts/record.sh, setting aside findings about
// the host.
func TestKeepalivedVerdicts(t *testing.T) {
	dir := samplesDir(t)
	recorded, err := filepath.Glob(filepath.Join("testdata", "keepalived-verdicts", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), "_") {
			top = append(top, e.Name())
		}
	}
	if len(recorded) != len(top) {
		t.Errorf("%d verdicts recorded for %d top-level samples; rerun record.sh", len(recorded), len(top))
	}
	agree := 0
	for _, name := range top {
		path := filepath.Join("testdata", "keepalived-verdicts", name+".txt")
		kv := readVerdict(t, path)
		kaUsable := kv.rc == 0 || len(kv.findings) == 0
		_, diags := Parse(filepath.Join(dir, name), testOptions)
		ourUsable := !diags.HasErrors()
		why, isDeliberate := deliberate[name]
		switch {
		case kaUsable == ourUsable && isDeliberate:
			t.Errorf("%s: listed as a deliberate difference but both now say usable=%v; remove it from the list", name, ourUsable)
		case kaUsable != ourUsable && !isDeliberate:
			t.Errorf("%s: keepalived says usable=%v (exit %d: %q), vrrpkit says usable=%v:\n%s",
				name, kaUsable, kv.rc, kv.findings, ourUsable, diags)
		case kaUsable != ourUsable:
			t.Logf("%s: differs on purpose: %s", name, why)
		default:
			agree++
		}
	}
	t.Logf("vrrpkit agrees with keepalived 2.2.7 on %d of %d samples; %d deliberate differences", agree, len(top), len(deliberate))
}
