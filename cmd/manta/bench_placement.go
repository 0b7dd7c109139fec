package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/manta-ml/manta/internal/placesim"
)

// benchPlacement is `manta bench placement`: the placement and cache-policy
// simulation (internal/placesim) with a fixed seed, printed as tables (or
// JSON). Every run with the same flags prints the same figures. Hot models
// get replicas by the live leader's rule (--hot-rate, --max-replicas: a
// model measured above hot-rate × a member's mean volume gets
// ⌈volume/hot⌉−1 replicas, capped), each placed away from the model's
// other copies, its volume split evenly over them; the tables show the
// replicas placed and the hottest model's copies for every strategy.
func benchPlacement(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench placement", flag.ContinueOnError)
	d := placesim.DefaultConfig()
	var (
		c     = d
		slack = fs.String("slack", "1.15,1.03", "members' total budget over the models' total size; a comma list runs one scenario each")
		asJS  = fs.Bool("json", false, "print JSON instead of tables")
		only  = fs.String("only", "", "placement or cache: run one part only")
	)
	fs.Uint64Var(&c.Seed, "seed", d.Seed, "random seed")
	fs.IntVar(&c.Members, "members", d.Members, "members")
	fs.IntVar(&c.Models, "models", d.Models, "models")
	fs.Float64Var(&c.Alpha, "alpha", d.Alpha, "Zipf exponent of request volumes")
	fs.IntVar(&c.Cycles, "cycles", d.Cycles, "rebalancing cycles (the drift comes half-way)")
	fs.IntVar(&c.MaxMoves, "moves", d.MaxMoves, "rebalancer moves per cycle (K)")
	fs.IntVar(&c.CoolDown, "cooldown", d.CoolDown, "cycles a moved model stays put")
	fs.IntVar(&c.Staleness, "staleness", d.Staleness, "placements between gossip rounds")
	fs.Float64Var(&c.HotRate, "hot-rate", d.HotRate, "volume one activation serves before its model gets replicas, as a multiple of one member's mean volume (the live --hot-rate is this × the cluster's requests/s per member; <0: no replicas)")
	fs.IntVar(&c.MaxReplicas, "max-replicas", d.MaxReplicas, "replicas of one model at most (the live --max-replicas)")
	fs.IntVar(&c.DriftHot, "drift", d.DriftHot, "hot models that swap popularity half-way")
	fs.IntVar(&c.TraceRequests, "trace", d.TraceRequests, "requests in the cache trace")
	fs.Float64Var(&c.CacheFraction, "cache-fraction", d.CacheFraction, "cache budget as a fraction of the total size")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("bench placement takes no arguments, got %q", pos)
	}
	if *only != "" && *only != "placement" && *only != "cache" {
		return usagef("--only: want placement or cache, got %q", *only)
	}
	var slacks []float64
	for _, s := range strings.Split(*slack, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 {
			return usagef("--slack: bad value %q", s)
		}
		slacks = append(slacks, v)
	}
	if err := c.Validate(); err != nil {
		return usageError{msg: err.Error()}
	}
	var out struct {
		Placement []*placesim.PlacementReport `json:"placement,omitempty"`
		Cache     *placesim.CacheReport       `json:"cache,omitempty"`
	}
	if *only != "cache" {
		for _, s := range slacks {
			sc := c
			sc.Slack = s
			rep, err := placesim.SimulatePlacement(sc)
			if err != nil {
				return err
			}
			out.Placement = append(out.Placement, rep)
			if !*asJS {
				if err := placesim.WritePlacement(stdout, rep); err != nil {
					return err
				}
				fmt.Fprintln(stdout)
			}
		}
	}
	if *only != "placement" {
		rep, err := placesim.SimulateCache(c)
		if err != nil {
			return err
		}
		out.Cache = rep
		if !*asJS {
			if err := placesim.WriteCache(stdout, rep); err != nil {
				return err
			}
		}
	}
	if *asJS {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return nil
}
