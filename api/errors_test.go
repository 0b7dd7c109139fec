package api

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestCodeOfTwoSentinelsIsFixed: an error wrapping two sentinels gets the
// code of the more specific one, every time (CodeOf used to range over a
// map, so the answer changed from call to call).
func TestCodeOfTwoSentinelsIsFixed(t *testing.T) {
	// most specific first (the order documented on precedence)
	order := []ErrorCode{
		ErrorCode_ERROR_CODE_TOO_LARGE, ErrorCode_ERROR_CODE_BAD_INPUT, ErrorCode_ERROR_CODE_LOAD_FAILED,
		ErrorCode_ERROR_CODE_NOT_FOUND, ErrorCode_ERROR_CODE_OVERLOADED, ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
		ErrorCode_ERROR_CODE_INTERNAL,
	}
	if len(order) != len(sentinels) {
		t.Fatalf("the test lists %d codes, sentinels %d", len(order), len(sentinels))
	}
	for i, outer := range order {
		for j, inner := range order {
			if i == j {
				continue
			}
			err := fmt.Errorf("%w: %w", outer.Sentinel(), inner.Sentinel())
			want := order[min(i, j)]
			for range 64 {
				if got := CodeOf(err); got != want {
					t.Fatalf("CodeOf(%v) = %s, want %s", err, got.Name(), want.Name())
				}
			}
		}
	}
}

func TestCodeOf(t *testing.T) {
	for _, c := range []struct {
		err  error
		want ErrorCode
	}{
		{nil, ErrorCode_ERROR_CODE_UNSPECIFIED},
		{errors.New("x"), ErrorCode_ERROR_CODE_INTERNAL},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED},
		// an invalid id called not_found by a layer above is bad input
		{fmt.Errorf("%w: model %q: %w", ErrNotFound, "A", Errorf(ErrorCode_ERROR_CODE_BAD_INPUT, "invalid model id")), ErrorCode_ERROR_CODE_BAD_INPUT},
		// a missing artifact makes the load fail; the model exists
		{fmt.Errorf("%w: fetch: %w", ErrLoadFailed, ErrNotFound), ErrorCode_ERROR_CODE_LOAD_FAILED},
		{fmt.Errorf("%w: %w", ErrLoadFailed, ErrTooLarge), ErrorCode_ERROR_CODE_TOO_LARGE},
		{(&Error{Code: ErrorCode_ERROR_CODE_OVERLOADED, Message: "busy"}).Err(), ErrorCode_ERROR_CODE_OVERLOADED},
	} {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %q, want %q", c.err, got.Name(), c.want.Name())
		}
	}
}
