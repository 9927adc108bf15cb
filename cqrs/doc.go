// Package cqrs is esgen's application layer around the event log.
//
// The command side: a [Bus] routes each command to the repository of the
// aggregate that handles it ([Register]), through middleware for logging,
// validation, metadata and tracing, and gives every command correlation and
// causation IDs.
//
// The read side: a [Runner] feeds a [Projection] from the store's gap-free
// subscription into a [Sink] in batches, with the projection's checkpoint
// kept by the sink beside the read model, retries with backoff, parking of
// events that keep failing, a lease so that copies of an app never run a
// projection at once ([Locker]), status reports and operator requests
// ([StatusRecorder], [Controller]). The sinks live beside this package:
// cqrs/pgsink (Postgres), cqrs/sqlitesink (the embedded SQLite file) and
// cqrs/essink (Elasticsearch).
//
// The package owns routing, batching and the runner's failure handling. It
// does not own storage or aggregates: those are es.Store, es.Repository and
// the sinks.
package cqrs
