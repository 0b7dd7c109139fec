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
// first. A member in kills was killed at that time (unix nanos): its open
// activations end then. Activations still open end at end; lines after
// end are ignored (the members' own shutdown).
func CheckActivationLogs(logs map[string]string, kills map[string]int64, end int64) ([]Overlap, error) {
	type interval struct {
		member     string
		start, end int64
	}
	byID := map[string][]interval{}
	for member, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) {
				continue // a member that never activated anything
			}
			return nil, fmt.Errorf("clusterbench: activation log of %s: %w", member, err)
		}
		open := map[string]int64{}
		stopAt := end
		if k, ok := kills[member]; ok && k < stopAt {
			stopAt = k
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) != 3 {
				continue
			}
			ts, err := strconv.ParseInt(fl[0], 10, 64)
			if err != nil || ts > stopAt {
				continue
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
		for id, s := range open {
			byID[id] = append(byID[id], interval{member, s, stopAt})
		}
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
