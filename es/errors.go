package es

import (
	"errors"
	"fmt"
)

var (
	// ErrConcurrency is matched by every [*ConcurrencyError]: the stream was
	// not at the version the append expected.
	ErrConcurrency = errors.New("es: wrong expected version")
	// ErrStreamNotFound is returned by stream reads of a stream that has no
	// events, or that was deleted.
	ErrStreamNotFound = errors.New("es: stream not found")
	// ErrStreamDeleted is returned by an append to a stream that was deleted
	// without allowing its name to be reused.
	ErrStreamDeleted = errors.New("es: stream deleted")
	// ErrDuplicateEventID is returned by an append that reuses a stored event
	// ID for a different event (another stream, type or payload), or whose
	// batch is only partly stored already.
	ErrDuplicateEventID = errors.New("es: event ID already used by a different event")
	// ErrInvalidArgument is matched by every error about malformed input:
	// an empty stream ID or event type, nil data, an invalid expected version.
	ErrInvalidArgument = errors.New("es: invalid argument")
	// ErrBatchTooLarge is returned by an append of more events, or more
	// bytes, than the store accepts in one batch. It also matches
	// [ErrInvalidArgument].
	ErrBatchTooLarge = fmt.Errorf("%w: batch too large", ErrInvalidArgument)
	// ErrClosed is returned by calls on a store that was closed.
	ErrClosed = errors.New("es: store closed")
)

// ConcurrencyError reports an append whose expected version did not match the
// stream. It matches [ErrConcurrency] with [errors.Is].
type ConcurrencyError struct {
	// Stream is the stream that was appended to.
	Stream string
	// Expected is the expectation that failed.
	Expected ExpectedVersion
	// Actual is the stream's version when the append was checked: 0 when the
	// stream has no events or was deleted.
	Actual int64
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("append to %q: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// invalid builds an error that matches ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidArgument)
}
