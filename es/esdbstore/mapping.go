package esdbstore

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/esgen-dev/esgen/es"
)

// This file holds the pure translations between es and the client's types;
// they are unit-tested without a server.

// expectedRevision maps an es expectation to the client's. KurrentDB numbers
// events from 0 (revisions) where es numbers them from 1 (versions), so an
// exact version v is revision v-1. Exact(0) is NoStream.
func expectedRevision(e es.ExpectedVersion) esdb.ExpectedRevision {
	switch {
	case e == es.Any:
		return esdb.Any{}
	case e == es.StreamExists:
		return esdb.StreamExists{}
	case e == es.NoStream:
		return esdb.NoStream{}
	}
	return esdb.Revision(uint64(e) - 1)
}

// versionOf returns the es version of the event with a KurrentDB revision.
func versionOf(revision uint64) int64 { return int64(revision) + 1 }

// revisionOf returns the KurrentDB revision of the event with an es
// version; v must be at least 1.
func revisionOf(v int64) uint64 { return uint64(v - 1) }

// noPosition is what the client reports for an event read from a stream by a
// server older than 22.6, which does not send positions with stream reads.
const noPosition = math.MaxUint64

// position maps a KurrentDB $all position to an es position. The missing
// position of old servers maps to the zero position.
func position(p esdb.Position) es.Position {
	if p.Commit == noPosition && p.Prepare == noPosition {
		return es.Position{}
	}
	return es.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// allPosition maps an es position to where a read or subscription of $all
// starts. The zero position is the start of $all.
func allPosition(p es.Position) esdb.AllPosition {
	if p.IsZero() {
		return esdb.Start{}
	}
	return esdb.Position{Commit: p.Commit, Prepare: p.Prepare}
}

// streamFrom maps where an es stream read starts to the client's stream
// position: version v is revision v-1; reading forward from the first
// version (or below) starts at the start, and reading backward from
// es.StreamEnd starts at the end. A backward read from below the first
// version reads nothing and never gets here.
func streamFrom(from int64, dir es.Direction) esdb.StreamPosition {
	switch {
	case dir == es.Backward && from == es.StreamEnd:
		return esdb.End{}
	case dir == es.Forward && from <= es.StreamStart:
		return esdb.Start{}
	}
	return esdb.Revision(revisionOf(from))
}

// isSystemEvent reports whether an event of type typ belongs to KurrentDB
// itself (stream metadata, tombstones, links, statistics...), which es
// readers never see.
func isSystemEvent(typ string) bool { return strings.HasPrefix(typ, "$") }

// eventData maps an es event to append to the client's. A zero ID gets a new
// one; data travels as binary and the metadata as the JSON object of
// es.Metadata.MarshalJSON, whose correlation and causation keys are the
// ones KurrentDB understands.
func eventData(e *es.EventData) esdb.EventData {
	id := e.ID
	if id.IsZero() {
		id = es.NewID()
	}
	var meta []byte
	if !e.Metadata.IsZero() {
		meta = e.Metadata.AppendJSON(nil)
	}
	return esdb.EventData{
		EventID:     uuid.UUID(id),
		EventType:   e.Type,
		ContentType: esdb.ContentTypeBinary,
		Data:        e.Data,
		Metadata:    meta,
	}
}

// event maps an event read from KurrentDB to an es event.
func event(r *esdb.RecordedEvent) (es.Event, error) {
	e := es.Event{
		ID:         es.ID(r.EventID),
		StreamID:   r.StreamID,
		Type:       r.EventType,
		Version:    versionOf(r.EventNumber),
		Position:   position(r.Position),
		Data:       r.Data,
		RecordedAt: r.CreatedDate.UTC(),
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	if len(r.UserMetadata) > 0 {
		if err := e.Metadata.UnmarshalJSON(r.UserMetadata); err != nil {
			return es.Event{}, fmt.Errorf("event %s (version %d of %q): %w", e.ID, e.Version, e.StreamID, err)
		}
	}
	return e, nil
}

// subscriptionFilter maps an es filter to a server-side filter of $all. The
// server filters on stream names or on event types, not both: with stream
// prefixes it filters on streams, and the event types (and the exclusion of
// system events) are checked again by the caller with es.Filter.Match.
func subscriptionFilter(f es.Filter) *esdb.SubscriptionFilter {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: f.StreamPrefixes}
	case len(f.EventTypes) > 0:
		quoted := make([]string, len(f.EventTypes))
		for i, t := range f.EventTypes {
			quoted[i] = regexp.QuoteMeta(t)
		}
		// Anchored, so that "Paid" does not match "Unpaid"; the quoting is
		// also valid in the server's .NET regular expressions.
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^(?:" + strings.Join(quoted, "|") + ")$"}
	}
	return esdb.ExcludeSystemEventsFilter()
}

// wrongVersionPatterns find the stream's current revision in the two forms
// a wrong expected version reaches the client: the append response, which
// the client renders as "expecting 'E' but got 'A'", and the server's
// exception on other calls, "... Actual version: A".
var (
	gotRevision    = regexp.MustCompile(`but got '(no_stream|-?\d+)'`)
	actualRevision = regexp.MustCompile(`Actual version: (-?\d+)`)
)

// actualVersion returns the es version of the stream reported by a wrong
// expected version error message: 0 for no stream. ok is false when the
// message carries no version.
func actualVersion(msg string) (version int64, ok bool) {
	var s string
	if m := gotRevision.FindStringSubmatch(msg); m != nil {
		s = m[1]
	} else if m := actualRevision.FindStringSubmatch(msg); m != nil {
		s = m[1]
	} else {
		return 0, false
	}
	if s == "no_stream" {
		return 0, true
	}
	r, err := strconv.ParseInt(s, 10, 64)
	if err != nil || r < -1 {
		return 0, false
	}
	// The revision of the last event; -1 is no stream.
	return r + 1, true
}
