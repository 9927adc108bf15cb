// Package es holds the core event-sourcing types of esgen: events and the
// input for new ones, expected versions, global positions, the [Store]
// contract that every log adapter implements, and the errors callers branch on.
//
// Package es owns the contract, not any storage: adapters live beside it
// (es/memstore, es/pgstore, es/sqlitestore, es/esdbstore) and all of them pass
// the conformance suite in es/estest. It depends only on the standard library.
//
// # The contract in brief
//
//   - Append is all-or-nothing and checks an [ExpectedVersion]. A mismatch
//     returns a [*ConcurrencyError] that matches [ErrConcurrency].
//   - Append is idempotent by event ID: re-sending a batch whose IDs are all
//     stored, in that stream, with the same type and data, succeeds and writes
//     nothing. Reusing an ID for different content fails with
//     [ErrDuplicateEventID].
//   - Reads are iterators ([iter.Seq2]) that yield events in order and stop
//     at the first error.
//   - The global log has a total order by [Position]. A reader of the global
//     log (ReadAll, Subscribe) never skips an event: an event becomes visible
//     to global readers only once no event with a lower position can still
//     appear.
package es
