package es

import (
	"context"
	"iter"
	"strings"
)

// Store is an event log. Implementations are safe for concurrent use.
//
// Every method that can block takes a context, and a cancelled context
// stops the call. An Append that fails because of its context or its
// connection may still have been committed (the commit can land after the
// client stopped waiting): re-send the same events with the same IDs to
// settle it, since the retry is idempotent. An append rejected before it
// reached storage (invalid input, an already-cancelled context) wrote
// nothing.
type Store interface {
	// Append adds events to the end of stream, all or none, if the stream's
	// current version satisfies expected. Events with a zero ID get a new ID.
	//
	// It returns a [*ConcurrencyError] (matching [ErrConcurrency]) when the
	// expectation fails, [ErrStreamDeleted] when the stream was deleted
	// without reuse, [ErrDuplicateEventID] when an ID is already stored for
	// different content, and an error matching [ErrInvalidArgument] for
	// malformed input. Re-sending a batch whose IDs are all stored with the
	// same stream, type and data succeeds, writes nothing and returns the
	// original result. Appending no events checks expected and writes nothing.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream reads stream from version from in direction dir, at most
	// limit events (limit <= 0: no limit). Read forward from [StreamStart]
	// or backward from [StreamEnd] for the whole stream. A stream with no
	// events, or a deleted one, yields [ErrStreamNotFound].
	ReadStream(ctx context.Context, stream string, from int64, dir Direction, limit int) iter.Seq2[Event, error]

	// ReadAll reads the global log in position order, starting with the first
	// event after position after, at most limit events (limit <= 0: no
	// limit). It yields only events that can no longer be preceded by a
	// later commit, so a reader that resumes after the last position it saw
	// never misses an event.
	ReadAll(ctx context.Context, after Position, limit int) iter.Seq2[Event, error]

	// Subscribe yields the events after position after that match filter,
	// first those already stored, then new ones as they are committed, with
	// nothing skipped or repeated at the hand-over. It runs until ctx is done
	// (then yields ctx's error) or the caller stops iterating.
	Subscribe(ctx context.Context, after Position, filter Filter) iter.Seq2[Event, error]

	// Head returns the position of the newest event visible to ReadAll, or
	// the zero Position when the log is empty.
	Head(ctx context.Context) (Position, error)

	// DeleteStream deletes stream if its version satisfies expected. The
	// stream then reads as not found. Without [AllowReuse] its name is
	// retired and appends return [ErrStreamDeleted]; with it, the next append
	// expecting [NoStream] or [Any] starts the stream again, continuing the
	// version numbers. Events stay in the global log.
	DeleteStream(ctx context.Context, stream string, expected ExpectedVersion, opts ...DeleteOption) error

	// TruncateBefore removes stream's events with versions below before, for
	// retention and erasure. They disappear from stream reads and from the
	// global log; the stream's version does not change.
	TruncateBefore(ctx context.Context, stream string, before int64) error
}

// AppendResult describes a successful append.
type AppendResult struct {
	// Version is the stream's version after the append: the version of the
	// last event appended (or the current version, for an empty append).
	Version int64
	// Position is the global position of the last event appended; zero for an
	// empty append.
	Position Position
}

// DeleteOption configures [Store.DeleteStream].
type DeleteOption func(*DeleteOptions)

// DeleteOptions is the resolved form of a set of [DeleteOption]s. Adapters
// read it with [ApplyDeleteOptions].
type DeleteOptions struct {
	// AllowReuse lets a later append start the stream again.
	AllowReuse bool
}

// AllowReuse lets a later append start a deleted stream again, as a soft
// delete in KurrentDB does. Without it the stream's name is retired.
func AllowReuse() DeleteOption { return func(o *DeleteOptions) { o.AllowReuse = true } }

// ApplyDeleteOptions resolves opts.
func ApplyDeleteOptions(opts []DeleteOption) DeleteOptions {
	var o DeleteOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Filter selects events for a subscription. The zero Filter selects every
// event. An event matches when its stream has one of StreamPrefixes (or there
// are none) and its type is one of EventTypes (or there are none).
type Filter struct {
	StreamPrefixes []string
	EventTypes     []string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Event) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if strings.HasPrefix(e.StreamID, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.EventTypes) > 0 {
		for _, t := range f.EventTypes {
			if e.Type == t {
				return true
			}
		}
		return false
	}
	return true
}
