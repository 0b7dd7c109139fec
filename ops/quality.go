package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/quality"
)

// FeedbackHook returns the function for actors.Host.OnFeedback: it counts
// labels by outcome (manta_model_feedback_total).
func (m *Metrics) FeedbackHook() func(model string, counts [4]int) {
	return func(model string, counts [4]int) {
		label := m.labels.get(cluster.ModelOf(model))
		for o, n := range counts {
			if n > 0 {
				m.feedback.WithLabelValues(label, quality.Outcome(o).String()).Add(float64(n))
			}
		}
	}
}

var (
	qualityLabels   = []string{"model", "version", "measure"}
	descQuality     = prometheus.NewDesc(Namespace+"_model_quality", "Live quality of a model version over its last window of joined labels (measure: mae, rmse, accuracy, logloss).", qualityLabels, nil)
	descQualityBase = prometheus.NewDesc(Namespace+"_model_quality_first_window", "The measure over the version's first full window of joined labels (the baseline of MantaModelQualityDrop).", qualityLabels, nil)
	descJoined      = prometheus.NewDesc(Namespace+"_model_quality_joined_labels", "Labels joined for the model version by its activation on this member.", []string{"model", "version"}, nil)
	descDrift       = prometheus.NewDesc(Namespace+"_model_drift_score", "The model version's drift: the largest feature PSI of live requests against its reference profile.", []string{"model", "version"}, nil)
	descPredPSI     = prometheus.NewDesc(Namespace+"_model_prediction_psi", "PSI of the model version's live predictions against its reference profile.", []string{"model", "version"}, nil)
)

// qualityCollector reads the monitored activations' quality at scrape
// time (actors.Host.QualityReports): nothing is computed on the request
// path. Series exist only for monitored models, are capped by the model
// label (models past the cap, "other", get none: one model's quality
// under a shared label would mislead), and a tracker keeps at most
// quality.MaxVersions versions. Replicas on one member (id, id@k) share
// the series: the activation with the most joined labels gives them.
type qualityCollector struct {
	host   *actors.Host
	labels *modelLabels
}

func (c *qualityCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQuality, descQualityBase, descJoined, descDrift, descPredPSI} {
		ch <- d
	}
}

func (c *qualityCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ model, version string }
	best := map[key]quality.VersionReport{}
	var order []key
	for _, tm := range c.host.QualityReports() {
		label := c.labels.get(cluster.ModelOf(tm.Identity))
		if label == OtherModel {
			continue
		}
		for _, v := range tm.Report.Versions {
			k := key{label, v.Version}
			cur, ok := best[k]
			if !ok {
				order = append(order, k)
			}
			if !ok || v.Joined > cur.Joined || (v.Joined == cur.Joined && v.Drift != nil && cur.Drift == nil) {
				best[k] = v
			}
		}
	}
	for _, k := range order {
		v := best[k]
		ch <- prometheus.MustNewConstMetric(descJoined, prometheus.GaugeValue, float64(v.Joined), k.model, k.version)
		for name, x := range v.Measures {
			ch <- prometheus.MustNewConstMetric(descQuality, prometheus.GaugeValue, x, k.model, k.version, name)
		}
		for name, x := range v.First {
			ch <- prometheus.MustNewConstMetric(descQualityBase, prometheus.GaugeValue, x, k.model, k.version, name)
		}
		if d := v.Drift; d != nil {
			ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, d.Score, k.model, k.version)
			ch <- prometheus.MustNewConstMetric(descPredPSI, prometheus.GaugeValue, d.PredictionPSI, k.model, k.version)
		}
	}
}

// QualityReporter is the optional ability of an Actors to report its
// monitored activations' quality (*actors.Host has it): the status page
// shows it.
type QualityReporter interface {
	QualityReports() []actors.TrackedModel
}

// QualityView is a monitored model's quality on one member, as the status
// page shows it.
type QualityView struct {
	Version    string                 `json:"version"`
	Joined     int64                  `json:"joined"`
	UnknownIDs int64                  `json:"unknown_ids"`
	Measures   map[string]float64     `json:"measures"`
	First      map[string]float64     `json:"first,omitempty"`
	Drift      *float64               `json:"drift,omitempty"`
	History    []quality.HistoryPoint `json:"history,omitempty"`
}

// qualityViews returns the quality of each monitored model on this
// member (nil when the actors cannot tell).
func qualityViews(a Actors) map[string]*QualityView {
	qr, ok := a.(QualityReporter)
	if !ok {
		return nil
	}
	out := map[string]*QualityView{}
	for _, tm := range qr.QualityReports() {
		vs := tm.Report.Versions
		if len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1] // the newest version
		id := cluster.ModelOf(tm.Identity)
		if cur, ok := out[id]; ok && cur.Joined >= v.Joined {
			continue
		}
		qv := &QualityView{Version: v.Version, Joined: v.Joined, UnknownIDs: tm.Report.UnknownIDs,
			Measures: v.Measures, First: v.First, History: v.History}
		if v.Drift != nil {
			d := v.Drift.Score
			qv.Drift = &d
		}
		out[id] = qv
	}
	return out
}
