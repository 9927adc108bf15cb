// Package sqlitestore is an [es.Store] in one SQLite file: the zero-setup
// default for development, tests and single-node tools. It uses
// modernc.org/sqlite, a pure-Go SQLite, so it needs no cgo.
//
//	store, err := sqlitestore.Open(ctx, "app.db")
//	if err != nil { ... }
//	defer store.Close()
//
// # What it owns
//
// The package owns the file: it creates it, marks it as esgen's (in the
// SQLite header's application ID), switches it to WAL mode and applies
// numbered, append-only migrations recorded in the table esgen_migrations.
// The store keeps aggregate snapshots in the file too ([es.SnapshotStore],
// [es.StreamLoader]; deleting a stream drops its snapshot). Other components
// that keep tables in the same file (projection checkpoints and read models,
// see cqrs/sqlitesink) share the store's connections through [Store.DB] and
// [Store.ReadDB] and run their own migrations with [Store.Migrate]. Open
// refuses files it does not own: anything that is not an SQLite database,
// and SQLite databases of other applications, are left untouched.
//
// A cancelled context stops a call before it starts a statement; a statement
// that has started runs to completion (milliseconds, or at most the busy
// timeout on a locked file), because the driver cannot cancel one safely.
//
// # Guarantees
//
// It implements the whole contract of [es.Store] and passes the conformance
// suite in es/estest.
//
//   - Appends go through one writer connection, in a transaction that takes
//     SQLite's write lock before its checks (BEGIN IMMEDIATE) and assigns
//     positions inside it. The global order is therefore commit order, with
//     no gaps for a reader to wait for: Position{Commit: n, Prepare: n} for
//     the n-th event ever written. Positions are never reused, also after
//     TruncateBefore removes the newest events.
//   - Several Stores, in one process or several, may open the same file:
//     SQLite serialises their writes, and [Store.Subscribe] notices the
//     others' appends by polling (every [DefaultPollInterval] unless
//     configured), while appends through the same Store wake its
//     subscriptions at once.
//   - An append that returned success is on disk (PRAGMA synchronous=FULL),
//     unless [WithRelaxedSync] was given.
//   - [Store.TruncateBefore] deletes the rows and overwrites their content
//     (PRAGMA secure_delete), for erasure.
//   - [Store.FindEvent] finds an event by ID ([es.EventFinder]), so the
//     repository can answer a re-sent command with its original result.
//
// # Limits
//
// SQLite has one writer at a time, per file: appends from many goroutines
// queue for it. Reads run in parallel on a pool of read connections. Network
// file systems are not supported: SQLite's locking, and WAL mode, need a
// local disk.
package sqlitestore
