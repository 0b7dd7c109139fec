package clusterbench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteTable prints the report as one table: a measure and its value per row.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "manta bench cluster: %d members, %d models, %d requests per model and pass, %d outstanding at most; etcd + Redis on loopback, %d CPUs\n",
		r.Members, r.Models, r.RequestsPerModel, r.Concurrency, r.CPUs)
	rows := [][2]string{}
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }
	pass := func(p Pass) string {
		if p.Requests == 0 {
			return "not run"
		}
		s := fmt.Sprintf("%d requests in %v = %.0f req/s; latency p50 %v p99 %v max %v; %d errors, %d wrong, %d missing",
			p.Requests, p.Elapsed.Round(time.Millisecond), p.Rate, rd(p.P50), rd(p.P99), rd(p.Max), p.Errors, p.Wrong, p.Missing)
		if len(p.ErrorCodes) > 0 {
			s += " (" + codes(p.ErrorCodes) + ")"
		}
		if p.Extra > 0 {
			s += fmt.Sprintf("; %d duplicate or late answers", p.Extra)
		}
		return s
	}
	add("setup (etcd, Redis, models, members)", r.Setup.Round(time.Millisecond).String())
	add("cold pass (stream manta:requests)", pass(r.Cold))
	add("warm pass (every model active)", pass(r.Warm))
	lat := func(l Latency) string {
		if l.Err != "" {
			return l.Err
		}
		if l.Samples == 0 {
			return "not run"
		}
		s := fmt.Sprintf("p50 %v, p99 %v (%d sequential requests, %d errors, %d wrong)", rd(l.P50), rd(l.P99), l.Samples, l.Errors, l.Wrong)
		if l.Sample != "" {
			s += "; first: " + l.Sample
		}
		return s
	}
	add("cross-member SDK Predict+Get", lat(r.SDK))
	add("raw protoactor cluster.Request", lat(r.Raw))
	if r.Ratio > 0 {
		add("SDK p50 / raw p50", fmt.Sprintf("%.2fx", r.Ratio))
	}
	if len(r.IdleCPU) > 0 {
		var per []string
		for _, c := range r.IdleCPU {
			per = append(per, fmt.Sprintf("%.1f", c))
		}
		add(fmt.Sprintf("idle CPU per member (%% core, %v quiet)", r.IdleSettle), fmt.Sprintf("max %.1f%%, mean %.1f%% [%s]", r.IdleCPUMax, r.IdleCPUMean, strings.Join(per, " ")))
	}
	if len(r.RSSCold) > 0 {
		var per []string
		for i := range r.RSSCold {
			per = append(per, fmt.Sprintf("%.0f→%.0f", mib(r.RSSStart[i]), mib(r.RSSCold[i])))
		}
		add("RSS per activation", fmt.Sprintf("%.1f KiB (%d activations; RSS MiB at start→after cold: %s)",
			r.RSSPerActivationKiB, r.Activations, strings.Join(per, " ")))
		if len(r.RSSIdle) == len(r.RSSStart) {
			var idle []string
			for i := range r.RSSIdle {
				idle = append(idle, fmt.Sprintf("%.0f", mib(r.RSSIdle[i])))
			}
			add("RSS per activation, after idle", fmt.Sprintf("%.1f KiB (RSS MiB after the idle window: %s)",
				r.RSSPerActivationIdleKiB, strings.Join(idle, " ")))
		}
		var act []string
		for _, n := range r.ActivationsPerMember {
			act = append(act, fmt.Sprint(n))
		}
		add("active models per member", fmt.Sprintf("%s; models listed active by two members: %d", strings.Join(act, " "), r.OnTwoMembers))
	}
	if len(r.MembersSeen) > 0 {
		var seen []string
		split := false
		for _, n := range r.MembersSeen {
			seen = append(seen, fmt.Sprint(n))
			split = split || n != r.Members
		}
		s := fmt.Sprintf("%s (of %d)", strings.Join(seen, " "), r.Members)
		if split {
			s += ": THE CLUSTER SPLIT (a member's status does not list every member)"
		}
		add("members each member sees", s)
	}
	if f := r.Failover; f != nil {
		s := fmt.Sprintf("kill -9 %s (%d active models), %d followed: answered again p50 %v, p99 %v, max %v; never within the bound: %d; %d attempts",
			f.Victim, f.VictimModels, f.Models, rd(f.P50), rd(f.P99), rd(f.Max), f.NeverAnswered, f.Attempts)
		if len(f.FailedAttempts) > 0 {
			s += ", failed: " + codes(f.FailedAttempts)
		}
		add("failover", s)
	}
	add("double activations (activation logs)", fmt.Sprintf("%d overlaps, longest %v, %d over %v",
		len(r.Overlaps), rd(r.LongestOverlap), r.LastingOverlaps, HandOverSlack))
	add("member log lines", fmt.Sprintf("%d WARN, %d ERROR", r.MemberWarnings, r.MemberErrors))
	exact := "no"
	if r.Exact {
		exact = "yes"
	}
	add("exact", fmt.Sprintf("%s: %d failed requests of %d (cold, warm, SDK)", exact, r.Failed, r.Requests))
	width := 0
	for _, row := range rows {
		width = max(width, len([]rune(row[0])))
	}
	for _, row := range rows {
		fmt.Fprintf(w, "  %s%s  %s\n", row[0], strings.Repeat(" ", width-len([]rune(row[0]))), row[1])
	}
}

func rd(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func codes(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var out []string
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(out, " ")
}
