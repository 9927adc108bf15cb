// Package pgstore is the PostgreSQL [es.Store], on pgx/v5.
//
// Create the tables with [Migrate] (or open with [Open], which migrates),
// then use the [Store] like any es.Store. Tables live in one Postgres schema,
// "esgen" unless [WithSchema] says otherwise, so several apps can share a
// database.
//
// # Appends
//
// An append is one SQL statement and one round trip whatever the batch size:
// it checks the expected version against the stream's last row and inserts
// the batch from arrays. Two writers that both pass the check collide on the
// unique (stream_id, version) key; the loser gets an [*es.ConcurrencyError]
// with the actual version (or, expecting [es.Any], retries). Appends take no
// lock row, so writers to different streams never wait on each other.
//
// # The global order
//
// The position column is a sequence, and sequences are handed out before
// commit, so positions commit out of order. A reader that checkpointed
// position 11 could miss position 10 if 10 committed later. pgstore stores
// the writing transaction's ID (xid8) with each event, orders the global log
// by (transaction ID, position), and lets ReadAll and Subscribe see only the
// rows of transactions older than the oldest one still running
// (pg_snapshot_xmin(pg_current_snapshot())). Such rows are final, so nothing
// can later appear before them: no gap timeouts, and writers are never
// serialised. [es.Position] carries the pair: Commit is the transaction ID
// and Prepare the position.
//
// The costs: any long-running transaction in the cluster, in any database,
// holds global readers back (not writers, and not stream reads) until it
// ends, so keep transactions short and watch for idle-in-transaction
// sessions. Prepared (two-phase) transactions do the same. Transaction IDs
// are cluster-wide and grow forever (xid8 does not wrap), but a logical
// dump restored into another cluster gets the tx values it had; positions
// saved by consumers stay valid only if tx values are preserved, which
// pg_dump does (the column is plain data). After a restore into a cluster
// whose current transaction ID is lower than the highest stored tx, new
// events would sort before old ones: advance the new cluster's transaction
// counter first (pg_resetwal -x) or rebuild consumers.
//
// # Live delivery
//
// Subscribers in the same process are woken directly by appends. Other
// processes are told by NOTIFY on the channel "esgen_events_<schema>", sent
// by a background goroutine after appends, never inside the appending
// transaction (where it would serialise commits). Subscribers also poll
// ([WithPollInterval]) so that a lost notification only delays delivery.
//
// # Deletion
//
// DeleteStream appends a marker event at the stream's next version (so it
// races appends on the unique key and one of them wins cleanly) and records
// the deletion; reads skip markers. TruncateBefore deletes rows.
package pgstore
