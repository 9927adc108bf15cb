package es

import (
	"fmt"
	"math"
)

// ExpectedVersion is the condition an append puts on the stream's current
// version. Use [Any], [NoStream], [StreamExists], or an exact version built
// with [Exact].
type ExpectedVersion int64

const (
	// Any accepts the stream in any state, including not existing.
	Any ExpectedVersion = -1
	// NoStream requires that the stream has no events (or was deleted with
	// reuse allowed). It is the same as Exact(0).
	NoStream ExpectedVersion = 0
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -2
)

// Exact requires the stream's current version to be v. Exact(0) is NoStream.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String describes the expectation.
func (e ExpectedVersion) String() string {
	switch {
	case e == Any:
		return "any"
	case e == NoStream:
		return "no stream"
	case e == StreamExists:
		return "stream exists"
	case e > 0:
		return fmt.Sprintf("version %d", int64(e))
	}
	return fmt.Sprintf("invalid expected version %d", int64(e))
}

// Valid reports whether e is one of the defined modes or an exact version.
func (e ExpectedVersion) Valid() bool { return e >= StreamExists }

// Matches reports whether a stream whose current version is actual (0 for no
// stream) satisfies e. Store adapters use it to check an append.
func (e ExpectedVersion) Matches(actual int64) bool {
	switch e {
	case Any:
		return true
	case StreamExists:
		return actual > 0
	}
	return int64(e) == actual
}

// Direction is the order of a stream read.
type Direction int

const (
	// Forward reads from lower to higher versions.
	Forward Direction = iota
	// Backward reads from higher to lower versions.
	Backward
)

// String returns "forward" or "backward".
func (d Direction) String() string {
	if d == Backward {
		return "backward"
	}
	return "forward"
}

const (
	// StreamStart is the first version of every stream: read forward from
	// here to read a whole stream.
	StreamStart int64 = 1
	// StreamEnd is past the last version of every stream: read backward from
	// here to read a stream from its newest event.
	StreamEnd int64 = math.MaxInt64
)
