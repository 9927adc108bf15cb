package essink

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/internal/esfake"
)

func mustPack(t testing.TB, p es.Position) int64 {
	t.Helper()
	v, err := PositionPacker{PrepareBits: DefaultPrepareBits}.Pack(p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApply_OneBulkWithExternalVersionsThenCheckpoint(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	log := orderLog()
	if err := s.Apply(t.Context(), "orders", log[:4], orderProjection("orders")); err != nil {
		t.Fatal(err)
	}
	reqs := tg.fake.Log()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want a bulk and a checkpoint: %+v", len(reqs), reqs)
	}
	bulk := reqs[0]
	if bulk.Method != http.MethodPost || bulk.Path != "/_bulk" {
		t.Fatalf("first request %s %s, want POST /_bulk", bulk.Method, bulk.Path)
	}
	// order-1 is written twice in the batch: only the later write is sent.
	want := []string{
		`{"index":{"_index":"orders","_id":"order-1","version":` + itoa(mustPack(t, log[2].Position)) + `,"version_type":"external"}}`,
		`{"events":2,"order":"order-1","status":"paid"}`,
		`{"delete":{"_index":"orders","_id":"order-2","version":` + itoa(mustPack(t, log[3].Position)) + `,"version_type":"external"}}`,
	}
	if !strings.HasSuffix(bulk.Body, "\n") {
		t.Errorf("bulk body does not end with a newline: %q", bulk.Body)
	}
	if got := strings.Split(strings.TrimSuffix(bulk.Body, "\n"), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("bulk lines:\n got %q\nwant %q", got, want)
	}
	cp := reqs[1]
	if cp.Method != http.MethodPut || cp.Path != "/checkpoints/_doc/orders" {
		t.Errorf("checkpoint request %s %s, want PUT /checkpoints/_doc/orders", cp.Method, cp.Path)
	}
	q, _ := url.ParseQuery(cp.Query)
	if q.Get("version") != itoa(mustPack(t, log[3].Position)) || q.Get("version_type") != "external" {
		t.Errorf("checkpoint query %q, want version=%d and version_type=external", cp.Query, mustPack(t, log[3].Position))
	}
	var doc checkpointDoc
	if err := json.Unmarshal([]byte(cp.Body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Projection != "orders" || doc.Commit != "4" || doc.Prepare != "4" {
		t.Errorf("checkpoint document %+v, want projection orders at 4/4", doc)
	}
}

func countBulks(f *esfake.Server) int {
	n := 0
	for _, r := range f.Log() {
		if r.Path == "/_bulk" {
			n++
		}
	}
	return n
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func TestApply_ReplayTwiceGivesTheSameDocuments(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		ix := tg.index("orders")
		log := orderLog()
		snapshot := func() [2]storedDoc {
			return [2]storedDoc{getDoc(t, tg.client, ix, "order-1"), getDoc(t, tg.client, ix, "order-2")}
		}
		// Live: one event at a time.
		for _, rec := range log {
			if err := s.Apply(ctx, "orders", []es.Event{rec}, orderProjection(ix)); err != nil {
				t.Fatal(err)
			}
		}
		live := snapshot()
		if !live[0].Found || live[0].Source["status"] != "shipped" || live[0].Version != mustPack(t, log[4].Position) {
			t.Fatalf("order-1 after the live run: %+v", live[0])
		}
		if live[1].Found {
			t.Fatalf("order-2 was cancelled but is %+v", live[1])
		}
		// Replay the whole log twice, in other batch sizes, and a stale tail.
		for _, batches := range [][][]es.Event{{log}, {log[:2], log[2:]}, {log[:3]}, {log[1:2]}} {
			for _, b := range batches {
				if err := s.Apply(ctx, "orders", b, orderProjection(ix)); err != nil {
					t.Fatalf("replay: %v", err)
				}
			}
			if got := snapshot(); !reflect.DeepEqual(got, live) {
				t.Fatalf("after replaying %d batch(es):\n got %+v\nwant %+v", len(batches), got, live)
			}
		}
		// The checkpoint never went back either.
		cp, err := s.Checkpoint(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if cp != log[4].Position {
			t.Fatalf("checkpoint %s after replays, want %s", cp, log[4].Position)
		}
	})
}

func TestApply_StaleWriteConflictCountsAsApplied(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		ix := tg.index("orders")
		log := orderLog()
		if err := s.Apply(ctx, "orders", log[2:3], orderProjection(ix)); err != nil { // paid
			t.Fatal(err)
		}
		// An older event for the same document arrives late: 409, no error.
		if err := s.Apply(ctx, "orders", log[:1], orderProjection(ix)); err != nil {
			t.Fatalf("stale write: %v", err)
		}
		if d := getDoc(t, tg.client, ix, "order-1"); d.Source["status"] != "paid" {
			t.Fatalf("stale write regressed the document: %+v", d)
		}
		if tg.fake != nil {
			if n := countBulks(tg.fake); n != 2 {
				t.Fatalf("got %d bulk requests, want 2 (no retry of a 409)", n)
			}
		}
	})
}

func TestApply_PartialFailureRetriesOnlyFailedItems(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	batch := []es.Event{ev("order-1", 1, 1, "OrderPlaced"), ev("order-2", 1, 2, "OrderPlaced"), ev("order-3", 1, 3, "OrderPlaced")}
	tg.fake.SetItemFault(func(attempt int, action, index, id string) int {
		if attempt == 1 && (id == "order-2" || id == "order-3") {
			return http.StatusTooManyRequests
		}
		if attempt == 2 && id == "order-3" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	if err := s.Apply(t.Context(), "orders", batch, orderProjection("orders")); err != nil {
		t.Fatal(err)
	}
	var ids [][]string
	for _, r := range tg.fake.Log() {
		if r.Path != "/_bulk" {
			continue
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(r.Body), "\n") {
			var a map[string]bulkAction
			if json.Unmarshal([]byte(line), &a) == nil && a["index"].ID != "" {
				got = append(got, a["index"].ID)
			}
		}
		ids = append(ids, got)
	}
	want := [][]string{{"order-1", "order-2", "order-3"}, {"order-2", "order-3"}, {"order-3"}}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("documents per bulk attempt:\n got %v\nwant %v", ids, want)
	}
	for _, id := range []string{"order-1", "order-2", "order-3"} {
		if d := getDoc(t, tg.client, "orders", id); !d.Found {
			t.Errorf("%s not written", id)
		}
	}
	if cp, _ := s.Checkpoint(t.Context(), "orders"); cp != batch[2].Position {
		t.Errorf("checkpoint %s, want %s", cp, batch[2].Position)
	}
}

func TestApply_TooManyRequestsBacksOff(t *testing.T) {
	tg := fakeTarget(t)
	base := 20 * time.Millisecond
	s := newSink(t, tg, WithBackoff(base, time.Second))
	tg.fake.Fail(http.StatusTooManyRequests, http.StatusTooManyRequests)
	start := time.Now()
	if err := s.Apply(t.Context(), "orders", orderLog()[:1], orderProjection("orders")); err != nil {
		t.Fatal(err)
	}
	// Delays are drawn from [base/2, base] then [base, 2*base].
	if el := time.Since(start); el < base/2+base {
		t.Errorf("two 429s were retried after %v, want at least %v of backoff", el, base/2+base)
	}
	if bulks := countBulks(tg.fake); bulks != 3 {
		t.Errorf("%d bulk requests, want 3", bulks)
	}
}

func TestBackoff_GrowsCappedWithJitter(t *testing.T) {
	s := newSink(t, fakeTarget(t), WithBackoff(10*time.Millisecond, 80*time.Millisecond))
	for n, want := range []time.Duration{10, 20, 40, 80, 80, 80} {
		want *= time.Millisecond
		for range 50 {
			if d := s.backoff(n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := s.backoff(200); d > 80*time.Millisecond {
		t.Fatalf("backoff(200) = %v, beyond the cap", d)
	}
}

func TestApply_BreakerOpensThenHalfOpenProbeClosesIt(t *testing.T) {
	tg := fakeTarget(t)
	delay := 60 * time.Millisecond
	s := newSink(t, tg, WithBreaker(3, delay), WithMaxAttempts(100))
	ctx := t.Context()
	tg.fake.SetDown(http.StatusServiceUnavailable)

	start := time.Now()
	err := s.Apply(ctx, "orders", orderLog()[:1], orderProjection("orders"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Fatalf("Apply during an outage: %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Apply took %v to give up", el)
	}
	if n := len(tg.fake.Log()); n != 3 {
		t.Fatalf("%d requests before the breaker opened, want 3", n)
	}
	if st := s.BreakerState(); st != "open" {
		t.Fatalf("breaker %s, want open", st)
	}
	// While open, calls fail at once without a request.
	tg.fake.ResetLog()
	if _, err := s.Checkpoint(ctx, "orders"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Checkpoint while open: %v", err)
	}
	if err := s.Apply(ctx, "orders", orderLog()[:1], orderProjection("orders")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Apply while open: %v", err)
	}
	if n := len(tg.fake.Log()); n != 0 {
		t.Fatalf("%d requests while the breaker was open", n)
	}

	// Half-open: one probe; it fails, so the breaker opens again.
	time.Sleep(delay + 10*time.Millisecond)
	if err := s.Apply(ctx, "orders", orderLog()[:1], orderProjection("orders")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Apply with a failing probe: %v", err)
	}
	if n := len(tg.fake.Log()); n != 1 {
		t.Fatalf("%d requests in half-open, want 1 probe", n)
	}
	if st := s.BreakerState(); st != "open" {
		t.Fatalf("breaker %s after a failed probe, want open", st)
	}

	// The cluster is back: the next probe succeeds and closes the breaker.
	tg.fake.SetDown(0)
	time.Sleep(delay + 10*time.Millisecond)
	if err := s.Apply(ctx, "orders", orderLog()[:1], orderProjection("orders")); err != nil {
		t.Fatalf("Apply after recovery: %v", err)
	}
	if st := s.BreakerState(); st != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", st)
	}
	if cp, err := s.Checkpoint(ctx, "orders"); err != nil || cp != orderLog()[0].Position {
		t.Fatalf("checkpoint %s, %v after recovery", cp, err)
	}
}

func TestApply_CheckpointOnlyAfterAcknowledgedBulk(t *testing.T) {
	ctx := t.Context()
	t.Run("rejected item", func(t *testing.T) {
		tg := fakeTarget(t)
		s := newSink(t, tg)
		tg.fake.SetItemFault(func(_ int, _, _, id string) int {
			if id == "order-2" {
				return http.StatusBadRequest
			}
			return 0
		})
		err := s.Apply(ctx, "orders", orderLog()[:2], orderProjection("orders"))
		var ie *ItemError
		if !errors.As(err, &ie) || ie.ID != "order-2" || ie.Status != 400 {
			t.Fatalf("Apply: %v, want an *ItemError for order-2", err)
		}
		// The runner parks the event to blame.
		var ee *cqrs.EventError
		if !errors.As(err, &ee) || ee.Event.StreamID != "order-2" || ee.Event.Position != orderLog()[1].Position {
			t.Fatalf("Apply: %v, want a *cqrs.EventError for order-2's event", err)
		}
		assertNoCheckpointWrite(t, tg)
	})
	t.Run("outage", func(t *testing.T) {
		tg := fakeTarget(t)
		s := newSink(t, tg, WithMaxAttempts(2))
		tg.fake.SetDown(http.StatusBadGateway)
		if err := s.Apply(ctx, "orders", orderLog()[:2], orderProjection("orders")); err == nil {
			t.Fatal("Apply succeeded during an outage")
		}
		assertNoCheckpointWrite(t, tg)
	})
	t.Run("items still failing", func(t *testing.T) {
		tg := fakeTarget(t)
		s := newSink(t, tg, WithMaxAttempts(3), WithBreaker(10, time.Second))
		tg.fake.SetItemFault(func(_ int, _, _, id string) int {
			if id == "order-1" {
				return http.StatusTooManyRequests
			}
			return 0
		})
		if err := s.Apply(ctx, "orders", orderLog()[:2], orderProjection("orders")); err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") {
			t.Fatalf("Apply: %v, want giving up after 3 attempts", err)
		}
		assertNoCheckpointWrite(t, tg)
	})
}

func assertNoCheckpointWrite(t *testing.T, tg target) {
	t.Helper()
	for _, r := range tg.fake.Log() {
		if strings.HasPrefix(r.Path, "/checkpoints/") {
			t.Fatalf("checkpoint written after a failed bulk: %+v", r)
		}
	}
}

func TestCheckpoint_MissingIsZeroAndOldNeverOverwritesNew(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		ctx := t.Context()
		s := newSink(t, tg)
		ix := tg.index("orders")
		// No checkpoint index at all yet, then no document in it.
		if cp, err := s.Checkpoint(ctx, "orders"); err != nil || !cp.IsZero() {
			t.Fatalf("Checkpoint without an index: %s, %v; want zero", cp, err)
		}
		log := orderLog()
		if err := s.Apply(ctx, "other", log[:1], orderProjection(ix)); err != nil {
			t.Fatal(err)
		}
		if cp, err := s.Checkpoint(ctx, "orders"); err != nil || !cp.IsZero() {
			t.Fatalf("Checkpoint without a document: %s, %v; want zero", cp, err)
		}
		if err := s.Apply(ctx, "orders", log[:4], orderProjection(ix)); err != nil {
			t.Fatal(err)
		}
		// A late Apply of an older batch (another runner instance, say).
		if err := s.Apply(ctx, "orders", log[:2], orderProjection(ix)); err != nil {
			t.Fatal(err)
		}
		if cp, err := s.Checkpoint(ctx, "orders"); err != nil || cp != log[3].Position {
			t.Fatalf("Checkpoint: %s, %v; want %s", cp, err, log[3].Position)
		}
	})
}

func TestCheckpoint_RoundTripsLargePositions(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg, WithVersion(StreamVersion))
	p := es.Position{Commit: 1<<32 - 1, Prepare: 1<<31 - 1}
	rec := ev("order-1", 1, 0, "OrderPlaced")
	rec.Position = p
	if err := s.Apply(t.Context(), "orders", []es.Event{rec}, orderProjection("orders")); err != nil {
		t.Fatal(err)
	}
	if cp, err := s.Checkpoint(t.Context(), "orders"); err != nil || cp != p {
		t.Fatalf("Checkpoint: %s, %v; want %s", cp, err, p)
	}
}

func TestApply_PositionOutOfRangeFailsBeforeAnyRequest(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	rec := ev("order-1", 1, 0, "OrderPlaced")
	rec.Position = es.Position{Commit: 7, Prepare: 1 << 31}
	if err := s.Apply(t.Context(), "orders", []es.Event{rec}, orderProjection("orders")); !errors.Is(err, ErrVersionRange) {
		t.Fatalf("Apply: %v, want ErrVersionRange", err)
	}
	if n := len(tg.fake.Log()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestApply_HandlerErrorSendsNothing(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	boom := errors.New("boom")
	err := s.Apply(t.Context(), "orders", orderLog(), func(ctx context.Context, rec es.Event) error {
		if rec.Version == 2 {
			return boom
		}
		return orderProjection("orders")(ctx, rec)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply: %v, want the handler's error", err)
	}
	if n := len(tg.fake.Log()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestApply_StreamVersionsAsExternalVersions(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg, WithVersion(StreamVersion))
	log := orderLog()
	if err := s.Apply(t.Context(), "orders", log, orderProjection("orders")); err != nil {
		t.Fatal(err)
	}
	if d := getDoc(t, tg.client, "orders", "order-1"); d.Version != 3 || d.Source["status"] != "shipped" {
		t.Fatalf("order-1: %+v, want version 3 (its stream version)", d)
	}
}

func TestIndexAndDelete_OutsideApply(t *testing.T) {
	if err := Index(t.Context(), "orders", "1", map[string]any{}); !errors.Is(err, ErrNoBatch) {
		t.Errorf("Index: %v", err)
	}
	if err := Delete(t.Context(), "orders", "1"); !errors.Is(err, ErrNoBatch) {
		t.Errorf("Delete: %v", err)
	}
}

func TestIndex_RejectsBadDocuments(t *testing.T) {
	s := newSink(t, fakeTarget(t))
	for name, doc := range map[string]any{
		"invalid raw JSON": json.RawMessage(`{"a":`),
		"unencodable":      map[string]any{"f": func() {}},
	} {
		err := s.Apply(t.Context(), "orders", orderLog()[:1], func(ctx context.Context, rec es.Event) error {
			return Index(ctx, "orders", "1", doc)
		})
		if err == nil {
			t.Errorf("%s: Apply succeeded", name)
		}
	}
}

func TestIndex_MultilineRawDocumentIsCompacted(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg)
	err := s.Apply(t.Context(), "orders", orderLog()[:1], func(ctx context.Context, rec es.Event) error {
		return Index(ctx, "orders", "1", []byte("{\n  \"a\": 1\n}"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := getDoc(t, tg.client, "orders", "1"); d.Source["a"] != float64(1) {
		t.Fatalf("document %+v", d)
	}
}

func TestNew_ValidatesEveryOption(t *testing.T) {
	tg := fakeTarget(t)
	_, err := New(nil, WithBackoff(0, 0), WithMaxAttempts(0), WithBreaker(0, 0), WithCheckpointIndex(""), WithPrepareBits(63), WithRefresh("sometimes"))
	if err == nil {
		t.Fatal("New accepted a bad configuration")
	}
	for _, want := range []string{"client", "backoff", "attempts", "breaker", "checkpoint index", "prepare bits", "refresh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := New(tg.client); err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
}

func TestApply_CancelledDuringBackoffReturnsPromptly(t *testing.T) {
	tg := fakeTarget(t)
	s := newSink(t, tg, WithBackoff(time.Hour, time.Hour), WithBreaker(100, time.Hour))
	tg.fake.SetDown(http.StatusServiceUnavailable)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Apply(ctx, "orders", orderLog()[:1], orderProjection("orders"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply: %v, want the context's error", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Apply returned after %v", el)
	}
}

func TestApply_DeletingAMissingDocumentIsFine(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		s := newSink(t, tg)
		ix := tg.index("orders")
		if err := s.Apply(t.Context(), "orders", []es.Event{ev("order-9", 2, 2, "OrderCancelled")}, orderProjection(ix)); err != nil {
			t.Fatal(err)
		}
		// The tombstone keeps the version: an older placement stays deleted.
		if err := s.Apply(t.Context(), "orders", []es.Event{ev("order-9", 1, 1, "OrderPlaced")}, orderProjection(ix)); err != nil {
			t.Fatal(err)
		}
		if d := getDoc(t, tg.client, ix, "order-9"); d.Found {
			t.Fatalf("a stale write resurrected a deleted document: %+v", d)
		}
	})
}
