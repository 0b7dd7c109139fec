// Package keyed is a sharded map from uint32 keys, handed out by the map,
// to values: how the SDK's reply process and the collectors find the
// request an answer belongs to from the answer's PID.RequestId.
package keyed

import (
	"sync"
	"sync/atomic"
)

const shards = 64

// Table maps keys it hands out to values. The zero value is ready to use;
// it is safe for concurrent use.
type Table[T any] struct {
	seq    atomic.Uint32
	shards [shards]struct {
		mu sync.Mutex
		m  map[uint32]T
	}
}

// Add stores v under a new non-zero key and returns the key.
func (t *Table[T]) Add(v T) uint32 {
	return t.AddWith(func(uint32) T { return v })
}

// AddWith stores make(k) under a new non-zero key k and returns k. make
// runs before the value is visible to Get, Each and Snapshot (under the
// shard's lock), so a value may carry its own key without a data race.
func (t *Table[T]) AddWith(make func(k uint32) T) uint32 {
	for {
		k := t.seq.Add(1)
		if k == 0 {
			continue
		}
		sh := &t.shards[k%shards]
		sh.mu.Lock()
		if sh.m == nil {
			sh.m = map[uint32]T{}
		}
		if _, taken := sh.m[k]; taken { // wrapped around onto a live key
			sh.mu.Unlock()
			continue
		}
		sh.m[k] = make(k)
		sh.mu.Unlock()
		return k
	}
}

// Get returns the value of k.
func (t *Table[T]) Get(k uint32) (T, bool) {
	sh := &t.shards[k%shards]
	sh.mu.Lock()
	v, ok := sh.m[k]
	sh.mu.Unlock()
	return v, ok
}

// Remove deletes k.
func (t *Table[T]) Remove(k uint32) {
	sh := &t.shards[k%shards]
	sh.mu.Lock()
	delete(sh.m, k)
	sh.mu.Unlock()
}

// Snapshot appends every value to buf and returns it.
func (t *Table[T]) Snapshot(buf []T) []T {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, v := range sh.m {
			buf = append(buf, v)
		}
		sh.mu.Unlock()
	}
	return buf
}

// Each calls f on a snapshot of the values (f may call Remove).
func (t *Table[T]) Each(f func(T)) {
	for _, v := range t.Snapshot(nil) {
		f(v)
	}
}

// Len is the number of values.
func (t *Table[T]) Len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
