// Package essink is a [cqrs.Sink] that keeps projections' read models in
// Elasticsearch 8, through github.com/elastic/go-elasticsearch/v8.
//
//	client, _ := elasticsearch.NewClient(elasticsearch.Config{
//		Addresses: []string{"http://localhost:9200"}, DisableRetry: true})
//	sink, err := essink.New(client)
//
// A projection's Handle stages writes on the context it is given:
//
//	essink.Index(ctx, "orders", orderID, doc)
//	essink.Delete(ctx, "orders", orderID)
//
// Apply sends the batch's writes as one bulk request, each with
// version_type=external and a version taken from its event (by default the
// packed log position, see [PositionPacker]; [StreamVersion] for documents
// keyed by stream). Elasticsearch keeps a write only when its version is
// above the stored document's, so replaying events, or applying a batch twice,
// never takes a document back to an older state: the stale write is answered
// 409, which the sink counts as already applied. After every write is
// acknowledged, the batch's last position is stored as the checkpoint, a
// document in its own index, also externally versioned.
//
// # What it owns
//
// Document writes of one batch, their retries (failed items only, with
// backoff), the circuit breaker in front of the cluster, checkpoints, and
// blue/green rebuilds behind index aliases: [Sink.Rebuild] builds the next
// versioned index from the log beside the live one and swaps the alias
// atomically; handlers name indexes through [Name], which is the alias or,
// during a rebuild, the index being built. The steps are exported too
// ([Sink.CreateIndex], [Sink.SwapAlias], [Sink.ResolveAlias],
// [Sink.DropIndex]). It also keeps runners' status reports and parked
// events in their own indexes ([Sink.RecordStatus], [Sink.Park]), and
// reports a projection's status with its lag ([Sink.Inspect]). It does not
// own index templates, searches, or the projection runner.
//
// # Failures
//
// 429 and 5xx answers, and transport errors, are retried with exponential
// backoff and jitter, a bounded number of times. Every request passes a
// circuit breaker (failsafe-go); once it opens, calls fail at once with
// [ErrUnavailable] until a probe request succeeds. A document Elasticsearch
// refuses for good (a mapping conflict, say) fails Apply with an [*ItemError];
// the checkpoint does not move, so the runner sees the error and the batch is
// offered again.
//
// See docs/elasticsearch.md for the versioning scheme and its limits.
package essink
