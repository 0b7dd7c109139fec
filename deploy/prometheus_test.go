package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/ops"
)

func lookBin(t *testing.T, name string) string {
	t.Helper()
	p, ok := testenv.LookPath(name)
	if !ok {
		testenv.Missing(t, "%s not found (Debian package prometheus)", name)
	}
	return p
}

// writeDeployDir copies deploy/<dir> from the embedded files into a
// temporary directory and returns it.
func writeDeployDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := fs.ReadDir(Files, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(Files, dir+"/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func run(t *testing.T, stdin []byte, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPromtool: the scrape configuration and the rules pass promtool's
// checks, and the rules' unit tests pass.
func TestPromtool(t *testing.T) {
	promtool := lookBin(t, "promtool")
	dir := writeDeployDir(t, "prometheus")
	run(t, nil, promtool, "check", "config", filepath.Join(dir, "prometheus.yml"))
	out := run(t, nil, promtool, "check", "rules", filepath.Join(dir, "alerts.yml"))
	if !strings.Contains(out, "SUCCESS: 9 rules found") {
		t.Errorf("check rules: %s", out)
	}
	run(t, nil, promtool, "test", "rules", filepath.Join(dir, "alerts_test.yml"))

	// Every alert has a unit test.
	tests, _ := os.ReadFile(filepath.Join(dir, "alerts_test.yml"))
	for _, name := range alertNames(t) {
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no unit test in alerts_test.yml", name)
		}
	}
}

// TestScrapeConfigFindsTheMembers: the DNS SD name is the SRV record of
// the headless Service's http port in the install's namespace.
func TestScrapeConfigFindsTheMembers(t *testing.T) {
	b, err := fs.ReadFile(Files, "prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName      string `json:"job_name"`
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "manta" || len(cfg.ScrapeConfigs[0].DNSSDConfigs) != 1 {
		t.Fatalf("scrape configs %+v", cfg.ScrapeConfigs)
	}
	sd := cfg.ScrapeConfigs[0].DNSSDConfigs[0]
	m := regexp.MustCompile(`^_([a-z0-9-]+)\._tcp\.([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$`).FindStringSubmatch(sd.Names[0])
	if sd.Type != "SRV" || m == nil {
		t.Fatalf("dns sd %+v", sd)
	}
	objs := decodeManifests(t)
	svc, ok := findService(objs, m[2])
	if !ok || svc.Spec.ClusterIP != "None" {
		t.Fatalf("%s is not a headless Service of the manifests", m[2])
	}
	named := false
	for _, p := range svc.Spec.Ports {
		named = named || p.Name == m[1]
	}
	if !named || m[3] != "manta" {
		t.Fatalf("service %s has no port %q, or namespace %q is not the documented manta", m[2], m[1], m[3])
	}
}

func alertNames(t *testing.T) []string {
	t.Helper()
	b, err := fs.ReadFile(Files, "prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	sort.Strings(names)
	return names
}

// prometheus is a Prometheus server started by a test.
type prometheus struct {
	url  string
	proc *testenv.Process
}

// startPrometheus runs Debian's prometheus with config (a prometheus.yml
// text) in dir, on a free loopback port, and waits until it is ready.
func startPrometheus(t *testing.T, dir, config string) *prometheus {
	t.Helper()
	bin := lookBin(t, "prometheus")
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn", "--storage.tsdb.retention.time=1h")
	p := &prometheus{url: "http://" + addr, proc: testenv.Start(t, cmd)}
	err := poll(60*time.Second, func() (bool, error) {
		select {
		case <-p.proc.Done():
			return false, errors.New("prometheus exited")
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("prometheus not ready: %v\n%s", err, p.proc.Output())
	}
	return p
}

// poll calls cond every 100 ms until it is true, it fails, or timeout.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("not within %v", timeout)
		case <-tick.C:
		}
	}
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() float64 {
	v, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// query runs an instant query; an API error (bad PromQL) is an error.
func (p *prometheus) query(q string) ([]sample, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %s: %v: %s", q, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, r.Error)
	}
	var out []sample
	switch r.Data.ResultType {
	case "vector":
		err = json.Unmarshal(r.Data.Result, &out)
	case "scalar":
		var s [2]any
		err = json.Unmarshal(r.Data.Result, &s)
		out = []sample{{Value: s}}
	default:
		err = fmt.Errorf("result type %s", r.Data.ResultType)
	}
	return out, err
}

// waitValue polls q until its single sample equals want.
func (p *prometheus) waitValue(t *testing.T, q string, want float64) {
	t.Helper()
	var last []sample
	err := poll(60*time.Second, func() (bool, error) {
		s, err := p.query(q)
		if err != nil {
			return false, err
		}
		last = s
		return len(s) == 1 && s[0].float() == want, nil
	})
	if err != nil {
		t.Fatalf("%s: want %v: %v (last %+v)", q, want, err, last)
	}
}

// TestPrometheusScrapesMember: a real Prometheus server, configured with
// the deploy rules, scrapes a running member's /metrics; after known
// requests its queries return the expected counts, the rules evaluate,
// and every query of the Grafana dashboard runs.
func TestPrometheusScrapesMember(t *testing.T) {
	if _, ok := testenv.LookPath("prometheus"); !ok {
		testenv.Missing(t, "prometheus not found (Debian package prometheus)")
	}
	root := t.TempDir()
	if err := modelgen.Linear(root, "m1", "1", []float64{1, 2}, 0.5, "identity"); err != nil {
		t.Fatal(err)
	}
	cfg := manta.DefaultConfig()
	cfg.Store, cfg.BudgetBytes, cfg.FetchDir, cfg.PollInterval = root, 64<<20, t.TempDir(), -1
	cfg.Cluster = cluster.DefaultConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	m, err := ops.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	m.InstallHost(c.Host()) // before any request reaches the member
	if err := m.AttachMember(c.Host(), c.Cache()); err != nil {
		t.Fatal(err)
	}
	s, err := ops.NewServer(c, ops.WithMember(c.Host(), c.Cache()), ops.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	dir := writeDeployDir(t, "prometheus")
	target := strings.TrimPrefix(srv.URL, "http://")
	p := startPrometheus(t, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: manta
    static_configs:
      - targets: [%q]
`, target))

	predict := func(n int, payload string) {
		for range n {
			resp := c.Do(ctx, &api.PredictRequest{ModelId: "m1", Payload: []byte(payload)})
			if resp.Error != nil && payload == `{"features":[1,2]}` {
				t.Fatalf("predict: %v", resp.Error)
			}
		}
	}
	p.waitValue(t, `up{job="manta"}`, 1)
	predict(3, `{"features":[1,2]}`)
	p.waitValue(t, `manta_model_requests_total{model="m1"}`, 3)
	predict(4, `{"features":[1,2]}`)
	predict(1, `{"features":[1]}`) // bad_input: wrong feature count
	p.waitValue(t, `manta_model_requests_total{model="m1"}`, 8)
	p.waitValue(t, `manta_model_errors_total{model="m1",code="bad_input"}`, 1)
	p.waitValue(t, `manta_model_request_duration_seconds_count{model="m1"}`, 8)
	p.waitValue(t, `manta_model_activations_total{model="m1"}`, 1)
	p.waitValue(t, `manta_member_model_memory_budget_bytes`, 64<<20)
	p.waitValue(t, `manta_member_activations_active`, 1)

	// Every rule of alerts.yml is loaded and evaluates without error.
	want := alertNames(t)
	var last string
	err = poll(60*time.Second, func() (bool, error) {
		resp, err := http.Get(p.url + "/api/v1/rules")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return false, err
		}
		var got []string
		healthy := true
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				got = append(got, rule.Name)
				if rule.Health == "err" {
					return false, fmt.Errorf("rule %s: %s", rule.Name, rule.LastError)
				}
				healthy = healthy && rule.Health == "ok"
			}
		}
		sort.Strings(got)
		last = strings.Join(got, ",")
		return healthy && last == strings.Join(want, ","), nil
	})
	if err != nil {
		t.Fatalf("rules: %v (loaded %s, want %v)", err, last, want)
	}

	// Every dashboard query runs; the per-model ones see m1.
	queries := dashboardQueries(t)
	for _, q := range queries {
		res, err := p.query(q.expr)
		if err != nil {
			t.Errorf("panel %q: %v", q.panel, err)
			continue
		}
		if strings.Contains(q.expr, "manta_model_requests_total") && !strings.Contains(q.expr, "rate(") && len(res) == 0 {
			t.Errorf("panel %q: no data for %s", q.panel, q.expr)
		}
	}
	res, err := p.query(`sum by (model) (increase(manta_model_requests_total{model=~".*"}[1m]))`)
	if err != nil || len(res) != 1 || res[0].Metric["model"] != "m1" || !(res[0].float() > 0) {
		t.Fatalf("increase over the last minute: %+v %v", res, err)
	}

	// The exposition also passes promtool's own lint.
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	run(t, body, lookBin(t, "promtool"), "check", "metrics")
}
