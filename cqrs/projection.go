package cqrs

import (
	"context"

	"github.com/esgen-dev/esgen/es"
)

// Projection is a named consumer of the global log that keeps a read model.
// The XxxProjection types esgen generates implement it: Handle decodes the
// event and calls the typed projector method, skipping types the projection
// does not consume.
//
// Handle writes through its sink's handle on the context, such as
// pgsink.Tx(ctx) for Postgres, so that its writes commit with the
// checkpoint.
type Projection interface {
	// Name identifies the projection and its checkpoint.
	Name() string
	// EventTypes are the types it consumes, for the subscription filter.
	EventTypes() []string
	// Handle applies one event to the read model.
	Handle(ctx context.Context, rec es.Event) error
}

// Sink is where a projection's read model and checkpoint live. A sink makes
// a batch's effects and its checkpoint durable together, so that a crash at
// any point neither loses nor doubles an effect: Postgres commits both in one
// transaction; Elasticsearch writes documents with external versions taken
// from the log, so a replayed batch cannot regress them, and stores the
// checkpoint after the bulk request is acknowledged.
type Sink interface {
	// Checkpoint returns the position after which projection resumes; the
	// zero Position when it has none.
	Checkpoint(ctx context.Context, projection string) (es.Position, error)
	// Apply calls handle for each event of batch, in order, with a context
	// that carries the sink's write handle, then records the position of
	// the batch's last event as projection's checkpoint. If Apply returns
	// an error, none of the batch's effects or checkpoint is kept (or, for
	// sinks that cannot roll back, re-applying the batch is harmless).
	//
	// Sinks that can should fence: when the stored checkpoint is no longer
	// before the batch's first event (another runner got there), apply
	// nothing and return an error matching [ErrCheckpointMoved]. When a
	// write fails after handle returned (a queued write, a refused
	// document), return an [*EventError] naming the event that staged it,
	// so that the runner can park that event.
	Apply(ctx context.Context, projection string, batch []es.Event, handle func(ctx context.Context, rec es.Event) error) error
}
