package es_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func TestConcurrencyError(t *testing.T) {
	var err error = &es.ConcurrencyError{Stream: "order-1", Expected: es.Exact(3), Actual: 5}
	wrapped := fmt.Errorf("handle PlaceOrder: %w", err)
	if !errors.Is(wrapped, es.ErrConcurrency) {
		t.Fatal("a wrapped ConcurrencyError does not match ErrConcurrency")
	}
	var ce *es.ConcurrencyError
	if !errors.As(wrapped, &ce) || ce.Stream != "order-1" || ce.Expected != es.Exact(3) || ce.Actual != 5 {
		t.Fatalf("errors.As gave %+v", ce)
	}
	if want := `append to "order-1": expected version 3, stream is at version 5`; err.Error() != want {
		t.Fatalf("Error() = %q; want %q", err.Error(), want)
	}
	for _, other := range []error{es.ErrStreamNotFound, es.ErrStreamDeleted, es.ErrDuplicateEventID, es.ErrInvalidArgument} {
		if errors.Is(err, other) {
			t.Errorf("ConcurrencyError matches %v", other)
		}
	}
}

func TestErrBatchTooLarge_IsInvalidArgument(t *testing.T) {
	if !errors.Is(es.ErrBatchTooLarge, es.ErrInvalidArgument) {
		t.Fatal("ErrBatchTooLarge does not match ErrInvalidArgument")
	}
	if errors.Is(es.ErrInvalidArgument, es.ErrBatchTooLarge) {
		t.Fatal("ErrInvalidArgument matches ErrBatchTooLarge")
	}
}
