package quality

// ring holds the last cap predictions by request id: a circular array
// whose slots are reused, an index from id to slot, and the classifiers'
// probabilities in one flat buffer (k per slot). All of it is allocated
// once, when the ring is made; recording a prediction allocates nothing.
//
// Nothing in it is a pointer: an id is kept as its 64-bit FNV-1a hash
// (idKey) and a version as its sequence number, so the garbage collector
// does not scan 10,000 slots and index entries per monitored activation
// at every cycle (with strings and *version, a sequential caller of a
// monitored model paid about 15% more per request). Two live ids with
// the same hash (about one chance in 10^11 for a full ring of 10,000)
// would join a label to the wrong prediction.
type ring struct {
	slots []slot
	index map[uint64]int32
	next  int
	n     int
	k     int       // probabilities per slot (0: none kept yet)
	probs []float32 // len(slots)*k
}

type slot struct {
	key   uint64 // idKey of the request id
	ver   uint32 // the version's seq
	value float64
	at    int64 // Unix ns
	cls   int32 // the predicted class (argmax of probabilities), -1 if none
	probs bool  // probs[slot*k:][:k] holds this prediction's probabilities
	used  bool
}

func newRing(n int) *ring {
	return &ring{slots: make([]slot, n), index: make(map[uint64]int32, n)}
}

// idKey is the 64-bit FNV-1a hash of a request id.
func idKey(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// put records a prediction, dropping the oldest when full. A repeated id
// (a retried request) points the index at the newer prediction; the older
// one's slot is reused in its turn. (Not looking the id up first saves a
// third of put's map work: put is on the request path.)
func (r *ring) put(key uint64, ver uint32, value float64, at int64, p []float64) {
	i := r.next
	r.next = (r.next + 1) % len(r.slots)
	if r.slots[i].used {
		r.free(i)
	}
	s := &r.slots[i]
	*s = slot{key: key, ver: ver, value: value, at: at, cls: -1, used: true}
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
	r.index[key] = int32(i)
	r.n++
}

func (r *ring) free(i int) {
	s := &r.slots[i]
	if !s.used {
		return
	}
	if j, ok := r.index[s.key]; ok && int(j) == i {
		delete(r.index, s.key)
	}
	*s = slot{}
	r.n--
}

// take removes and returns the prediction of the id whose key is key.
func (r *ring) take(key uint64) (slot, []float32, bool) {
	i, ok := r.index[key]
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
	delete(r.index, s.key)
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
