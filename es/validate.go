package es

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits bounds what one append may carry. Adapters choose their own and
// check them with [ValidateAppend].
type Limits struct {
	// MaxEvents is the most events one append may carry.
	MaxEvents int
	// MaxBytes is the most bytes of event data and metadata one append may
	// carry.
	MaxBytes int
}

// DefaultLimits are the limits of the adapters in this module unless
// configured otherwise: 10,000 events or 64 MiB per append.
var DefaultLimits = Limits{MaxEvents: 10_000, MaxBytes: 64 << 20}

// MaxStreamIDLength is the longest stream ID, in bytes, any adapter accepts.
const MaxStreamIDLength = 1024

// ValidateStreamID checks that stream is a usable stream ID: not empty, valid
// UTF-8, without NUL bytes, at most [MaxStreamIDLength] bytes.
func ValidateStreamID(stream string) error {
	switch {
	case stream == "":
		return invalid("stream ID is empty")
	case len(stream) > MaxStreamIDLength:
		return invalid("stream ID %.40q... is %d bytes, longer than the limit of %d", stream, len(stream), MaxStreamIDLength)
	case !utf8.ValidString(stream):
		return invalid("stream ID %q is not valid UTF-8", stream)
	case strings.IndexByte(stream, 0) >= 0:
		return invalid("stream ID %q contains a NUL byte", stream)
	}
	return nil
}

// ValidateAppend checks an append's arguments against the contract of
// [Store.Append] and lim, so that every adapter rejects the same input with
// the same message before touching storage.
func ValidateAppend(stream string, expected ExpectedVersion, events []EventData, lim Limits) error {
	if err := ValidateStreamID(stream); err != nil {
		return err
	}
	if !expected.Valid() {
		return invalid("append to %q: %s", stream, expected)
	}
	if lim.MaxEvents > 0 && len(events) > lim.MaxEvents {
		return wrapTooLarge("append to %q: %d events, more than the limit of %d per append", stream, len(events), lim.MaxEvents)
	}
	size := 0
	var seen map[ID]int
	for i := range events {
		e := &events[i]
		switch {
		case e.Type == "":
			return invalid("append to %q: event %d has an empty type", stream, i)
		case !utf8.ValidString(e.Type) || strings.IndexByte(e.Type, 0) >= 0:
			return invalid("append to %q: event %d has type %q, which is not valid UTF-8 text", stream, i, e.Type)
		case e.Data == nil:
			return invalid("append to %q: event %d (%s) has nil data; an event message with no fields encodes to an empty, non-nil slice", stream, i, e.Type)
		}
		if err := e.Metadata.validate(); err != nil {
			return invalid("append to %q: event %d (%s): %v", stream, i, e.Type, err)
		}
		size += len(e.Data) + e.Metadata.size()
		if e.ID.IsZero() {
			continue
		}
		if j, dup := seen[e.ID]; dup {
			return invalid("append to %q: events %d and %d share the ID %s", stream, j, i, e.ID)
		}
		if seen == nil {
			seen = make(map[ID]int, len(events))
		}
		seen[e.ID] = i
	}
	if lim.MaxBytes > 0 && size > lim.MaxBytes {
		return wrapTooLarge("append to %q: %d bytes of data and metadata, more than the limit of %d per append", stream, size, lim.MaxBytes)
	}
	return nil
}

func wrapTooLarge(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrBatchTooLarge)...)
}
