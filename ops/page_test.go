package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// artifactDir is where browser screenshots go: $MANTA_ARTIFACTS, else a
// fixed directory under the system temp dir (overwritten by each run).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MANTA_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "manta-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageInChromium loads the status page in headless Chromium: it
// shows the member and the model that was just called (with its request
// count), and a screenshot is written.
func TestStatusPageInChromium(t *testing.T) {
	browser := testenv.Chromium(t)
	e := newEnv(t, func(root string) {
		linear(t, root, "fraud-score", "1", []float64{0.5, -0.25, 2}, 0.1)
		linear(t, root, "eta-eu-road", "3", []float64{1, 2}, 0)
		linear(t, root, "wide", "1", make([]float64, 1<<21), 0) // 16 MiB: a visible memory bar
	})
	e.predict(t, "wide", "["+strings.Repeat("0,", 1<<21-1)+"0]")
	for i := range 30 {
		e.predict(t, "fraud-score", fmt.Sprintf("[%d,1,0.5]", i))
	}
	status, body := e.do(t, http.MethodPost, "/v2/models/eta-eu-road/infer",
		`{"inputs":[{"name":"features","shape":[3,2],"datatype":"FP64","data":[[1,2],[3,4],[5,6]]}]}`)
	if status != http.StatusOK {
		t.Fatalf("infer: %d %s", status, body)
	}
	member := e.c.MemberName()
	url := e.srv.URL + "/"

	// The page itself and its assets are served with a strict CSP.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("page: %d %v", resp.StatusCode, resp.Header)
	}
	for _, asset := range []string{"/ui/app.js", "/ui/style.css"} {
		status, _ := e.do(t, http.MethodGet, asset, "")
		if status != 200 {
			t.Fatalf("%s: %d", asset, status)
		}
	}
	if status, _ := e.do(t, http.MethodGet, "/ui/", ""); status != 404 {
		t.Fatalf("/ui/ listing: %d, want 404", status)
	}

	dom, err := browser.WaitDOM(url, 3*time.Second, 60*time.Second, func(dom string) bool {
		return strings.Contains(dom, `data-ready="1"`) && strings.Contains(dom, `<tr class="active" data-model="eta-eu-road">`)
	})
	if err != nil {
		t.Fatalf("%v\nDOM:\n%s", err, dom)
	}
	for _, want := range []string{
		`data-member="` + member + `"`,                                   // the member's card
		`<span class="chip" data-model="fraud-score">fraud-score</span>`, // active on it
		`<td class="num requests">30</td>`,                               // fraud-score's request count
		`<td class="num requests">3</td>`,                                // eta-eu-road: one OIP call of 3 rows
		"1 member",
		`class="pill ok"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page does not show %s", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	// Behind a bearer token (manta serve --http-token), the page opened as
	// /#token=... sends it with its requests.
	guarded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		open := r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/")
		if !open && r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		e.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer guarded.Close()
	dom, err = browser.WaitDOM(guarded.URL+"/#token=s3cret", 3*time.Second, 60*time.Second, func(dom string) bool {
		return strings.Contains(dom, `data-ready="1"`) && strings.Contains(dom, `data-model="fraud-score"`)
	})
	if err != nil {
		t.Fatalf("page with a token: %v\nDOM:\n%s", err, dom)
	}

	shot := filepath.Join(artifactDir(t), "status-page.png")
	if err := browser.Screenshot(url, shot, 1280, 1000, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if r := img.Bounds(); r.Dx() != 1280 || r.Dy() != 1000 {
		t.Fatalf("screenshot is %v", r)
	}
	// Not blank: the header bar is dark, the page background light.
	colors := map[uint32]bool{}
	for y := 0; y < 1000; y += 25 {
		for x := 0; x < 1280; x += 25 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>12<<8|g>>12<<4|bl>>12] = true
		}
	}
	if len(colors) < 4 {
		t.Fatalf("screenshot looks blank (%d colors)", len(colors))
	}
	t.Logf("status page screenshot: %s", shot)
}

// TestStatusPageQuality: a monitored model with labels shows its live
// measures, its drift and its quality over time on the status page, and
// in /v1/member.
func TestStatusPageQuality(t *testing.T) {
	e := newEnv(t, func(root string) {
		if err := modelgen.Write(root, modelhost.Manifest{ID: "eta", Version: "2", Runtime: "linear", Format: "linear-json",
			Entrypoint: "model.json", MemoryBytes: 4096, Monitor: true},
			map[string][]byte{"model.json": modelgen.LinearJSON([]float64{1}, 0, "identity")}); err != nil {
			t.Fatal(err)
		}
		linear(t, root, "plain", "1", []float64{1}, 0)
	})
	ctx := context.Background()
	var labels []manta.Label
	for i := range 1500 {
		id := fmt.Sprint("r", i)
		if _, err := e.c.Model("eta").Predict(ctx, []byte(fmt.Sprintf(`{"features":[%d]}`, i%100)), manta.WithRequestID(id)).Get(ctx); err != nil {
			t.Fatal(err)
		}
		labels = append(labels, manta.Label{RequestID: id, Value: float64(i%100) + 0.25})
	}
	if _, err := e.c.Feedback(ctx, "eta", labels); err != nil {
		t.Fatal(err)
	}
	e.predict(t, "plain", "[1]")
	status, body := e.do(t, http.MethodGet, "/v1/member", "")
	if status != 200 {
		t.Fatalf("/v1/member: %d %s", status, body)
	}
	var d ops.MemberDetail
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	var q *ops.QualityView
	for _, m := range d.Models {
		switch m.Model {
		case "eta":
			q = m.Quality
		case "plain":
			if m.Quality != nil {
				t.Errorf("an unmonitored model shows quality: %+v", m.Quality)
			}
		}
	}
	if q == nil || q.Version != "2" || q.Joined != 1500 || q.Measures["mae"] != 0.25 || q.Drift == nil || len(q.History) != 15 {
		t.Fatalf("eta's quality in /v1/member: %+v", q)
	}

	browser := testenv.Chromium(t)
	dom, err := browser.WaitDOM(e.srv.URL+"/", 3*time.Second, 60*time.Second, func(dom string) bool {
		return strings.Contains(dom, `data-ready="1"`) && strings.Contains(dom, `data-model="eta"`)
	})
	if err != nil {
		t.Fatalf("%v\nDOM:\n%s", err, dom)
	}
	for _, want := range []string{`mae 0.250 · rmse 0.250`, `<svg class="spark"`, `<td class="num drift`, `<td class="quality muted">–</td>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page does not show %s", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
