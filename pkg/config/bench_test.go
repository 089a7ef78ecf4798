package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gen10k is the committed generator of 10,000 instances; bench scripts use
// the same file.
var gen10k = filepath.Join("testdata", "bench", "gen10k.conf")

const gen10kInstances = 10_000

// check10k asserts that cfg is the 10,000 distinct, valid instances gen10k
// describes.
func check10k(tb testing.TB, cfg *Config, ds Diagnostics) {
	tb.Helper()
	if cfg == nil || ds.HasErrors() || len(ds) != 0 {
		tb.Fatalf("gen10k.conf: findings:\n%s", ds.String())
	}
	if len(cfg.VRRPInstances) != gen10kInstances {
		tb.Fatalf("gen10k.conf: %d instances, want %d", len(cfg.VRRPInstances), gen10kInstances)
	}
	names := map[string]bool{}
	pairs := map[string]bool{}
	for _, v := range cfg.VRRPInstances {
		pair := fmt.Sprintf("%s/%d", v.Interface, v.VirtualRouterID)
		if names[v.Name] || pairs[pair] {
			tb.Fatalf("gen10k.conf: %s (%s) repeats", v.Name, pair)
		}
		names[v.Name], pairs[pair] = true, true
		if len(v.VirtualIPAddresses) != 2 || len(v.TrackScripts) != 1 || v.Authentication == nil ||
			v.Authentication.AuthType != "PASS" || v.Version != 2 {
			tb.Fatalf("gen10k.conf: %s is not as generated: %+v", v.Name, v)
		}
	}
	first, last := cfg.VRRPInstances[0], cfg.VRRPInstances[gen10kInstances-1]
	if first.Name != "VI_0_1" || first.Interface != "eth0" || first.VirtualRouterID != 1 ||
		last.Name != "VI_39_55" || last.Interface != "eth39" || last.VirtualRouterID != 55 {
		tb.Fatalf("gen10k.conf: first %s %s %d, last %s %s %d", first.Name, first.Interface, first.VirtualRouterID,
			last.Name, last.Interface, last.VirtualRouterID)
	}
}

// TestGen10k keeps the committed generator honest.
func TestGen10k(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 10,000 instances")
	}
	cfg, ds := Parse(gen10k, Options{})
	check10k(t, cfg, ds)
	if p := cfg.VRRPInstances[0].Pos; p.File != gen10k || p.Line != lineOf(t, mustRead(t, gen10k), "~SEQ(ifn, 0, 38) ~SEQ(vr, 1, 255) $INST") {
		t.Errorf("generated instance at %v", p)
	}
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// benchParse parses path b.N times and marshals the model as the dump
// does, reporting instances per second.
func benchParse(b *testing.B, path string) {
	cfg, ds := Parse(path, Options{})
	check10k(b, cfg, ds)
	out, err := json.Marshal(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cfg, ds := Parse(path, Options{})
		if ds.HasErrors() {
			b.Fatal(ds.Error())
		}
		if _, err := json.Marshal(cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(gen10kInstances*b.N)/b.Elapsed().Seconds(), "instances/s")
	b.ReportMetric(float64(len(out)), "json-bytes")
}

// BenchmarkParse10kInstances parses gen10k.conf (~SEQ over a multi-line
// definition, so the expansion is part of the work) from a real file and
// marshals the model to JSON.
func BenchmarkParse10kInstances(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(mustRead(b, gen10k)), 0o644); err != nil {
		b.Fatal(err)
	}
	benchParse(b, path)
}

// BenchmarkParse10kInstancesFlat is the same configuration written out
// without ~SEQ, to tell the cost of the expansion from the rest.
func BenchmarkParse10kInstancesFlat(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("global_defs {\n    router_id bench10k\n    enable_script_security\n    script_user root\n}\n")
	sb.WriteString("vrrp_script chk {\n    script /bin/true\n    interval 2\n    weight -10\n}\n")
	for k := range gen10kInstances {
		ifn, vr := k/255, k%255+1
		fmt.Fprintf(&sb, `vrrp_instance VI_%[1]d_%[2]d {
    state BACKUP
    interface eth%[1]d
    virtual_router_id %[2]d
    priority 100
    advert_int 1
    version 2
    authentication {
        auth_type PASS
        auth_pass bench
    }
    virtual_ipaddress {
        10.%[1]d.%[2]d.1/32
        10.%[1]d.%[2]d.2/32
    }
    track_script {
        chk
    }
}
`, ifn, vr)
	}
	path := filepath.Join(b.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	benchParse(b, path)
}
