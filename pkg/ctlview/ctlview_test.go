package ctlview_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrrpkit/vrrpkit/pkg/ctlview"
	"github.com/vrrpkit/vrrpkit/pkg/ctlview/ctlviewtest"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden* from the fixture")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./pkg/ctlview -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s; if the change is meant, run `go test ./pkg/ctlview -update`, "+
			"update README.md (\"vrrpctl status --json\") and review the diff.\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := ctlview.WriteJSON(&b, ctlview.FromProto(ctlviewtest.Status())); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.golden.json", b.Bytes())
}

func TestTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := ctlview.WriteText(&b, ctlview.FromProto(ctlviewtest.Status()), time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.golden.txt", b.Bytes())
}

func TestIPVSGolden(t *testing.T) {
	var b bytes.Buffer
	if err := ctlview.WriteIPVS(&b, ctlview.FromIPVS(ctlviewtest.IPVS()), ctlviewtest.IPVSNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "ipvs.golden.txt", b.Bytes())
	b.Reset()
	if err := ctlview.WriteIPVSJSON(&b, ctlview.FromIPVS(ctlviewtest.IPVS())); err != nil {
		t.Fatal(err)
	}
	golden(t, "ipvs.golden.json", b.Bytes())
}

// TestIPVSLinesAreIpvsadms: a destination line is ipvsadm -Ln's (same
// widths) followed by the health, so that cutting the health off gives
// ipvsadm's output; a destination vrrpkit does not know has none.
func TestIPVSLinesAreIpvsadms(t *testing.T) {
	var b bytes.Buffer
	if err := ctlview.WriteIPVS(&b, ctlview.FromIPVS(ctlviewtest.IPVS()), ctlviewtest.IPVSNow); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  -> 10.0.1.1:80                  Masq    3      2          17         up 6m57s\n",
		"  -> 10.0.1.2:80                  Masq    0      0          0          down 2m50s: HTTP_GET: HTTP status 503 from http://10.0.1.2:80/health, want 200-299\n",
		"UDP  198.51.100.7:53 rr persistent 300 mask 255.255.255.0\n  -> 203.0.113.5:53               Tunnel  2      0          0         \n",
		"FWM  5 IPv6 sh\n  -> [2001:db8::10]:0             Route   0      12         40         down 2m0s: PING_CHECK:",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

// TestREADMEExample keeps the documented example the real output.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "status.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte("```json\n"+string(want)+"```\n")) {
		t.Error("README.md's \"vrrpctl status --json\" example is not testdata/status.golden.json: paste the file into its ```json block")
	}
}

// TestEmpty: an answer with nothing in it still has every key, lists as []
// and absent objects as null, so that jq filters never meet a missing key.
func TestEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := ctlview.WriteJSON(&b, ctlview.FromProto(&pb.SupervisorStatusResponse{})); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"generation": 0.0, "config_path": "", "config_loaded_at": nil, "started_at": nil, "version": "",
		"last_reload_failure": nil, "processes": []any{}, "vrrp_instances": []any{}, "virtual_servers": []any{},
	} {
		v, ok := got[key]
		if !ok {
			t.Errorf("key %q missing", key)
			continue
		}
		if gotJSON, wantJSON := mustJSON(t, v), mustJSON(t, want); gotJSON != wantJSON {
			t.Errorf("%s = %s, want %s", key, gotJSON, wantJSON)
		}
	}

	b.Reset()
	st := &pb.SupervisorStatusResponse{Instances: []*pb.InstanceStatus{{Name: "VI_1"}}}
	if err := ctlview.WriteJSON(&b, ctlview.FromProto(st)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"virtual_ipaddress": []`, `"fault_reasons": []`, `"drops": {}`,
		`"master_address": null`, `"state_since": null`, `"state": "UNKNOWN"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("instance without data: no %s in\n%s", want, b.String())
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNumbersAndTimes: uint64 counters are exact JSON numbers (protojson
// makes them strings), times are UTC with nine digits whatever the input's
// zone.
func TestNumbersAndTimes(t *testing.T) {
	st := ctlviewtest.Status()
	st.Instances[0].Counters.AdvertsSent = 1<<64 - 1
	var b bytes.Buffer
	if err := ctlview.WriteJSON(&b, ctlview.FromProto(st)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"adverts_sent": 18446744073709551615,`,
		// Given as 11:30:00.5+01:00 in the fixture.
		`"at": "2026-03-14T10:30:00.500000000Z"`,
		`"started_at": "2026-03-14T09:00:00.000000000Z"`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %s in\n%s", want, b.String())
		}
	}
}

func TestDropsSummedAndSorted(t *testing.T) {
	st := &pb.SupervisorStatusResponse{Instances: []*pb.InstanceStatus{{Name: "VI_1", Counters: &pb.InstanceCounters{
		Drops: []*pb.DropCount{{Reason: "bad_ttl", Count: 2}, {Reason: "auth_mismatch", Count: 1}, {Reason: "bad_ttl", Count: 1}},
	}}}}
	v := ctlview.FromProto(st)
	if got := v.VRRPInstances[0].Counters.Drops; len(got) != 2 || got["bad_ttl"] != 3 || got["auth_mismatch"] != 1 {
		t.Errorf("drops = %v, want auth_mismatch=1 bad_ttl=3", got)
	}
	var b bytes.Buffer
	if err := ctlview.WriteText(&b, v, time.UTC); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "auth_mismatch=1 bad_ttl=3") {
		t.Errorf("text drops not sorted:\n%s", b.String())
	}
}

func TestState(t *testing.T) {
	for s, want := range map[pb.VrrpState]string{
		pb.VrrpState_VRRP_STATE_INIT: "INIT", pb.VrrpState_VRRP_STATE_BACKUP: "BACKUP",
		pb.VrrpState_VRRP_STATE_MASTER: "MASTER", pb.VrrpState_VRRP_STATE_FAULT: "FAULT",
		pb.VrrpState_VRRP_STATE_STOP: "STOP", pb.VrrpState_VRRP_STATE_UNSPECIFIED: "UNKNOWN", 99: "UNKNOWN",
	} {
		if got := ctlview.State(s); got != want {
			t.Errorf("State(%v) = %q, want %q", s, got, want)
		}
	}
}
