package lab

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
)

// Report is what Run measured.
type Report struct {
	Config Config     `json:"config"`
	Models []ModelRow `json:"models"`
	Rows   []Row      `json:"rows"`
}

// ModelRow is a simulated model and the latency stats the strategies saw.
type ModelRow struct {
	Model   Model            `json:"model"`
	Latency strategy.Latency `json:"latency"`
}

// Row is one run's figures over the whole trace.
type Row struct {
	Label    string            `json:"label"`
	Strategy string            `json:"strategy"`
	Models   []string          `json:"models"`
	Params   map[string]string `json:"params,omitempty"`
	Deadline time.Duration     `json:"deadline"`
	Requests int               `json:"requests"`
	// Latency from request to answer (an unanswered request counts at
	// its deadline).
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
	Mean time.Duration `json:"mean"`
	// CallsPerRequest is the load: model calls launched per request
	// (1 for a single call; hedges and ensembles add).
	CallsPerRequest float64 `json:"calls_per_request"`
	// Accuracy is the share of answers whose label is right;
	// Agreement the mean confidence of the answers (for a vote, the share
	// of models that agreed).
	Accuracy  float64 `json:"accuracy"`
	Agreement float64 `json:"agreement"`
	// AnsweredFraction is the share of requests answered without error.
	AnsweredFraction float64 `json:"answered_fraction"`
	// DeadlineMisses are requests that got deadline_exceeded, Errors the
	// other failed ones.
	DeadlineMisses int `json:"deadline_misses"`
	Errors         int `json:"errors"`
	Fallbacks      int `json:"fallbacks"`
	Hedges         int `json:"hedges"`
	// Wins counts the answers each model produced.
	Wins map[string]int `json:"wins"`
}

// ExtraLoad is the calls beyond one per request, as a fraction (0.05: 5%
// more calls than a single call each).
func (r Row) ExtraLoad() float64 { return r.CallsPerRequest - 1 }

// Row returns the row labelled label.
func (r *Report) Row(label string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Label == label {
			return row, true
		}
	}
	return Row{}, false
}

func fmtDur(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0fms", f)
	case f >= 10:
		return fmt.Sprintf("%.1fms", f)
	default:
		return fmt.Sprintf("%.2fms", f)
	}
}

// Print writes the report as two aligned tables: the models, then the runs
// side by side.
func (r *Report) Print(w io.Writer) error {
	c := r.Config
	if _, err := fmt.Fprintf(w, "manta lab: %d requests per run, seed %d, virtual clock\n\n", c.Requests, c.Seed); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tlatency\tp50\tp95\tp99\taccuracy\tfail")
	for _, m := range r.Models {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3f\t%.1f%%\n", m.Model.Name, m.Model.Latency, fmtDur(m.Latency.P50),
			fmtDur(m.Latency.P95), fmtDur(m.Latency.P99), m.Model.Accuracy, 100*m.Model.FailRate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tdeadline\tp50\tp99\tp99.9\tcalls/req\textra\taccuracy\tagree\tmisses\terrors\tfallbacks\thedges\twins\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3f\t%+.1f%%\t%.3f\t%.2f\t%d\t%d\t%d\t%d\t%s\t\n",
			row.Label, fmtDur(row.Deadline), fmtDur(row.P50), fmtDur(row.P99), fmtDur(row.P999),
			row.CallsPerRequest, 100*row.ExtraLoad(), row.Accuracy, row.Agreement,
			row.DeadlineMisses, row.Errors, row.Fallbacks, row.Hedges, wins(row))
	}
	return tw.Flush()
}

func wins(r Row) string {
	total := 0
	names := make([]string, 0, len(r.Wins))
	for m, n := range r.Wins {
		names = append(names, m)
		total += n
	}
	if total == 0 {
		return "-"
	}
	sort.Slice(names, func(i, j int) bool {
		if r.Wins[names[i]] != r.Wins[names[j]] {
			return r.Wins[names[i]] > r.Wins[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, m := range names {
		parts[i] = fmt.Sprintf("%s %.0f%%", m, 100*float64(r.Wins[m])/float64(total))
	}
	return strings.Join(parts, " ")
}
