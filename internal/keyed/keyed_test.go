package keyed

import (
	"sync"
	"testing"
)

func TestTable(t *testing.T) {
	var tb Table[string]
	var wg sync.WaitGroup
	keys := make([]uint32, 1000)
	for i := range keys {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			keys[i] = tb.Add("v")
		}(i)
	}
	wg.Wait()
	seen := map[uint32]bool{}
	for _, k := range keys {
		if k == 0 || seen[k] {
			t.Fatalf("key %d zero or handed out twice", k)
		}
		seen[k] = true
	}
	if tb.Len() != 1000 {
		t.Fatalf("len %d", tb.Len())
	}
	n := 0
	tb.Each(func(string) { n++ })
	if n != 1000 {
		t.Fatalf("each saw %d", n)
	}
	for _, k := range keys[:500] {
		tb.Remove(k)
	}
	if _, ok := tb.Get(keys[0]); ok || tb.Len() != 500 {
		t.Fatal("remove")
	}
	if v, ok := tb.Get(keys[999]); !ok || v != "v" {
		t.Fatal("get")
	}
}
