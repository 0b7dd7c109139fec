package manta_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/manta-ml/manta/ops"
)

// Config.MetricsMaxModels 0 means the default cap (ops.DefaultMaxModels),
// not "no cap": a member that has served more models than the cap has at
// most the cap's model label values plus "other".
func TestMetricsModelCapDefault(t *testing.T) {
	root := t.TempDir()
	n := ops.DefaultMaxModels + 20
	for i := range n {
		mustLinear(t, root, fmt.Sprintf("m%04d", i), "1", []float64{1}, 0)
	}
	c := startMember(t, root, nil) // MetricsMaxModels left 0
	ctx := context.Background()
	for i := range n {
		if _, err := c.Model(fmt.Sprintf("m%04d", i)).Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := c.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != ops.Namespace+"_model_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "model" {
					labels[lp.GetValue()] = true
				}
			}
		}
	}
	if len(labels) == 0 {
		t.Fatal("no manta_model_requests_total series")
	}
	if len(labels) > ops.DefaultMaxModels+1 || !labels[ops.OtherModel] {
		t.Fatalf("%d model label values after %d models (other present: %v); want at most %d plus %q",
			len(labels), n, labels[ops.OtherModel], ops.DefaultMaxModels, ops.OtherModel)
	}
}
