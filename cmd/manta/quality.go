package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/quality"
)

// cmdQuality is `manta quality MODEL`: the model's live quality and drift
// as GET /v1/models/{id}/quality answers it, one row per version and
// activation.
func cmdQuality(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("quality", flag.ContinueOnError)
	addr, err := addrFlag(fs)
	if err != nil {
		return err
	}
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("quality: want MODEL")
	}
	resp, err := do("GET", fmt.Sprintf("http://%s/v1/models/%s/quality", *addr, url.PathEscape(pos[0])), nil)
	if err != nil {
		return fmt.Errorf("quality: %w (is `manta serve` running at %s?)", err, *addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("quality: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var q manta.ModelQuality
	if err := json.Unmarshal(body, &q); err != nil {
		return err
	}
	printQuality(stdout, &q)
	return nil
}

func printQuality(w io.Writer, q *manta.ModelQuality) {
	if !q.Tracking {
		fmt.Fprintf(w, "%s keeps no predictions yet: set \"monitor\": true in its manifest, or send a label\n", q.Model)
		return
	}
	fmt.Fprintf(w, "%s: unknown ids %d, late %d, bad labels %d\n", q.Model, q.UnknownIDs, q.Late, q.BadLabels)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tIDENTITY\tSERVED BY\tJOINED\tWINDOW\tMEASURES\tFIRST WINDOW\tDRIFT\tPREDICTION PSI\tREFERENCE")
	for _, v := range q.Versions {
		drift, pred, ref := "-", "-", "collecting"
		if d := v.Drift; d != nil {
			drift, pred = fmt.Sprintf("%.3f", d.Score), fmt.Sprintf("%.3f", d.PredictionPSI)
			ref = fmt.Sprintf("%s (%d rows; %d live)", d.Reference, d.ReferenceRows, d.LiveRows)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Identity, v.ServedBy, v.Joined, v.Window,
			measures(v.Measures), measures(v.First), drift, pred, ref)
	}
	_ = tw.Flush()
	for _, v := range q.Versions {
		if v.Drift == nil || len(v.Drift.Features) == 0 {
			continue
		}
		fs := append([]quality.FeatureDrift(nil), v.Drift.Features...)
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].PSI > fs[j].PSI })
		if len(fs) > 8 {
			fs = fs[:8]
		}
		parts := make([]string, len(fs))
		for i, f := range fs {
			parts[i] = fmt.Sprintf("%d:%.3f", f.Index, f.PSI)
		}
		fmt.Fprintf(w, "v%s %s feature PSI (largest first): %s\n", v.Version, v.Identity, strings.Join(parts, " "))
	}
}

// measures renders a measure map as "mae=0.399 rmse=0.5", sorted; "-"
// when empty.
func measures(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%.4g", k, m[k])
	}
	return strings.Join(parts, " ")
}
