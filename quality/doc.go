// Package quality is the arithmetic of Manta's live model quality and
// drift (docs/ARCHITECTURE.md §2.4): a bounded ring of a model
// activation's last predictions, the join of ground-truth labels to them
// by request id, quality measures per model version over a sliding window
// of joined labels (mae and rmse for regressors, accuracy and logloss for
// classifiers), and drift as the population stability index (PSI) of live
// inputs and predictions against a reference profile kept as fixed-bin
// histograms.
//
// A Tracker is one activation's state. It costs nothing until it exists:
// the model actor makes one only when its model is monitored (the
// manifest's "monitor") or gets its first label, so 10^5 idle models on a
// member hold no ring. Its memory is bounded by its Config (the ring, one
// window per version, Bins per feature up to MaxFeatures), and Observe,
// the request path, allocates nothing once the ring exists.
//
//	t := quality.NewTracker(quality.Config{})
//	t.Observe("3", "req-1", []byte(`{"features":[1,2]}`), []byte(`{"prediction":4.2}`), time.Now())
//	out := t.Join("req-1", 4.0, time.Now()) // quality.Joined
//	r := t.Report()                        // r.Versions[0].Measures["mae"] ≈ 0.2
//
// The package imports nothing of Manta but internal/jsonscan, so it is
// tested alone.
package quality
