package modelhost

import "container/list"

// Policy chooses which unpinned model the cache evicts next. The cache
// tells it which keys are evictable (loaded and unpinned) and asks it for a
// victim when a load needs room; pinned and loading models are never given
// to it. It is called with the cache's lock held, from one goroutine at a
// time, so implementations need no locking and must not call back into the
// cache. GDSF (NewGDSF) is the default; LRU (NewLRU) is the simple
// alternative. Access feeds frequency counts, Add gives the size.
type Policy interface {
	// Access records a use of key (every Acquire: hit or load).
	Access(key string)
	// Add makes key evictable; bytes is the model's charged size.
	Add(key string, bytes int64)
	// Remove makes key not evictable (pinned again, evicted or closed).
	// Removing an unknown key is a no-op.
	Remove(key string)
	// Victim returns the evictable key to evict next, without removing it.
	Victim() (key string, ok bool)
}

// NewLRU returns the least-recently-used policy: the victim is the model
// that became unpinned longest ago.
func NewLRU() Policy {
	return &lru{order: list.New(), elems: make(map[string]*list.Element)}
}

type lru struct {
	order *list.List // front: most recently released
	elems map[string]*list.Element
}

func (l *lru) Access(string) {}

func (l *lru) Add(key string, _ int64) {
	if el, ok := l.elems[key]; ok {
		l.order.MoveToFront(el)
		return
	}
	l.elems[key] = l.order.PushFront(key)
}

func (l *lru) Remove(key string) {
	if el, ok := l.elems[key]; ok {
		l.order.Remove(el)
		delete(l.elems, key)
	}
}

func (l *lru) Victim() (string, bool) {
	el := l.order.Back()
	if el == nil {
		return "", false
	}
	return el.Value.(string), true
}

var _ Policy = (*lru)(nil)
