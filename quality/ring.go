package quality

// ring holds the last cap predictions by request id: a circular array
// whose slots are reused, an index from id to slot, and the classifiers'
// probabilities in one flat buffer (k per slot). All of it is allocated
// once, when the ring is made; recording a prediction allocates nothing.
type ring struct {
	slots []slot
	index map[string]int32
	next  int
	n     int
	k     int       // probabilities per slot (0: none kept yet)
	probs []float32 // len(slots)*k
}

type slot struct {
	id      string
	version *version
	value   float64
	at      int64 // Unix ns
	cls     int32 // the predicted class (argmax of probabilities), -1 if none
	probs   bool  // probs[slot*k:][:k] holds this prediction's probabilities
	used    bool
}

func newRing(n int) *ring {
	return &ring{slots: make([]slot, n), index: make(map[string]int32, n)}
}

// put records a prediction, dropping the oldest when full. A repeated id
// (a retried request) points the index at the newer prediction; the older
// one's slot is reused in its turn. (Not looking the id up first saves a
// third of put's map work: put is on the request path.)
func (r *ring) put(id string, v *version, value float64, at int64, p []float64) {
	i := r.next
	r.next = (r.next + 1) % len(r.slots)
	if r.slots[i].used {
		r.free(i)
	}
	s := &r.slots[i]
	*s = slot{id: id, version: v, value: value, at: at, cls: -1, used: true}
	if len(p) > 0 {
		s.cls = int32(argmax(p))
		if len(p) <= MaxClasses {
			if r.k != len(p) {
				// a version with another number of classes: the
				// buffer is remade (once per such change) and the
				// older predictions lose their probabilities
				r.k = len(p)
				r.probs = make([]float32, len(r.slots)*r.k)
				for j := range r.slots {
					r.slots[j].probs = false
				}
			}
			dst := r.probs[i*r.k : (i+1)*r.k]
			for j, x := range p {
				dst[j] = float32(x)
			}
			s.probs = true
		}
	}
	r.index[id] = int32(i)
	r.n++
}

func (r *ring) free(i int) {
	s := &r.slots[i]
	if !s.used {
		return
	}
	if j, ok := r.index[s.id]; ok && int(j) == i {
		delete(r.index, s.id)
	}
	*s = slot{}
	r.n--
}

// take removes and returns id's prediction.
func (r *ring) take(id string) (slot, []float32, bool) {
	i, ok := r.index[id]
	if !ok {
		return slot{}, nil, false
	}
	s := r.slots[i]
	var p []float32
	if s.probs {
		p = r.probs[int(i)*r.k : (int(i)+1)*r.k]
	}
	// the slot's probabilities stay in the buffer until it is reused; the
	// caller reads them before the next put
	delete(r.index, s.id)
	r.slots[i] = slot{}
	r.n--
	return s, p, true
}

func argmax(p []float64) int {
	best := 0
	for i, x := range p {
		if x > p[best] {
			best = i
		}
	}
	return best
}
