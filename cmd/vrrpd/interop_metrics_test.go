package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vrrpkit/vrrpkit/pkg/netlab"
)

// metricsAddr is where the supervisor serves metrics inside its host's
// namespace (each lab host has a loopback of its own).
const metricsAddr = "127.0.0.1:9650"

// TestInteropMetrics: the supervisor's --metrics-listen endpoint, scraped
// over HTTP inside the lab host's namespace while vrrpkit runs VI_1 as
// MASTER and VI_2 as BACKUP of keepalived, parses as Prometheus text, has no
// lint problems, and says so in both vrrpkit's names and
// keepalived-exporter's (labels iname/intf/vrid/ip_address, state 2 MASTER
// and 1 BACKUP), with adverts counted both ways and the transitions the
// supervisor heard matching vrrpd's own became-master counter; a reload
// shows in the generation and the reload count.
func TestInteropMetrics(t *testing.T) {
	t.Parallel()
	lab := newLab(t)
	lan := lab.Segment("lan")
	ha := lab.Host("ra", lan)
	hb := lab.Host("rb", lan)
	vip1, vip2 := lan.VIP4(1), lan.VIP4(2)
	i1 := inst{name: "VI_1", vrid: 51, version: 3, interval: time.Second, vips: []netip.Addr{vip1}}
	i2 := inst{name: "VI_2", vrid: 52, version: 3, interval: time.Second, vips: []netip.Addr{vip2}}
	i1.prio, i2.prio = 150, 100
	vk := startVrrpkitMetrics(t, lab, ha, conf("ra", i1, i2), metricsAddr)
	waitState(t, vk, "VI_1", "MASTER", masterDownInterval(150, time.Second)+10*time.Second)
	// keepalived outranks vrrpkit on VI_2 and preempts it.
	i1.prio, i2.prio = 100, 200
	ka := start(t, lab, keepalived, hb, conf("rb", i1, i2))
	waitState(t, ka, "VI_2", "MASTER", masterDownInterval(200, time.Second)+10*time.Second)
	waitState(t, vk, "VI_2", "BACKUP", 10*time.Second)
	waitState(t, ka, "VI_1", "BACKUP", 10*time.Second)

	client := netnsClient(ha)
	var mfs map[string]*dto.MetricFamily
	var text []byte
	err := eventually(20*time.Second, func() (bool, string) {
		var err error
		text, err = scrapeMetrics(client, "http://"+metricsAddr+"/metrics")
		if err != nil {
			return false, err.Error()
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		if mfs, err = p.TextToMetricFamilies(bytes.NewReader(text)); err != nil {
			return false, fmt.Sprintf("parsing the exposition: %v", err)
		}
		// Adverts both ways: VI_1 sends as MASTER, VI_2 hears keepalived.
		if v := metricValue(mfs, "vrrpkit_vrrp_adverts_received_total", "vrrp_instance", "VI_2"); v < 1 {
			return false, fmt.Sprintf("VI_2 adverts received %v", v)
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("scraping %s in %s: %v", metricsAddr, ha, err)
	}
	t.Logf("scraped %d bytes, %d families", len(text), len(mfs))

	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// keepalived-exporter's names: one keepalived_vrrp_state per VIP, the
	// address as keepalived's data dump writes it (a /24 keeps its length).
	for _, c := range []struct {
		name, vip, vrid string
		want            float64
	}{{"VI_1", vip1.String(), "51", 2}, {"VI_2", vip2.String(), "52", 1}} {
		got := metricSeries(mfs, "keepalived_vrrp_state", "iname", c.name)
		want := map[string]string{"iname": c.name, "intf": "eth0", "vrid": c.vrid, "ip_address": c.vip + "/24"}
		if len(got) != 1 || !metricLabelsAre(got[0], want) || got[0].GetGauge().GetValue() != c.want {
			t.Errorf("keepalived_vrrp_state for %s = %v, want one series %v = %v", c.name, got, want, c.want)
		}
	}
	if v := metricValue(mfs, "keepalived_up"); v != 1 {
		t.Errorf("keepalived_up = %v, want 1", v)
	}
	if v := metricValue(mfs, "keepalived_advertisements_sent_total", "iname", "VI_1", "intf", "eth0", "vrid", "51"); v < 1 {
		t.Errorf("keepalived_advertisements_sent_total{VI_1} = %v, want > 0", v)
	}
	if v := metricValue(mfs, "keepalived_advertisements_received_total", "iname", "VI_2", "intf", "eth0", "vrid", "52"); v < 1 {
		t.Errorf("keepalived_advertisements_received_total{VI_2} = %v, want > 0", v)
	}

	// vrrpkit's names: the stateset has exactly the one state set.
	for name, want := range map[string]string{"VI_1": "MASTER", "VI_2": "BACKUP"} {
		for _, m := range metricSeries(mfs, "vrrpkit_vrrp_state", "vrrp_instance", name) {
			if metricLabel(m, "interface") != "eth0" {
				t.Errorf("vrrpkit_vrrp_state %v: want interface eth0", m.GetLabel())
			}
			if set := m.GetGauge().GetValue() == 1; set != (metricLabel(m, "state") == want) {
				t.Errorf("vrrpkit_vrrp_state{vrrp_instance=%q,state=%q} = %v, want 1 only for %s", name, metricLabel(m, "state"), m.GetGauge().GetValue(), want)
			}
		}
		if n := len(metricSeries(mfs, "vrrpkit_vrrp_state", "vrrp_instance", name)); n != 5 {
			t.Errorf("vrrpkit_vrrp_state for %s has %d states, want 5", name, n)
		}
	}
	if v := metricValue(mfs, "vrrpkit_vrrp_adverts_sent_total", "vrrp_instance", "VI_1", "interface", "eth0", "vrid", "51"); v < 1 {
		t.Errorf("vrrpkit_vrrp_adverts_sent_total{VI_1} = %v, want > 0", v)
	}
	if v := metricValue(mfs, "vrrpkit_vrrp_effective_priority", "vrrp_instance", "VI_1"); v != 150 {
		t.Errorf("vrrpkit_vrrp_effective_priority{VI_1} = %v, want 150", v)
	}
	if v := metricValue(mfs, "vrrpkit_vrrp_peer_priority", "vrrp_instance", "VI_2"); v != 200 {
		t.Errorf("vrrpkit_vrrp_peer_priority{VI_2} = %v, want keepalived's 200", v)
	}
	// VI_2 went MASTER before keepalived came and BACKUP when it preempted:
	// the supervisor's count of transitions (from vrrpd's event stream)
	// agrees with vrrpd's own counter.
	became := metricValue(mfs, "vrrpkit_vrrp_became_master_total", "vrrp_instance", "VI_2")
	toMaster := metricValue(mfs, "vrrpkit_vrrp_transitions_total", "vrrp_instance", "VI_2", "to", "MASTER")
	toBackup := metricValue(mfs, "vrrpkit_vrrp_transitions_total", "vrrp_instance", "VI_2", "to", "BACKUP")
	t.Logf("VI_2: became_master_total %v, transitions to MASTER %v, to BACKUP %v", became, toMaster, toBackup)
	// INIT -> BACKUP at vrrpd's start may come folded into the event
	// stream's first snapshot (the supervisor's follower subscribes while
	// the first push is on its way), so only the preemption's BACKUP is sure.
	if became < 1 || toMaster != became || toBackup < 1 {
		t.Errorf("VI_2: became_master_total %v, transitions to MASTER %v, to BACKUP %v; want the first two equal and >= 1, and >= 1 to BACKUP", became, toMaster, toBackup)
	}
	for _, name := range []string{"vrrpkit_config_generation", "vrrpkit_vrrpd_up", "go_goroutines", "process_resident_memory_bytes"} {
		if v := metricValue(mfs, name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if v := metricValue(mfs, "vrrpkit_child_up", "child", "vrrpd"); v != 1 {
		t.Errorf("vrrpkit_child_up{child=vrrpd} = %v, want 1", v)
	}

	// A reload (the same file): the generation and the reload count rise.
	if resp, err := supervisorReload(vk, false); err != nil || !resp.GetAccepted() {
		t.Fatalf("reload: %v, %v", resp, err)
	}
	err = eventually(10*time.Second, func() (bool, string) {
		text, err := scrapeMetrics(client, "http://"+metricsAddr+"/metrics")
		if err != nil {
			return false, err.Error()
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		if mfs, err = p.TextToMetricFamilies(bytes.NewReader(text)); err != nil {
			return false, err.Error()
		}
		gen, n := metricValue(mfs, "vrrpkit_config_generation"), metricValue(mfs, "vrrpkit_reloads_total", "result", "accepted")
		return gen == 2 && n == 1, fmt.Sprintf("generation %v, accepted reloads %v", gen, n)
	})
	if err != nil {
		t.Errorf("after a reload: %v, want generation 2 and 1 accepted reload", err)
	}

	// Only /metrics and the index page.
	if body, err := scrapeMetrics(client, "http://"+metricsAddr+"/"); err != nil || !strings.Contains(string(body), `href="/metrics"`) {
		t.Errorf("GET / = %q, %v; want a link to /metrics", body, err)
	}
	if _, err := scrapeMetrics(client, "http://"+metricsAddr+"/debug/pprof/"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("GET /debug/pprof/: %v, want 404", err)
	}
}

// startVrrpkitMetrics is startVrrpkit with --metrics-listen addr.
func startVrrpkitMetrics(t *testing.T, lab *netlab.Lab, h *netlab.Host, text, addr string) *vrrpkitRouter {
	t.Helper()
	file := filepath.Join(lab.Dir(), h.Name()+"-vrrpkit.conf")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return startVrrpkitFile(t, h, file, "--metrics-listen", addr)
}

// netnsClient is an HTTP client whose connections are opened inside h's
// namespace (a socket stays in the namespace it was created in).
func netnsClient(h *netlab.Host) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var conn net.Conn
				err := h.InNetns(func() error {
					var err error
					conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return conn, err
			},
		},
	}
}

func scrapeMetrics(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// metricSeries returns the metrics of family name whose labels include the
// given name/value pairs.
func metricSeries(mfs map[string]*dto.MetricFamily, name string, labels ...string) []*dto.Metric {
	var out []*dto.Metric
next:
	for _, m := range mfs[name].GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			if metricLabel(m, labels[i]) != labels[i+1] {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// metricValue is the gauge or counter value of the one series that matches; -1
// when none or several do.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	ms := metricSeries(mfs, name, labels...)
	if len(ms) != 1 {
		return -1
	}
	if c := ms[0].GetCounter(); c != nil {
		return c.GetValue()
	}
	return ms[0].GetGauge().GetValue()
}

func metricLabel(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func metricLabelsAre(m *dto.Metric, want map[string]string) bool {
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}
