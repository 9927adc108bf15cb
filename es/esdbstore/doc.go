// Package esdbstore is an [es.Store] on a KurrentDB (formerly EventStoreDB)
// server, version 22.6 or later, through the gRPC client
// github.com/EventStore/EventStore-Client-Go/v4.
//
//	store, err := esdbstore.Open("esdb://localhost:2113?tls=false")
//	if err != nil { ... }
//	defer store.Close()
//
// or, to share a client you configured yourself, esdbstore.New(client).
//
// # What it owns
//
// The package owns the translation between es and KurrentDB, not the server:
// users, access control, scavenging and projections are configured on the
// server. The credentials need read access to $all (for ReadAll, Head and
// Subscribe) and write access to the streams and their metadata streams.
//
// # Mapping
//
//   - Versions are 1-based in es and revisions 0-based in KurrentDB: version
//     v is revision v-1. Expected versions map to the client's stream
//     states: [es.Any] to Any, [es.NoStream] to NoStream, [es.StreamExists]
//     to StreamExists, [es.Exact](v) to revision v-1.
//   - Positions are the $all commit and prepare positions, in
//     es.Position{Commit, Prepare}; persist both.
//   - Event IDs are the KurrentDB event UUIDs. Data is sent as binary
//     content; es.Metadata travels as the event's metadata, the JSON object of
//     [es.Metadata.MarshalJSON], whose $correlationId and $causationId keys
//     KurrentDB itself understands.
//   - ReadAll, Head and Subscribe leave out KurrentDB's system events (types
//     starting with "$": stream metadata, tombstones, links, statistics).
//     ReadAll is strictly after its position.
//   - Subscribe is SubscribeToAll with a server-side filter: by stream prefix
//     when the filter has prefixes (event types are then checked in the
//     client), otherwise by an anchored event type expression. A subscription
//     the server drops is renewed from the last position seen, with backoff.
//   - DeleteStream with [es.AllowReuse] is a soft delete; without it, a
//     tombstone.
//   - TruncateBefore(v) sets the stream's $tb metadata to revision v-1,
//     keeping the rest of the stream's metadata.
//   - Errors: a wrong expected version is an [*es.ConcurrencyError] with the
//     stream's version; stream not found and deleted map to
//     [es.ErrStreamNotFound] and [es.ErrStreamDeleted]; anything else is an
//     [*Error], which keeps the client's description but never wraps a gRPC
//     error.
//
// # Where KurrentDB's semantics differ from es
//
// The server decides these cases itself; the adapter does not paper over
// them (doing so would cost reads on every append). The conformance suite
// skips exactly these cases on this adapter, with the reasons below.
//
//   - Idempotence is by event ID within a stream only, and by ID alone:
//     the server never compares type or data, so reusing an ID for different
//     content is accepted as a retry instead of failing with
//     [es.ErrDuplicateEventID]; the same ID in another stream is stored
//     again. A batch whose first ID is new is written in full even when
//     later IDs are stored. Under [es.Any] and [es.StreamExists] the server
//     recognises retries from a bounded in-memory cache of recent event IDs:
//     a retry long after the original, or after a server restart, writes the
//     events again. Retry with the expected version of the original append to
//     get the guarantee (the server then checks the IDs against the stream).
//   - After a delete with reuse, the server accepts as expected version not
//     only NoStream and Any (as es does, continuing the version numbers) but
//     also the exact version of the deleted events, which es calls a
//     conflict with version 0.
//   - TruncateBefore is lazy: stream reads stop returning the events at
//     once, but ReadAll and Subscribe return them, and they stay on disk,
//     until the server scavenges. The same holds for the events of deleted
//     streams, which es keeps in the global log anyway.
//   - Tombstoning a stream that never existed succeeds and retires its name
//     (es stores return [es.ErrStreamNotFound]); a soft delete of one returns
//     [es.ErrStreamNotFound], as in es.
//   - Servers before 22.6 send no positions with stream reads: events from
//     ReadStream then have the zero Position.
//
// An append of no events is served by a read of the stream and a check of
// the expectation, since the server has no such operation. A wrong expected
// version costs one more read to tell a stream deleted with reuse (version 0
// in es) from a live one.
package esdbstore
