package placesim

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WritePlacement prints the placement table.
func WritePlacement(w io.Writer, r *PlacementReport) error {
	c := r.Config
	fmt.Fprintf(w, "placement: %d members, %d models (%s total, lognormal %s–%s, median %s), Zipf α=%.2g (top model %.1f%% of requests),\n",
		c.Members, c.Models, gib(r.TotalBytes), mb(c.MinBytes), mb(c.MaxBytes), mb(c.MedianBytes), c.Alpha, 100*r.TopShare)
	fmt.Fprintf(w, "  budget %s per member (slack %.2f), %d cycles of ≤%d moves (cool-down %d), gossip every %d placements, seed %d;\n",
		gib(r.Budget), c.Slack, c.Cycles, c.MaxMoves, c.CoolDown, c.Staleness, c.Seed)
	if c.HotRate > 0 {
		fmt.Fprintf(w, "  replicas above %.3g× a member's mean volume per activation, at most %d per model (all strategies: same table);\n",
			c.HotRate, c.MaxReplicas)
	} else {
		fmt.Fprintf(w, "  no replicas;\n")
	}
	fmt.Fprintf(w, "  the %d hottest models swap popularity with %d others after cycle %d. Ratios use true volumes.\n\n",
		c.DriftHot, c.DriftHot, c.Cycles/2)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tphase\tvolume max/mean\tmemory max/mean\tmoves\tmoved\tunplaced\treplicas\ttop copies\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%d\t%s\t%.2f%%\t%d\t%d\t\n", row.Strategy, row.Phase,
			row.VolumeMaxMean, row.MemoryMaxMean, row.Moves, gib(row.MovedBytes), 100*row.Unplaced, row.Replicas, row.TopCopies)
	}
	return tw.Flush()
}

// WriteCache prints the cache-policy table.
func WriteCache(w io.Writer, r *CacheReport) error {
	fmt.Fprintf(w, "cache: %d requests, Zipf over %d models, budget %s (%.0f%% of %s)\n\n",
		r.Requests, r.Models, gib(r.Budget), 100*float64(r.Budget)/float64(r.Total), gib(r.Total))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tbyte miss\tobject miss\tbyte miss / belady\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.3f\t\n", row.Policy, row.ByteMiss, row.ObjectMiss, row.VsBelady)
	}
	return tw.Flush()
}

func gib(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
func mb(n int64) string  { return fmt.Sprintf("%d MB", n/1_000_000) }
