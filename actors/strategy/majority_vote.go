package strategy

import (
	"fmt"

	"github.com/manta-ml/manta/api"
)

// MajorityVote calls every candidate at once and answers as soon as k of
// them agree (equal outputs, compared as canonical JSON), with the models
// that agreed and Confidence = agreeing / called. When k agreeing answers can
// no longer come (or the deadline is reached) it answers with the plurality
// (ties: the answer that arrived first), marked Fallback; with strict=true it
// fails instead.
//
// Params:
//   - k: answers that must agree (default: a majority of the candidates,
//     n/2+1);
//   - key: compare only this field of a JSON object output (e.g. "label");
//     default the whole output;
//   - strict: no plurality fallback (default false).
type MajorityVote struct {
	k      int
	key    string
	strict bool

	// keys caches the canonical vote of p.Results[i] (results only grow).
	keys []vote
}

type vote struct {
	key string
	ok  bool
}

// NewMajorityVote is the factory of "majority-vote".
func NewMajorityVote(params map[string]string) (Strategy, error) {
	pr := ReadParams(params)
	s := &MajorityVote{k: pr.Int("k", 0), key: pr.String("key", ""), strict: pr.Bool("strict", false)}
	if pr.Has("k") && s.k < 1 {
		pr.Failf("k=%d: want k >= 1", s.k)
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Strategy.
func (*MajorityVote) Name() string { return NameMajorityVote }

// Start implements Strategy.
func (s *MajorityVote) Start(req *Request, cands []Candidate) Plan {
	ls := launchAll(cands)
	if s.k == 0 {
		s.k = len(ls)/2 + 1
	}
	if s.k > len(ls) {
		return Plan{Err: fmt.Errorf("%w: %s: k=%d but only %d candidates", api.ErrBadInput, NameMajorityVote, s.k, len(ls))}
	}
	return Plan{Launches: ls}
}

type ballot struct {
	first  Result
	voters []Result
}

// OnEvent implements Strategy.
func (s *MajorityVote) OnEvent(ev Event, p *Progress) Decision {
	var order []string
	ballots := map[string]*ballot{}
	for i := len(s.keys); i < len(p.Results); i++ {
		var v vote
		if r := p.Results[i]; r.OK() {
			f, ok := Field(r.Output, s.key)
			v = vote{key: string(f), ok: ok} // an output without the key does not vote
		}
		s.keys = append(s.keys, v)
	}
	for i, r := range p.Results {
		v := s.keys[i]
		if !v.ok {
			continue
		}
		b := ballots[v.key]
		if b == nil {
			b = &ballot{first: r}
			ballots[v.key] = b
			order = append(order, v.key)
		}
		b.voters = append(b.voters, r)
	}
	var best *ballot
	for _, k := range order {
		if b := ballots[k]; best == nil || len(b.voters) > len(best.voters) {
			best = b
		}
	}
	called := len(p.Calls)
	if best != nil && len(best.voters) >= s.k {
		return s.answer(best, called, false)
	}
	top := 0
	if best != nil {
		top = len(best.voters)
	}
	hopeless := top+p.Pending()+len(p.Scheduled) < s.k
	if hopeless || ev.Kind == EventDeadline {
		if best != nil && !s.strict {
			return s.answer(best, called, true)
		}
		if p.Idle() || hopeless {
			if len(p.Successes()) == 0 {
				return failAll(NameMajorityVote, p)
			}
			return Fail(fmt.Errorf("%w: %s: no %d agreeing answers among %d results", api.ErrInternal, NameMajorityVote, s.k, len(p.Results)))
		}
	}
	return Wait()
}

func (s *MajorityVote) answer(b *ballot, called int, fallback bool) Decision {
	d := Decision{Done: true, Output: b.first.Output, Fallback: fallback}
	for _, r := range b.voters {
		d.Models = append(d.Models, r.Model)
		d.Versions = append(d.Versions, r.Version)
	}
	if called > 0 {
		d.Confidence = float64(len(b.voters)) / float64(called)
	}
	return d
}

var _ Strategy = (*MajorityVote)(nil)
