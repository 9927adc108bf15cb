package es

import (
	"fmt"
	"time"
)

// Event is an event as recorded in the log.
type Event struct {
	// ID identifies the event across the whole store.
	ID ID
	// StreamID names the stream the event belongs to.
	StreamID string
	// Type is the protobuf full name of the event message, such as
	// "shop.order.v1.OrderPlaced"; never a Go type name.
	Type string
	// Version is the event's 1-based number within its stream.
	Version int64
	// Position is the event's place in the global log.
	Position Position
	// Data is the protobuf encoding of the event message. It is never nil
	// (an event message with no fields set encodes to an empty slice).
	Data []byte
	// Metadata travels with the event: correlation, causation, tenant, user,
	// trace context and free key-values.
	Metadata Metadata
	// RecordedAt is when the store recorded the event, in UTC.
	RecordedAt time.Time
}

// EventData is an event to append: everything the store does not assign.
type EventData struct {
	// ID identifies the event. Leave it zero to have the store assign one;
	// set it to make retries of the same append idempotent.
	ID ID
	// Type is the protobuf full name of the event message. Required.
	Type string
	// Data is the protobuf encoding of the event message. Required: nil is
	// rejected, because proto.Marshal never returns nil for a valid message.
	Data []byte
	// Metadata travels with the event.
	Metadata Metadata
}

// Metadata is the context that travels with an event. The named fields are
// the ones the framework itself reads and propagates; Extra holds anything
// else. Stores persist it as a flat JSON object of strings (see
// [Metadata.MarshalJSON]), using the key names KurrentDB understands for
// correlation and causation.
type Metadata struct {
	// CorrelationID ties together every event caused, directly or not, by
	// one initial request.
	CorrelationID string
	// CausationID is the ID of the command or event that caused this event.
	CausationID string
	// TenantID names the tenant in a multi-tenant app.
	TenantID string
	// UserID names the user on whose behalf the event was recorded.
	UserID string
	// TraceParent and TraceState are the W3C trace context of the request
	// that produced the event.
	TraceParent string
	TraceState  string
	// Extra holds free key-values. Keys must not collide with the JSON keys
	// of the named fields.
	Extra map[string]string
}

// IsZero reports whether no field of m is set.
func (m Metadata) IsZero() bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.TenantID == "" &&
		m.UserID == "" && m.TraceParent == "" && m.TraceState == "" && len(m.Extra) == 0
}

// Position is a point in the global log. Positions are totally ordered by
// (Commit, Prepare). The zero Position is before every event, so reading
// "after the zero position" reads the whole log.
//
// What the two numbers mean belongs to the store: in Postgres, Commit is the
// writing transaction's ID and Prepare the event's sequence number; in
// KurrentDB they are the $all commit and prepare positions; stores that
// assign positions at commit time use the same sequence number for both.
// Persist both numbers when you checkpoint.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// Before reports whether p is strictly before q.
func (p Position) Before(q Position) bool { return p.Compare(q) < 0 }

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p == Position{} }

// String returns "commit/prepare".
func (p Position) String() string { return fmt.Sprintf("%d/%d", p.Commit, p.Prepare) }
