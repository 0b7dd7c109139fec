package strategy

// FirstSuccess calls every candidate at once and answers with the first
// success; it fails only when every call failed. It takes no params.
type FirstSuccess struct{}

// NewFirstSuccess is the factory of "first-success".
func NewFirstSuccess(params map[string]string) (Strategy, error) {
	if err := ReadParams(params).Err(); err != nil {
		return nil, err
	}
	return &FirstSuccess{}, nil
}

// Name implements Strategy.
func (*FirstSuccess) Name() string { return NameFirstSuccess }

// Start implements Strategy.
func (*FirstSuccess) Start(req *Request, cands []Candidate) Plan {
	return Plan{Launches: launchAll(cands)}
}

// OnEvent implements Strategy.
func (*FirstSuccess) OnEvent(ev Event, p *Progress) Decision {
	if ev.Kind == EventResult && ev.Result.OK() {
		return Answer(ev.Result)
	}
	if p.Idle() {
		return failAll(NameFirstSuccess, p)
	}
	return Wait()
}

var _ Strategy = (*FirstSuccess)(nil)
