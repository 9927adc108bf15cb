// Package pgsink is the PostgreSQL [cqrs.Sink]: a projection's read-model
// writes and its checkpoint commit in one transaction, so that a crash at
// any point neither loses nor doubles an effect.
//
// [Sink.Apply] opens one transaction per batch. The projection's handler
// writes through the context it is given: [Tx] returns the transaction, and
// [Table.Upsert], [Table.Delete] and [Exec] queue statements that are sent
// together, in one pipelined round trip ([pgx.Batch]), before the checkpoint
// is written. Queued statements run in the order they were queued, and [Tx]
// sends the queue first, so a handler that mixes both sees its own writes.
//
// The checkpoint update is fenced: it succeeds only if the stored checkpoint
// is still before the batch's first event. A runner that lost its lease
// without noticing, and applies a batch another runner already applied,
// gets [cqrs.ErrCheckpointMoved] and its transaction rolls back.
//
// [Sink.Locker] returns a [cqrs.Locker] on Postgres advisory locks, so that
// only one copy of an app runs a projection (or a partition of one) at a
// time.
//
// For tools, the sink keeps the runners' status (projection_status, through
// [cqrs.StatusRecorder]) and a queue of requests (projection_requests,
// through [cqrs.Controller]): [Sink.Inspect] shows checkpoint, head, lag and
// state; [Sink.Request] asks for a reset, replay or rebuild. [Sink.Rebuild]
// builds a read model blue/green beside the live one and swaps the tables
// in one transaction; [Sink.ServeRebuilds] carries out rebuild requests.
//
// The tables (projection_checkpoints, projection_parked, projection_status,
// projection_requests) live in the same Postgres schema as the event store
// ("esgen" unless [WithSchema] says otherwise) and are created by [Migrate]
// as the migration set "pgsink". The read-model tables are the app's:
// create them with your own migrations.
//
// pgsink owns checkpoints, parked events, leases, status, requests and the
// write path. It does not own the read model's schema or the event store
// (it reads pgstore's events table for lag and rebuild catch-up, so it must
// share the store's schema).
package pgsink
