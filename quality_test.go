package manta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/quality"
	"github.com/manta-ml/manta/router"
)

// monitoredLinear writes a linear model version whose manifest asks for
// monitoring (predictions kept for feedback from the first request).
func monitoredLinear(t testing.TB, root, id, version string, w []float64, b float64, mod func(*modelhost.Manifest)) {
	t.Helper()
	m := modelhost.Manifest{ID: id, Version: version, Runtime: "linear", Format: "linear-json", Entrypoint: "model.json",
		MemoryBytes: 4096, Monitor: true}
	if mod != nil {
		mod(&m)
	}
	if err := modelgen.Write(root, m, map[string][]byte{"model.json": modelgen.LinearJSON(w, b, "identity")}); err != nil {
		t.Fatal(err)
	}
}

func featuresJSON(x []float64) []byte {
	b := []byte(`{"features":[`)
	for i, v := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, "]}"...)
}

// startRouter runs a router over c on rd; cleanup stops it.
func startRouter(t *testing.T, rd *testenv.Redis, c *manta.Client) {
	t.Helper()
	cfg := router.DefaultConfig()
	cfg.URL = rd.URL(0)
	cfg.Consumer = "test"
	cfg.Block = 100 * time.Millisecond
	r, err := router.New(cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = r.Shutdown(sctx)
		cancel()
		<-done
	})
}

func redisClient(t *testing.T, rd *testenv.Redis) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(rd.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { rc.Close() })
	return rc
}

