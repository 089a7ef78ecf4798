package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricName finds the names a text uses: vrrpkit's and keepalived-
// exporter's (the Go and process collectors' are client_golang's).
var metricName = regexp.MustCompile(`\b(?:vrrpkit|keepalived)_[a-z0-9_]*[a-z0-9]`)

// TestGrafanaDashboard: deploy/grafana/vrrpkit.json is a dashboard whose
// every query uses only names the collector exports.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "vrrpkit.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("vrrpkit.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("vrrpkit.json: title %q, uid %q, %d panels: not a dashboard", dash.Title, dash.UID, len(dash.Panels))
	}
	exported := Names()
	var exprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if p.Title == "" || p.Type == "" || len(p.Targets) == 0 || ids[p.ID] {
			t.Errorf("panel %d %q (%s): want a unique id, a title, a type and a query", p.ID, p.Title, p.Type)
		}
		ids[p.ID] = true
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	used := 0
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used++
			if !slices.Contains(exported, name) {
				t.Errorf("the dashboard queries %s, which the collector does not export: %s", name, e)
			}
		}
	}
	if used < len(dash.Panels) {
		t.Errorf("the dashboard names %d metrics in %d panels", used, len(dash.Panels))
	}
}

// TestREADME: every name README.md's Metrics section lists is exported
// ({a,b} in a name stands for both; braces at the end are labels).
func TestREADME(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(raw), "\n## Metrics\n")
	if !ok {
		t.Fatal("README.md has no Metrics section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	exported := Names()
	code := regexp.MustCompile("`([^`]*)`")
	expand := regexp.MustCompile(`\{([a-z_,]+)\}([a-z_])`)
	checked := 0
	for _, m := range code.FindAllStringSubmatch(sec, -1) {
		names := []string{m[1]}
		// Expand a {a,b} followed by more name, then drop trailing labels.
		if loc := expand.FindStringSubmatchIndex(m[1]); loc != nil {
			alts := strings.Split(m[1][loc[2]:loc[3]], ",")
			names = names[:0]
			for _, a := range alts {
				names = append(names, m[1][:loc[0]]+a+m[1][loc[4]:])
			}
		}
		for _, n := range names {
			n, _, _ = strings.Cut(n, "{")
			if !metricName.MatchString(n) || metricName.FindString(n) != n {
				continue // not a name: a flag, an address, "..." abbreviations
			}
			checked++
			if !slices.Contains(exported, n) {
				t.Errorf("README.md's Metrics section lists %s, which the collector does not export", n)
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d names in README.md's Metrics section", checked)
	}
}
