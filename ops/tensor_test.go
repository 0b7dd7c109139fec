package ops

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/latency"
)

func TestFeatureRows(t *testing.T) {
	cases := []struct {
		body   string
		rows   string
		single bool
		err    string
	}{
		{`{"name":"f","shape":[3],"datatype":"FP64","data":[1,2,3]}`, "[[1 2 3]]", true, ""},
		{`{"name":"f","shape":[2,2],"datatype":"FP32","data":[[0.1,0.2],[0.3,0.4]]}`, "[[0.10000000149011612 0.20000000298023224] [0.30000001192092896 0.4000000059604645]]", false, ""},
		{`{"name":"f","shape":[2,0],"datatype":"INT32","data":[]}`, "[[] []]", false, ""},
		{`{"name":"f","shape":[0,2],"datatype":"FP64","data":[]}`, "", false, "no rows"},
		{`{"name":"f","shape":[-1,2],"datatype":"FP64","data":[1,2]}`, "", false, "invalid"},
		{`{"name":"f","shape":[4294967296,4294967296],"datatype":"FP64","data":[1]}`, "", false, "invalid"},
		{`{"name":"f","shape":[1],"datatype":"FP64","data":1}`, "", false, "array"},
		{`{"name":"f","shape":[1],"datatype":"FP64"}`, "", false, "missing"},
		{`{"name":"f","shape":[1],"datatype":"FP64","data":[1e400]}`, "", false, "finite"},
		{`{"name":"f","shape":[1],"datatype":"FP64","data":[[[[[[[[[[1]]]]]]]]]]}`, "", false, "deeper"},
	}
	for _, c := range cases {
		var in RequestInput
		if err := json.Unmarshal([]byte(c.body), &in); err != nil {
			t.Fatal(err)
		}
		rows, single, err := featureRows(&in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		if got := fmt.Sprint(rows); got != c.rows || single != c.single {
			t.Errorf("%s: rows %s single %v, want %s %v", c.body, got, single, c.rows, c.single)
		}
	}
	if got := string(featuresPayload([]float64{float64(float32(0.3)), 2}, 32)); got != `{"features":[0.3,2]}` {
		t.Errorf("FP32 payload %s", got)
	}
}

// FuzzInferRequest: any body decodes to rows or an error, never a panic,
// and rows always match the declared shape.
func FuzzInferRequest(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"features","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,4]]}]}`,
		`{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2,3]}]}`,
		`{"inputs":[{"name":"features","shape":[1,1],"datatype":"UINT8","data":[[[1]]]}]}`,
		`{"inputs":[]}`, `[]`, `{"inputs":[{"shape":[9223372036854775807,2]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req InferRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		in, err := pickFeatures(req.Inputs)
		if err != nil {
			return
		}
		rows, _, err := featureRows(in)
		if err != nil {
			return
		}
		n := in.Shape[len(in.Shape)-1]
		for _, r := range rows {
			if int64(len(r)) != n {
				t.Fatalf("row of %d, shape %v", len(r), in.Shape)
			}
			var v map[string][]float64
			if err := json.Unmarshal(featuresPayload(r, 64), &v); err != nil || len(v["features"]) != len(r) {
				t.Fatalf("payload %s: %v", featuresPayload(r, 64), err)
			}
		}
	})
}

func TestRecentQuantiles(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := newRecent(10)
	r.now = func() time.Time { return now }
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	r.add(ds, 100, 2)
	now = now.Add(3 * time.Second)
	r.add(nil, 1, 1)
	pts := r.points()
	if len(pts) != 10 || pts[9].Unix != now.Unix() {
		t.Fatalf("points %d, last %d", len(pts), pts[len(pts)-1].Unix)
	}
	p := pts[6]
	if p.Requests != 100 || p.Errors != 2 || p.MaxMS != 100 || p.MeanMS != 50.5 {
		t.Fatalf("point %+v", p)
	}
	// The quantiles are within one bucket (21%) above.
	if p.P50MS < 50 || p.P50MS > 50*latency.Growth || p.P99MS < 99 || p.P99MS > 100 {
		t.Fatalf("quantiles p50 %v p99 %v", p.P50MS, p.P99MS)
	}
	if pts[9].Requests != 1 || pts[9].P50MS != 0 {
		t.Fatalf("untimed second %+v", pts[9])
	}
	// The ring forgets seconds older than the window.
	now = now.Add(20 * time.Second)
	for _, p := range r.points() {
		if p.Requests != 0 {
			t.Fatalf("stale point %+v", p)
		}
	}
}

func TestRoutableHTTP(t *testing.T) {
	for _, c := range [][3]string{
		{"0.0.0.0:8080", "10.1.2.3:8090", "10.1.2.3:8080"},
		{"[::]:8080", "10.1.2.3:8090", "10.1.2.3:8080"},
		{":8080", "[fd00::1]:8090", "[fd00::1]:8080"},
		{"10.9.9.9:8080", "10.1.2.3:8090", "10.9.9.9:8080"},
		{"manta-0.manta:8080", "10.1.2.3:8090", "manta-0.manta:8080"},
		{"0.0.0.0:8080", "bad", "0.0.0.0:8080"},
	} {
		if got := routableHTTP(c[0], c[1]); got != c[2] {
			t.Errorf("routableHTTP(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