// TestFeedbackStreamQualityAndDrift is the acceptance run: a
// linear model whose true function is known answers 1,500 requests with
// standard-normal inputs; labels = truth + N(0, 0.5) come through the
// manta:feedback stream; the live MAE is within 0.05 of E|N(0,0.5)| =
// 0.399, the drift score under 0.1. Then 1,500 requests with inputs
// shifted by two standard deviations: the drift score goes over 0.25.
// Malformed feedback entries go to manta:dead with their reasons; labels
// for ids never predicted are counted, not errors.
func TestFeedbackStreamQualityAndDrift(t *testing.T) {
	rd := testenv.StartRedis(t)
	root := t.TempDir()
	w, b := []float64{1, -2, 0.5}, 0.25
	monitoredLinear(t, root, "eta", "1", w, b, nil)
	c := startMember(t, root, nil)
	startRouter(t, rd, c)
	rc := redisClient(t, rd)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(16, 1))
	m := c.Model("eta")

	run := func(from, n int, shift float64) {
		t.Helper()
		refs := make([]*manta.Ref, n)
		truth := make([]float64, n)
		for i := range n {
			x := []float64{rng.NormFloat64() + shift, rng.NormFloat64() + shift, rng.NormFloat64() + shift}
			truth[i] = b + w[0]*x[0] + w[1]*x[1] + w[2]*x[2]
			refs[i] = m.Predict(ctx, featuresJSON(x), manta.WithRequestID("r"+strconv.Itoa(from+i)))
		}
		if _, err := manta.GetAll(ctx, refs); err != nil {
			t.Fatal(err)
		}
		pipe := rc.Pipeline()
		for i := range n {
			label := truth[i] + 0.5*rng.NormFloat64()
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: "manta:feedback", Values: map[string]any{
				"model": "eta", "id": "r" + strconv.Itoa(from+i), "label": strconv.FormatFloat(label, 'g', -1, 64)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	quality := func() *manta.ModelQuality {
		t.Helper()
		q, err := m.Quality(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	run(0, 1500, 0)
	waitFor(t, time.Minute, func() bool { return quality().Joined == 1500 }, "1,500 labels joined")
	q := quality()
	if q.Version != "1" || q.Window != 1000 || !q.Tracking {
		t.Fatalf("quality %+v", q)
	}
	if mae := q.Measures["mae"]; math.Abs(mae-0.399) > 0.05 {
		t.Errorf("live MAE %.4f, want 0.399 ± 0.05", mae)
	}
	if rmse := q.Measures["rmse"]; math.Abs(rmse-0.5) > 0.05 {
		t.Errorf("live RMSE %.4f, want 0.5 ± 0.05", rmse)
	}
	if q.Drift == nil || q.Drift.Score >= 0.1 || len(q.Drift.Features) != 3 || q.Drift.ReferenceRows != 1000 {
		t.Fatalf("drift before the shift: %+v", q.Drift)
	}
	t.Logf("before: mae %.4f rmse %.4f drift %.4f prediction psi %.4f", q.Measures["mae"], q.Measures["rmse"], q.Drift.Score, q.Drift.PredictionPSI)

	run(1500, 1500, 2)
	waitFor(t, time.Minute, func() bool { return quality().Joined == 3000 }, "3,000 labels joined")
	q = quality()
	if q.Drift == nil || q.Drift.Score <= 0.25 {
		t.Fatalf("drift after the shift: %+v", q.Drift)
	}
	// the model is exact but for the noise: the shift moves inputs, not errors
	if mae := q.Measures["mae"]; math.Abs(mae-0.399) > 0.05 {
		t.Errorf("live MAE after the shift %.4f, want 0.399 ± 0.05", mae)
	}
	t.Logf("after: mae %.4f drift %.4f prediction psi %.4f", q.Measures["mae"], q.Drift.Score, q.Drift.PredictionPSI)

	// unknown ids are counted; malformed entries are dead letters
	bad := []map[string]any{
		{"model": "eta", "id": "never-predicted", "label": "1"},
		{"id": "r1", "label": "1"},
		{"model": "Bad/Id", "id": "r1", "label": "1"},
		{"model": "eta", "label": "1"},
		{"model": "eta", "id": "r2"},
		{"model": "eta", "id": "r2", "label": "seven"},
		{"model": "eta", "id": "r2", "label": "2", "at": "yesterday"},
		{"model": "nope", "id": "r2", "label": "2"},
	}
	for _, v := range bad {
		if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: "manta:feedback", Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Minute, func() bool {
		n, _ := rc.XLen(ctx, "manta:dead").Result()
		return n == 7 && quality().UnknownIDs == 1
	}, "7 dead letters and 1 unknown id")
	reasons := map[string]bool{}
	for _, e := range rc.XRange(ctx, "manta:dead", "-", "+").Val() {
		reasons[fmt.Sprint(e.Values["reason"])] = true
	}
	for _, want := range []string{"missing_model", "bad_model_id", "missing_id", "missing_label", "bad_label", "bad_at", "feedback_failed"} {
		if !reasons[want] {
			t.Errorf("no dead letter with reason %s (got %v)", want, reasons)
		}
	}
	waitFor(t, 30*time.Second, func() bool {
		p, err := rc.XPending(ctx, "manta:feedback", "manta").Result()
		return err == nil && p.Count == 0
	}, "every feedback entry acknowledged")
}

// TestFeedbackHTTP: POST /v1/models/{id}/feedback takes one label or a
// list and answers the outcomes; a malformed body is 400 bad_input; GET
// /v1/models/{id}/quality has the documented shape. A model without
// "monitor" keeps predictions from its first label on.
func TestFeedbackHTTP(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{2}, 0)
	c := startMember(t, root, func(cfg *manta.Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	ctx := context.Background()
	m := c.Model("lin")
	predict := func(id string, x float64) {
		t.Helper()
		if _, err := m.Predict(ctx, featuresJSON([]float64{x}), manta.WithRequestID(id)).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	post := func(body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post("http://"+c.HTTPAddr()+"/v1/models/lin/feedback", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return resp.StatusCode, out
	}
	predict("before", 1) // no tracker yet: not kept
	res, err := m.Feedback(ctx, "before", 2)
	if err != nil || res.UnknownID != 1 {
		t.Fatalf("first label: %+v %v", res, err)
	}
	predict("a", 1) // 2
	predict("b", 2) // 4
	predict("c", 3) // 6
	code, out := post(`{"id": "a", "label": 3}`)
	if code != 200 || out["joined"] != 1.0 {
		t.Fatalf("single: %d %v", code, out)
	}
	// c's label is known a century after its prediction: late
	code, out = post(`[{"id": "b", "label": "4"}, {"id": "c", "label": 8, "at": "2126-12-01T10:00:00Z"}, {"id": "zzz", "label": 1}]`)
	if code != 200 || out["joined"] != 1.0 || out["unknown_id"] != 1.0 || out["late"] != 1.0 {
		t.Fatalf("list: %d %v", code, out)
	}
	for _, body := range []string{`{`, `[]`, `{"label": 1}`, `{"id": "a"}`, `{"id": "a", "label": "x"}`, `{"id": "a", "label": 1, "at": "noon"}`, `{"id": "a", "label": [1]}`} {
		code, out := post(body)
		e, _ := out["error"].(map[string]any)
		if code != 400 || e["code"] != "bad_input" {
			t.Errorf("%s: %d %v", body, code, out)
		}
	}
	resp, err := http.Get("http://" + c.HTTPAddr() + "/v1/models/lin/quality")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var q struct {
		Model      string             `json:"model"`
		Version    string             `json:"version"`
		Window     int                `json:"window"`
		Joined     int64              `json:"joined"`
		UnknownIDs int64              `json:"unknown_ids"`
		Measures   map[string]float64 `json:"measures"`
		Versions   []json.RawMessage  `json:"versions"`
	}
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	// joined: a (error 1), b (error 0): mae 0.5
	if resp.StatusCode != 200 || q.Model != "lin" || q.Version != "1" || q.Window != 1000 || q.Joined != 2 ||
		q.UnknownIDs != 2 || math.Abs(q.Measures["mae"]-0.5) > 1e-9 || len(q.Versions) != 1 {
		t.Fatalf("GET quality: %d %s", resp.StatusCode, b)
	}
	for _, path := range []string{"/v1/models/Bad!/quality"} {
		resp, err := http.Get("http://" + c.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if _, err := m.Feedback(ctx, "a", math.NaN()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Feedback(ctx, "lin", nil); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Fatalf("no labels: %v", err)
	}
}

// TestFeedbackSurvivesStopAndMove: the join state outlives its activation.
// Stopped with no successor (idle, memory pressure) it stays on the member
// and the identity's next activation there takes it back; stopped while
// another activation holds the identity (a move: the directory points at
// the new one before the old is stopped) it is sent to that activation.
func TestFeedbackSurvivesStopAndMove(t *testing.T) {
	root := t.TempDir()
	monitoredLinear(t, root, "lin", "1", []float64{1}, 0, nil)
	c := startMember(t, root, nil)
	ctx := context.Background()
	m := c.Model("lin")
	predict := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			if _, err := m.Predict(ctx, featuresJSON([]float64{float64(i)}), manta.WithRequestID(prefix+strconv.Itoa(i))).Get(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	pending := func() int {
		for _, tm := range c.Host().QualityReports() {
			if tm.Identity == "lin" {
				return tm.Report.Pending
			}
		}
		return -1
	}
	feedback := func(prefix string, n int) manta.FeedbackResult {
		t.Helper()
		labels := make([]manta.Label, n)
		for i := range labels {
			labels[i] = manta.Label{RequestID: prefix + strconv.Itoa(i), Value: float64(i) + 1}
		}
		res, err := c.Feedback(ctx, "lin", labels)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// stopped alone: kept on the member, taken back
	predict("s", 10)
	if !c.Host().Stop("lin") {
		t.Fatal("no activation to stop")
	}
	waitFor(t, 10*time.Second, func() bool { return c.Host().Stashed("lin") }, "the join state kept on the member")
	if res := feedback("s", 10); res.Joined != 10 {
		t.Fatalf("after a stop: %+v", res)
	}

	// moved: the old activation hands its state to the new one
	predict("m", 10)
	where, err := c.Where(ctx, "lin")
	if err != nil || len(where.Activations) != 1 {
		t.Fatalf("where: %+v %v", where, err)
	}
	old := where.Activations[0].PID
	c.Host().Locate = func(ctx context.Context, identity string) *actor.PID {
		for ctx.Err() == nil {
			if w, err := c.Where(ctx, identity); err == nil {
				for _, a := range w.Activations {
					if a.PID != old {
						addr, id, _ := strings.Cut(a.PID, "/")
						return actor.NewPID(addr, id)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	}
	if !c.Host().Stop("lin") {
		t.Fatal("no activation to stop")
	}
	predict("n", 1) // the new activation
	waitFor(t, 10*time.Second, func() bool { return pending() == 11 }, "the moved predictions in the new activation's ring")
	if c.Host().Stashed("lin") {
		t.Fatal("the join state was kept on the member rather than sent to the new activation")
	}
	res := feedback("m", 10)
	if res.Joined != 10 {
		t.Fatalf("after a move: %+v", res)
	}
	q, err := m.Quality(ctx)
	if err != nil || q.Joined != 20 || math.Abs(q.Measures["mae"]-1) > 1e-9 {
		t.Fatalf("quality after the move: %+v %v", q, err)
	}
}

// TestFeedbackFansOutToReplicas: a model with a replica answers from
// both activations; every label is joined by the one that answered it,
// and a label neither holds is counted once.
func TestFeedbackFansOutToReplicas(t *testing.T) {
	root := t.TempDir()
	monitoredLinear(t, root, "rep", "1", []float64{1}, 0, func(m *modelhost.Manifest) { m.MinReplicas = 2 })
	agent := test.NewInMemAgent()
	two := func(cfg *manta.Config) {
		cfg.Cluster.LocalAgent = agent
		cfg.Cluster.Placement.Rebalance.Interval = 300 * time.Millisecond
	}
	c := startMember(t, root, two)
	c2 := startMember(t, root, two) // a replica needs a second member
	ctx := context.Background()
	waitFor(t, 20*time.Second, func() bool {
		st, err := c.Status(ctx)
		return err == nil && len(st.Members) == 2
	}, "two members")
	m := c.Model("rep")
	if _, err := m.Predict(ctx, featuresJSON([]float64{0})).Get(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		w, err := c.Where(ctx, "rep")
		return err == nil && w.Replicas == 1
	}, "a replica for min_replicas 2")
	pendingOn := func() map[string]int {
		out := map[string]int{}
		for _, h := range []*manta.Client{c, c2} {
			for _, tm := range h.Host().QualityReports() {
				out[tm.Identity] += tm.Report.Pending
			}
		}
		return out
	}
	const n = 400
	labels := make([]manta.Label, 0, n)
	for round := 0; len(labels) == 0 || pendingOn()["rep@1"] == 0 || pendingOn()["rep"] == 0; round++ {
		if round == 20 {
			t.Fatalf("requests never reached both replicas: %v", pendingOn())
		}
		refs := make([]*manta.Ref, 0, n)
		for i := range n {
			id := fmt.Sprintf("q%d-%d", round, i)
			refs = append(refs, m.Predict(ctx, featuresJSON([]float64{float64(i)}), manta.WithRequestID(id)))
			labels = append(labels, manta.Label{RequestID: id, Value: float64(i) + 0.5})
		}
		if _, err := manta.GetAll(ctx, refs); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("predictions kept per activation: %v", pendingOn())
	res, err := c.Feedback(ctx, "rep", append(labels, manta.Label{RequestID: "nobody", Value: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Joined != len(labels) || res.UnknownID != 1 {
		t.Fatalf("feedback over replicas: %+v, want %d joined and 1 unknown", res, len(labels))
	}
	q, err := m.Quality(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var joined int64
	for _, v := range q.Versions {
		joined += v.Joined
	}
	if joined != int64(len(labels)) || q.UnknownIDs != 1 || len(q.Versions) != 2 {
		t.Fatalf("quality over replicas: %+v", q)
	}
}

// softmax3 is a three-class classifier over two features: probabilities
// softmax(W·x), prediction the most likely class.
func softmax3(x0, x1 float64) []float64 {
	l := []float64{0.8*x0 - 0.3*x1, -0.5*x0 + 0.9*x1 + 0.2, 0.1*x0 + 0.1*x1 - 0.4}
	mx := math.Max(l[0], math.Max(l[1], l[2]))
	var sum float64
	for i := range l {
		l[i] = math.Exp(l[i] - mx)
		sum += l[i]
	}
	for i := range l {
		l[i] /= sum
	}
	return l
}

func init() {
	modelhost.RegisterFunc("softmax3", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
		return modelhost.NewFuncModel(func(ctx context.Context, batch []modelhost.Input) ([]modelhost.Output, error) {
			out := make([]modelhost.Output, len(batch))
			for i, in := range batch {
				var req struct{ Features []float64 }
				if err := json.Unmarshal(in.Payload, &req); err != nil || len(req.Features) != 2 {
					out[i].Err = fmt.Errorf("%w: want 2 features", manta.ErrBadInput)
					continue
				}
				p := softmax3(req.Features[0], req.Features[1])
				best := 0
				for c := range p {
					if p[c] > p[best] {
						best = c
					}
				}
				b, _ := json.Marshal(map[string]any{"prediction": best, "probabilities": p})
				out[i].Payload = b
			}
			return out, nil
		}, 1024), nil
	})
}

// TestClassifierQualityMatchesSklearn: a classifier's live accuracy and
// logloss equal scikit-learn's accuracy_score and log_loss on the same
// predictions and labels.
func TestClassifierQualityMatchesSklearn(t *testing.T) {
	py := testenv.PythonWith(t, "sklearn")
	root := t.TempDir()
	if err := modelgen.Write(root, modelhost.Manifest{ID: "cls", Version: "1", Runtime: "go", Entrypoint: "softmax3",
		MemoryBytes: 1024, Monitor: true}, nil); err != nil {
		t.Fatal(err)
	}
	c := startMember(t, root, nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 600
	refs := make([]*manta.Ref, n)
	labels := make([]manta.Label, n)
	for i := range n {
		x0, x1 := 2*rng.NormFloat64(), 2*rng.NormFloat64()
		refs[i] = c.Model("cls").Predict(ctx, featuresJSON([]float64{x0, x1}), manta.WithRequestID("c"+strconv.Itoa(i)))
		// the true class drawn from the model's own probabilities: a
		// calibrated model, right about as often as it is confident
		p, u, y := softmax3(x0, x1), rng.Float64(), 0
		for y < 2 && u > p[y] {
			u -= p[y]
			y++
		}
		labels[i] = manta.Label{RequestID: "c" + strconv.Itoa(i), Value: float64(y)}
	}
	results, err := manta.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Feedback(ctx, "cls", labels)
	if err != nil || res.Joined != n {
		t.Fatalf("feedback: %+v %v", res, err)
	}
	q, err := c.Model("cls").Quality(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// scikit-learn on the outputs as served and the same labels
	type row struct {
		Probabilities []float64 `json:"probabilities"`
	}
	var data struct {
		P [][]float64 `json:"p"`
		Y []int       `json:"y"`
	}
	for i, r := range results {
		var o row
		if err := json.Unmarshal(r.Output, &o); err != nil {
			t.Fatal(err)
		}
		data.P = append(data.P, o.Probabilities)
		data.Y = append(data.Y, int(labels[i].Value))
	}
	in, _ := json.Marshal(data)
	script := `
import json, sys
import numpy as np
from sklearn.metrics import accuracy_score, log_loss
d = json.load(sys.stdin)
p, y = np.array(d["p"]), np.array(d["y"])
print(json.dumps({"accuracy": accuracy_score(y, p.argmax(axis=1)), "logloss": log_loss(y, p, labels=[0, 1, 2])}))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sklearn: %v", err)
	}
	var want map[string]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	t.Logf("manta %v, sklearn %v", q.Measures, want)
	if q.Measures["accuracy"] != want["accuracy"] {
		t.Errorf("accuracy %v, sklearn %v", q.Measures["accuracy"], want["accuracy"])
	}
	if math.Abs(q.Measures["logloss"]-want["logloss"]) > 1e-6*want["logloss"] {
		t.Errorf("logloss %v, sklearn %v", q.Measures["logloss"], want["logloss"])
	}
}

// TestQualityMetrics: the quality, drift and feedback series on /metrics,
// within the model-label cap (a model past it, "other", gets no quality
// series; its labels are counted under other).
func TestQualityMetrics(t *testing.T) {
	root := t.TempDir()
	monitoredLinear(t, root, "a", "1", []float64{1}, 0, nil)
	monitoredLinear(t, root, "b", "1", []float64{1}, 0, nil)
	c := startMember(t, root, func(cfg *manta.Config) {
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.MetricsMaxModels = 1
		cfg.Quality.ReferenceRows = 10
	})
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		labels := []manta.Label{{RequestID: "nope", Value: 1}}
		for i := range 20 {
			rid := id + strconv.Itoa(i)
			if _, err := c.Model(id).Predict(ctx, featuresJSON([]float64{float64(i)}), manta.WithRequestID(rid)).Get(ctx); err != nil {
				t.Fatal(err)
			}
			labels = append(labels, manta.Label{RequestID: rid, Value: float64(i) + 2})
		}
		if _, err := c.Feedback(ctx, id, labels); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		`manta_model_quality{measure="mae",model="a",version="1"} 2`,
		`manta_model_quality{measure="rmse",model="a",version="1"} 2`,
		`manta_model_quality_joined_labels{model="a",version="1"} 20`,
		`manta_model_drift_score{model="a",version="1"}`,
		`manta_model_prediction_psi{model="a",version="1"}`,
		`manta_model_feedback_total{model="a",outcome="joined"} 20`,
		`manta_model_feedback_total{model="a",outcome="unknown_id"} 1`,
		`manta_model_feedback_total{model="other",outcome="joined"} 20`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, bad := range []string{`manta_model_quality{measure="mae",model="other"`, `model="b"`} {
		if strings.Contains(body, bad) {
			t.Errorf("/metrics has %s", bad)
		}
	}
}

// TestReferenceFileDrift: a version whose manifest names a reference file
// is profiled from it (reference "file"), not from its first requests:
// drift shows from the first requests on.
func TestReferenceFileDrift(t *testing.T) {
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	var ref bytes.Buffer
	for range 2000 {
		fmt.Fprintf(&ref, "[%g,%g]\n", rng.NormFloat64(), rng.NormFloat64())
	}
	m := modelhost.Manifest{ID: "ref", Version: "1", Runtime: "linear", Format: "linear-json", Entrypoint: "model.json",
		MemoryBytes: 4096, Monitor: true, Reference: "reference.jsonl"}
	if err := modelgen.Write(root, m, map[string][]byte{"model.json": modelgen.LinearJSON([]float64{1, 1}, 0, "identity"),
		"reference.jsonl": ref.Bytes()}); err != nil {
		t.Fatal(err)
	}
	c := startMember(t, root, nil)
	ctx := context.Background()
	send := func(n int, shift float64) {
		t.Helper()
		refs := make([]*manta.Ref, n)
		for i := range refs {
			refs[i] = c.Model("ref").Predict(ctx, featuresJSON([]float64{rng.NormFloat64() + shift, rng.NormFloat64() + shift}))
		}
		if _, err := manta.GetAll(ctx, refs); err != nil {
			t.Fatal(err)
		}
	}
	drift := func() *quality.Drift {
		q, err := c.Model("ref").Quality(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q.Drift
	}
	send(1, 0)
	waitFor(t, 10*time.Second, func() bool { d := drift(); return d != nil && d.Reference == "file" }, "the reference file's profile")
	send(400, 0)
	if d := drift(); d.ReferenceRows != 2000 || d.Score >= 0.1 || len(d.Features) != 2 {
		t.Fatalf("drift on the reference's distribution: %+v", d)
	}
	send(400, 2)
	if d := drift(); d.Score <= 0.25 {
		t.Fatalf("drift after a 2-sd shift: %+v", d)
	}
}

// TestStrategiesUseLiveQuality: best-quality and weighted-average rank
// candidates by their manifests' quality until each has MinLabels joined
// labels, then by their live quality. The manifests here claim the
// opposite of the truth: "bad" (mae 1) over "good" (mae 2).
func TestStrategiesUseLiveQuality(t *testing.T) {
	defer manta.SetCandidateStatsTTL(0)()
	root := t.TempDir()
	monitoredLinear(t, root, "good", "1", []float64{1}, 0, func(m *modelhost.Manifest) {
		m.Quality = &modelhost.Quality{Metric: "mae", Value: 2}
	})
	monitoredLinear(t, root, "bad", "1", []float64{1.5}, 0, func(m *modelhost.Manifest) {
		m.Quality = &modelhost.Quality{Metric: "mae", Value: 1}
	})
	c := startMember(t, root, func(cfg *manta.Config) { cfg.Quality.MinLabels = 50 })
	ctx := context.Background()
	payload := featuresJSON([]float64{2})
	speculate := func(strategy string) *manta.Result {
		t.Helper()
		res, err := c.Speculate(ctx, strategy, []string{"good", "bad"}, payload).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	waitFor(t, 10*time.Second, func() bool { return speculate("best-quality").Model == "bad" }, "best-quality by the manifests: bad")
	// weighted-average by the manifests: weights 1/2 (good: 2) and 1 (bad: 3)
	if got, want := prediction(t, speculate("weighted-average").Output), (0.5*2+1*3)/1.5; math.Abs(got-want) > 1e-9 {
		t.Fatalf("weighted-average by the manifests: %v, want %v", got, want)
	}

	// 60 labels each (truth y = x + 0.1): good's live mae 0.1, bad's larger
	for _, id := range []string{"good", "bad"} {
		var labels []manta.Label
		for i := range 60 {
			rid := fmt.Sprintf("%s-%d", id, i)
			x := float64(i) / 10
			if _, err := c.Model(id).Predict(ctx, featuresJSON([]float64{x}), manta.WithRequestID(rid)).Get(ctx); err != nil {
				t.Fatal(err)
			}
			labels = append(labels, manta.Label{RequestID: rid, Value: x + 0.1})
		}
		if res, err := c.Feedback(ctx, id, labels); err != nil || res.Joined != 60 {
			t.Fatalf("feedback %s: %+v %v", id, res, err)
		}
	}
	live := map[string]float64{}
	for _, id := range []string{"good", "bad"} {
		q, err := c.Model(id).Quality(ctx)
		if err != nil {
			t.Fatal(err)
		}
		live[id] = q.Measures["mae"]
	}
	waitFor(t, 10*time.Second, func() bool { return speculate("best-quality").Model == "good" }, "best-quality by live quality: good")
	want := (2/live["good"] + 3/live["bad"]) / (1/live["good"] + 1/live["bad"])
	waitFor(t, 10*time.Second, func() bool {
		return math.Abs(prediction(t, speculate("weighted-average").Output)-want) < 1e-9
	}, fmt.Sprintf("weighted-average by live quality (mae %v): %v", live, want))
}

// BenchmarkPredictMonitored: sequential Predict+Get of the same linear
// model (10 features), plain and monitored (ring, windows and drift on),
// in one process: the request-path cost of live quality. Sub-benchmarks
// alternate, so a neighbour's load falls on both.
func BenchmarkPredictMonitored(b *testing.B) {
	root := b.TempDir()
	w := []float64{.1, .2, .3, .4, .5, .6, .7, .8, .9, 1}
	for id, monitor := range map[string]bool{"plain": false, "monitored": true} {
		if err := modelgen.Write(root, modelhost.Manifest{ID: id, Version: "1", Runtime: "linear", Format: "linear-json",
			Entrypoint: "model.json", MemoryBytes: 4096, Monitor: monitor},
			map[string][]byte{"model.json": modelgen.LinearJSON(w, 0, "identity")}); err != nil {
			b.Fatal(err)
		}
	}
	c := startMember(b, root, nil)
	ctx := context.Background()
	payload := []byte(`{"features":[1,2,3,4,5,6,7,8,9,10]}`)
	for _, id := range []string{"plain", "monitored", "plain", "monitored"} {
		b.Run(id, func(b *testing.B) {
			m := c.Model(id)
			for i := 0; i < b.N; i++ {
				if _, err := m.Predict(ctx, payload).Get(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
