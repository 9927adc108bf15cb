// Package sqlitesink is the [cqrs.Sink] of the embedded store: read models,
// projection checkpoints and parked events live in the same SQLite file as
// the event log ([sqlitestore.Store]), and a batch's read-model writes and its
// checkpoint commit in one transaction, so that a crash at any point neither
// loses nor doubles an effect.
//
//	store, err := sqlitestore.Open(ctx, "app.db")
//	...
//	sink, err := sqlitesink.New(store)
//	...
//	runner, err := cqrs.NewRunner(store, sink, projection)
//
// [Sink.Apply] opens one write transaction per batch on the store's single
// writer connection ([sqlitestore.Store.DB]), calls the projection's handler
// for each event with a context that carries it ([Tx]), then writes the
// checkpoint and commits. Any error rolls the whole batch back.
//
// The checkpoint write is fenced: Apply first checks, under the file's write
// lock, that the stored checkpoint is still before the batch's first event.
// A runner that applies a batch another runner (or process) already applied
// gets [cqrs.ErrCheckpointMoved] before its handler runs.
//
// The tables projection_checkpoints and projection_parked are created by
// [New] through [sqlitestore.Store.Migrate], as the component "sqlitesink".
// The read-model tables are the app's: create them with its own migrations
// (Store.Migrate under another component name).
//
// sqlitesink owns checkpoints, parked events and the write path. It does not
// own the read model's schema, the event log, or the file.
package sqlitesink
