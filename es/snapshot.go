package es

import (
	"context"
	"errors"
	"time"
)

// ErrSnapshotNotFound is returned by [SnapshotStore.LoadSnapshot] when the
// stream has no snapshot.
var ErrSnapshotNotFound = errors.New("es: snapshot not found")

// Snapshot is an aggregate's state at one version of its stream.
type Snapshot struct {
	// Stream is the aggregate's stream.
	Stream string
	// Version is the stream version the state includes.
	Version int64
	// Fingerprint identifies the schema of the state message (the generated
	// XxxStateFingerprint). A snapshot whose fingerprint differs from the
	// current one is never decoded.
	Fingerprint string
	// Data is the protobuf encoding of the state message.
	Data []byte
	// RecordedAt is when the snapshot was saved.
	RecordedAt time.Time
}

// SnapshotStore keeps the latest snapshot of each stream. Implementations
// are safe for concurrent use. Saving a snapshot older than the one stored
// keeps the stored one.
type SnapshotStore interface {
	// LoadSnapshot returns the stream's latest snapshot, or
	// ErrSnapshotNotFound.
	LoadSnapshot(ctx context.Context, stream string) (Snapshot, error)
	// SaveSnapshot stores s unless a snapshot at a later version is
	// already stored.
	SaveSnapshot(ctx context.Context, s Snapshot) error
}

// EventFinder is implemented by stores that can find an event by its ID.
// The repository uses it to answer a re-sent command with its original
// result.
type EventFinder interface {
	// FindEvent returns the event with the given ID, or an error matching
	// ErrEventNotFound.
	FindEvent(ctx context.Context, id ID) (Event, error)
}

// ErrEventNotFound is returned by [EventFinder.FindEvent].
var ErrEventNotFound = errors.New("es: event not found")

// StreamLoader is implemented by stores that keep snapshots beside the log
// and can read a stream's latest snapshot and the events after it in one
// round trip. The repository uses it when the store is also its snapshot
// store.
type StreamLoader interface {
	// LoadStream returns the stream's latest snapshot (when withSnapshot
	// and there is one from the stream's current life) and the events
	// after it, or all events. A missing or deleted stream has no snapshot
	// and no events.
	LoadStream(ctx context.Context, stream string, withSnapshot bool) (LoadedStream, error)
}

// LoadedStream is what [StreamLoader.LoadStream] read.
type LoadedStream struct {
	Snapshot    Snapshot
	HasSnapshot bool
	Events      []Event
}
