package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/esgen-dev/esgen/es"
)

// Error is a failure of the server, or of the connection to it, that no es
// sentinel describes: the server unavailable, a timeout, access denied. It
// keeps the client's description but does not wrap the client's error, so
// that gRPC types never reach callers; branch on Code or Temporary.
type Error struct {
	// Op is what was attempted, such as `append to "order-1"`.
	Op string
	// Code is the client's classification of the failure.
	Code esdb.ErrorCode
	// Message is the client's description.
	Message string
}

func (e *Error) Error() string { return "esdbstore: " + e.Op + ": " + e.Message }

// Temporary reports whether the same call may succeed later: the server
// was unavailable, not the leader, too slow or aborted the request.
func (e *Error) Temporary() bool {
	switch e.Code {
	case esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded, esdb.ErrorCodeNotLeader, esdb.ErrorAborted:
		return true
	}
	return false
}

// failure is what a client error means for es.
type failure int

const (
	failOther failure = iota
	failWrongVersion
	failStreamDeleted
	failNotFound
	failConnectionClosed
	// failPartlyStored is the server's "invalid transaction": the IDs of
	// the batch matched a stored append only in part.
	failPartlyStored
	failTooLarge
)

// classify says what a client error means. The client reports some server
// exceptions only through the gRPC status text, so that is matched too.
func classify(err error) (failure, esdb.ErrorCode) {
	var ee *esdb.Error
	code := esdb.ErrorCodeUnknown
	if errors.As(err, &ee) {
		code = ee.Code()
		switch code {
		case esdb.ErrorCodeWrongExpectedVersion:
			return failWrongVersion, code
		case esdb.ErrorCodeStreamDeleted:
			return failStreamDeleted, code
		case esdb.ErrorCodeResourceNotFound:
			return failNotFound, code
		case esdb.ErrorCodeConnectionClosed:
			return failConnectionClosed, code
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WrongExpectedVersion"), strings.Contains(msg, "wrong expected version"):
		return failWrongVersion, code
	case strings.Contains(msg, "Invalid Transaction"):
		return failPartlyStored, code
	case strings.Contains(msg, "Maximum Append Size"):
		return failTooLarge, code
	}
	return failOther, code
}

// fail maps a client error to the error an es caller branches on, naming op.
// Wrong expected versions are mapped by the callers, who know the
// expectation; here they become an *Error.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	if s.isClosed() || errors.Is(err, es.ErrClosed) {
		return fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	kind, code := classify(err)
	switch kind {
	case failStreamDeleted:
		return fmt.Errorf("%s: %w", op, es.ErrStreamDeleted)
	case failNotFound:
		return fmt.Errorf("%s: %w", op, es.ErrStreamNotFound)
	case failPartlyStored:
		return fmt.Errorf("%s: some of the batch's event IDs are stored already, not all: %w", op, es.ErrDuplicateEventID)
	case failTooLarge:
		return fmt.Errorf("%s: the server refused the batch (%s): %w", op, err.Error(), es.ErrBatchTooLarge)
	}
	return &Error{Op: op, Code: code, Message: err.Error()}
}
