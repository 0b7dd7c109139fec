package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	min, max := 5*time.Millisecond, 500*time.Millisecond
	for n := range 100 {
		full := max
		if n < 7 {
			full = min << n
		}
		for range 50 {
			if d := Delay(min, max, n); d < full/2 || d > full {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, d, full/2, full)
			}
		}
	}
	if d := Delay(0, 0, 3); d != 0 {
		t.Fatalf("zero backoff: %v", d)
	}
}

func TestBackoffResetAndWait(t *testing.T) {
	b := New(time.Millisecond, 8*time.Millisecond)
	for range 5 {
		b.Next()
	}
	if d := b.Next(); d < 4*time.Millisecond {
		t.Fatalf("after 5 tries %v, want the cap's half at least", d)
	}
	b.Reset()
	if d := b.Next(); d > time.Millisecond {
		t.Fatalf("after reset %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if New(time.Hour, time.Hour).Wait(ctx) {
		t.Fatal("Wait ignored a done context")
	}
	if !New(time.Microsecond, time.Microsecond).Wait(context.Background()) {
		t.Fatal("Wait failed")
	}
}
