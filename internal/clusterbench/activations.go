package clusterbench

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Overlap is a model identity active on two members at overlapping times.
type Overlap struct {
	Identity string        `json:"identity"`
	A        string        `json:"a"`
	B        string        `json:"b"`
	Overlap  time.Duration `json:"overlap_ns"`
}

func (o Overlap) String() string {
	return fmt.Sprintf("%s on %s and %s for %v", o.Identity, o.A, o.B, o.Overlap)
}

// CheckActivationLogs reads the members' activation logs (member name →
// path of its MANTA_ACTIVATION_LOG: lines "<unix-nanos> +|- <identity>",
// written when an activation starts serving and when it stops) and returns
// every identity active on two members at overlapping times, longest
// first. kills lists, per member, the times (unix nanos, ascending) it was
// killed: a kill ends the activations open then (a member restarted after
// a kill logs on into the same file). Activations still open end at end;
// lines after end are ignored (the members' own shutdown). A missing log
// is a member that never activated anything.
func CheckActivationLogs(logs map[string]string, kills map[string][]int64, end int64) ([]Overlap, error) {
	type interval struct {
		member     string
		start, end int64
	}
	byID := map[string][]interval{}
	for member, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("clusterbench: activation log of %s: %w", member, err)
		}
		open := map[string]int64{}
		closeAll := func(at int64) {
			for id, s := range open {
				byID[id] = append(byID[id], interval{member, s, at})
			}
			clear(open)
		}
		pending, applied := kills[member], int64(0)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) != 3 {
				continue
			}
			ts, err := strconv.ParseInt(fl[0], 10, 64)
			if err != nil || ts > end {
				continue
			}
			for len(pending) > 0 && pending[0] < ts {
				closeAll(pending[0])
				applied = pending[0]
				pending = pending[1:]
			}
			if ts < applied {
				continue // from before a kill already applied: it ended there
			}
			id := fl[2]
			if fl[1] == "+" {
				if _, ok := open[id]; !ok {
					open[id] = ts
				}
			} else if s, ok := open[id]; ok {
				byID[id] = append(byID[id], interval{member, s, ts})
				delete(open, id)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("clusterbench: activation log of %s: %w", member, err)
		}
		for _, k := range pending {
			if k < end {
				closeAll(k)
			}
		}
		closeAll(end)
	}
	var out []Overlap
	for id, ivs := range byID {
		for i := 0; i < len(ivs); i++ {
			for j := i + 1; j < len(ivs); j++ {
				a, b := ivs[i], ivs[j]
				if a.member != b.member && a.start < b.end && b.start < a.end {
					ov := min(a.end, b.end) - max(a.start, b.start)
					out = append(out, Overlap{Identity: id, A: a.member, B: b.member, Overlap: time.Duration(ov)})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Overlap != out[j].Overlap {
			return out[i].Overlap > out[j].Overlap
		}
		return out[i].Identity < out[j].Identity
	})
	return out, nil
}
