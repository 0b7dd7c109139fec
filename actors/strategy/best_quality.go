package strategy

// BestQuality calls every candidate at once and answers with the best
// successful result that arrived by the deadline: by the candidates' manifest
// quality (by=quality, the default), or by the confidence each output states
// (by=confidence; see Confidence). Ties go to the earliest arrival.
//
// It answers early once no outstanding call can beat the best result in hand
// (by quality: the best candidate answered; by confidence: everything
// arrived). With no quality on any candidate it is first-success.
//
// Params:
//   - by: quality (default) or confidence.
type BestQuality struct {
	byConfidence bool
}

// NewBestQuality is the factory of "best-quality".
func NewBestQuality(params map[string]string) (Strategy, error) {
	pr := ReadParams(params)
	by := pr.String("by", "quality")
	if by != "quality" && by != "confidence" {
		pr.Failf("by=%q: want quality or confidence", by)
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return &BestQuality{byConfidence: by == "confidence"}, nil
}

// Name implements Strategy.
func (*BestQuality) Name() string { return NameBestQuality }

// Start implements Strategy.
func (*BestQuality) Start(req *Request, cands []Candidate) Plan {
	return Plan{Launches: launchAll(cands)}
}

// OnEvent implements Strategy.
func (s *BestQuality) OnEvent(ev Event, p *Progress) Decision {
	var best Result
	var bestC Candidate
	bestConf, found := -1.0, false
	for _, r := range p.Successes() {
		c, _ := p.Candidate(r.Model)
		conf, ok := Confidence(r.Output)
		if !ok {
			conf = 0
		}
		better := !found
		if found {
			if s.byConfidence {
				better = conf > bestConf
			} else {
				better = c.Better(bestC)
			}
		}
		if better {
			best, bestC, bestConf, found = r, c, conf, true
		}
	}
	if !found {
		if p.Idle() {
			return failAll(NameBestQuality, p)
		}
		return Wait()
	}
	answer := func() Decision {
		d := Answer(best)
		if s.byConfidence {
			d.Confidence = bestConf
		}
		return d
	}
	if ev.Kind == EventDeadline || p.Idle() {
		return answer()
	}
	if s.byConfidence {
		return Wait()
	}
	for _, c := range p.Calls {
		if !c.Outstanding() {
			continue
		}
		if cand, _ := p.Candidate(c.Model); cand.Better(bestC) {
			return Wait()
		}
	}
	for _, l := range p.Scheduled {
		if cand, _ := p.Candidate(l.Model); cand.Better(bestC) {
			return Wait()
		}
	}
	return answer()
}

var _ Strategy = (*BestQuality)(nil)
