package strategy

import (
	"testing"
)

// BenchmarkSession is the collector's own cost per speculative request
// (without the network): a Session of a built-in from New to its answer,
// with two results.
func BenchmarkSession(b *testing.B) {
	cs := []Candidate{cand("a", ms(10), ms(15)), cand("b", ms(2), ms(3))}
	out := []byte(`{"prediction": 0.7, "confidence": 0.9}`)
	for _, name := range []string{NameFirstSuccess, NameHedged, NameDeadlineFallback, NameMajorityVote, NameCascade} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				st, err := New(name, nil)
				if err != nil {
					b.Fatal(err)
				}
				se := NewSession(st, &Request{Deadline: t0.Add(ms(50))}, cs)
				se.Start(t0)
				se.OnResult(t0.Add(ms(2)), Result{Model: "b", Version: "1", Output: out})
				se.OnTimer(t0.Add(ms(15)))
				se.OnResult(t0.Add(ms(16)), Result{Model: "a", Version: "1", Output: out})
				if !se.Done() {
					se.OnDeadline(t0.Add(ms(50)))
				}
				if se.Response() == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
