package es_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

type repo = es.Repository[*testaggv1.Account, testaggv1.AccountCommand, testaggv1.AccountEvent]

func newRepo(t *testing.T, store es.Store, opts ...es.RepositoryOption) *repo {
	t.Helper()
	r, err := es.NewRepository(store, testagg.New(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustHandle(t *testing.T, ctx context.Context, r *repo, cmd testaggv1.AccountCommand) es.Result[testaggv1.AccountEvent] {
	t.Helper()
	res, err := r.Handle(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRepository_HandleRecordsAndLoadFolds(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store)
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1", Owner: "Ada"})
	mustHandle(t, ctx, r, &testaggv1.Deposit{AccountId: "a1", Amount: 70})
	res := mustHandle(t, ctx, r, &testaggv1.Withdraw{AccountId: "a1", Amount: 30})
	if res.Stream != "Account-a1" || res.Version != 3 || len(res.Events) != 1 || res.Position.IsZero() {
		t.Fatalf("result = %+v; want stream Account-a1 at version 3 with one event and a position", res)
	}
	state, version, err := r.Load(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	want := &testaggv1.Account{AccountId: "a1", Owner: "Ada", Balance: 40, Deposits: 1}
	if version != 3 || !proto.Equal(state, want) {
		t.Fatalf("Load = %v at version %d; want %v at 3", state, version, want)
	}
}

func TestRepository_SecondCreateIsAlreadyExists(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, memstore.New())
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	_, err := r.Handle(ctx, &testaggv1.Open{AccountId: "a1"})
	if !errors.Is(err, es.ErrAlreadyExists) || errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("second Open: %v; want es.ErrAlreadyExists, not a raw conflict", err)
	}
	if !strings.Contains(err.Error(), `"a1"`) {
		t.Fatalf("error %q does not name the aggregate ID", err)
	}
}

func TestRepository_DeciderErrorAppendsNothing(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store)
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	_, err := r.Handle(ctx, &testaggv1.Withdraw{AccountId: "a1", Amount: 5})
	if !errors.Is(err, testagg.ErrInsufficientFunds) {
		t.Fatalf("overdraw: %v; want testagg.ErrInsufficientFunds", err)
	}
	if _, v, _ := r.Load(ctx, "a1"); v != 1 {
		t.Fatalf("stream at version %d after a rejected command; want 1", v)
	}
	if _, err := r.Handle(ctx, &testaggv1.Deposit{Amount: 5}); !errors.Is(err, es.ErrInvalidArgument) || !strings.Contains(err.Error(), "account_id") {
		t.Fatalf("command without ID: %v; want an invalid-argument error naming account_id", err)
	}
}

// 32 clients send commands to one aggregate at once. Each succeeds or
// returns the conflict after its retries; the final state is exactly the
// successful commands' events folded in stream order.
func TestRepository_ConcurrentCommandsOnOneAggregate(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store)
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "hot"})
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		succeeded = map[int64]int64{} // version -> amount
		conflicts int
	)
	for i := range 32 {
		wg.Go(func() {
			amount := int64(i + 1)
			res, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "hot", Amount: amount})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if _, dup := succeeded[res.Version]; dup {
					t.Errorf("two commands report version %d", res.Version)
				}
				succeeded[res.Version] = amount
			case errors.Is(err, es.ErrConcurrency):
				conflicts++
			default:
				t.Errorf("deposit %d: %v", amount, err)
			}
		})
	}
	wg.Wait()
	if len(succeeded)+conflicts != 32 {
		t.Fatalf("%d succeeded and %d conflicted; want 32 in all", len(succeeded), conflicts)
	}
	var sum int64
	version := int64(1)
	for e, err := range store.ReadStream(ctx, "Account-hot", 2, es.Forward, 0) {
		if err != nil {
			t.Fatal(err)
		}
		version++
		var d testaggv1.Deposited
		if e.Version != version || proto.Unmarshal(e.Data, &d) != nil || succeeded[e.Version] != d.Amount {
			t.Fatalf("event %d: %s with amount %d; want the deposit of %d reported at that version", e.Version, e.Type, d.Amount, succeeded[e.Version])
		}
		sum += d.Amount
	}
	if version-1 != int64(len(succeeded)) {
		t.Fatalf("stream has %d deposits; %d commands succeeded", version-1, len(succeeded))
	}
	state, _, err := r.Load(ctx, "hot")
	if err != nil || state.Balance != sum || state.Deposits != int64(len(succeeded)) {
		t.Fatalf("state %v (err %v); want balance %d from %d deposits", state, err, sum, len(succeeded))
	}
	t.Logf("%d succeeded, %d gave up after retries", len(succeeded), conflicts)
}

// countingStore counts stream reads and where they start.
type countingStore struct {
	es.Store
	mu    sync.Mutex
	froms []int64
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	c.mu.Lock()
	c.froms = append(c.froms, from)
	c.mu.Unlock()
	return c.Store.ReadStream(ctx, stream, from, dir, limit)
}

func deposits(t *testing.T, ctx context.Context, r *repo, id string, n int) {
	t.Helper()
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: id})
	for range n {
		mustHandle(t, ctx, r, &testaggv1.Deposit{AccountId: id, Amount: 1})
	}
}

func TestRepository_SnapshotsByPolicyAndLoadsFromThem(t *testing.T) {
	ctx := context.Background()
	snaps := memstore.New()
	store := &countingStore{Store: snaps}
	r := newRepo(t, store, es.WithSnapshots(snaps)) // the proto says every 50
	deposits(t, ctx, r, "a1", 119)                  // versions 1..120
	snap, err := snaps.LoadSnapshot(ctx, "Account-a1")
	if err != nil || snap.Version != 100 || snap.Fingerprint != testaggv1.AccountStateFingerprint {
		t.Fatalf("snapshot = version %d, fingerprint %q (err %v); want version 100 with the state's fingerprint", snap.Version, snap.Fingerprint, err)
	}
	store.froms = nil
	state, version, err := r.Load(ctx, "a1")
	if err != nil || version != 120 || state.Deposits != 119 {
		t.Fatalf("Load = %v at %d (err %v); want 119 deposits at version 120", state, version, err)
	}
	if len(store.froms) != 1 || store.froms[0] != 101 {
		t.Fatalf("Load read the stream from %v; want only from version 101, after the snapshot", store.froms)
	}
}

// failingSnapshots fails every save, as a process killed between the
// append and the snapshot write would.
type failingSnapshots struct{ *memstore.Store }

func (*failingSnapshots) SaveSnapshot(context.Context, es.Snapshot) error {
	return errors.New("disk full")
}

func TestRepository_SnapshotFailureNeverFailsACommandOrLosesEvents(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store, es.WithSnapshots(&failingSnapshots{memstore.New()}), es.WithSnapshotEvery(5))
	deposits(t, ctx, r, "a1", 11)
	if got := r.SnapshotFailures(); got != 2 {
		t.Fatalf("SnapshotFailures = %d; want 2 (at versions 5 and 10)", got)
	}
	// The next process loads from the log alone and loses nothing.
	state, version, err := newRepo(t, store).Load(ctx, "a1")
	if err != nil || version != 12 || state.Deposits != 11 {
		t.Fatalf("Load = %v at %d (err %v); want 11 deposits at version 12", state, version, err)
	}
}

func TestRepository_SnapshotOfAnotherSchemaIsIgnoredAndReplaced(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	snaps := store
	r := newRepo(t, store, es.WithSnapshots(snaps), es.WithSnapshotEvery(5))
	deposits(t, ctx, r, "a1", 6)
	// A snapshot from an older state schema, whose bytes mean something else.
	old := es.Snapshot{Stream: "Account-a1", Version: 7, Fingerprint: "older-schema", Data: []byte{0x08, 0x96, 0x01}}
	if err := snaps.SaveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	state, version, err := r.Load(ctx, "a1")
	if err != nil || version != 7 || state.Deposits != 6 || state.AccountId != "a1" {
		t.Fatalf("Load = %v at %d (err %v); want the replayed state at version 7", state, version, err)
	}
	snap, _ := snaps.LoadSnapshot(ctx, "Account-a1")
	if snap.Fingerprint != testaggv1.AccountStateFingerprint {
		t.Fatalf("the stale snapshot was not replaced: fingerprint %q", snap.Fingerprint)
	}
}

func TestRepository_CorruptSnapshotIsAnErrorNamingTheStream(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	snaps := store
	r := newRepo(t, store, es.WithSnapshots(snaps))
	deposits(t, ctx, r, "a1", 1)
	bad := es.Snapshot{Stream: "Account-a1", Version: 2, Fingerprint: testaggv1.AccountStateFingerprint, Data: []byte{0xff, 0xff, 0xff}}
	if err := snaps.SaveSnapshot(ctx, bad); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Load(ctx, "a1")
	if err == nil || !strings.Contains(err.Error(), `corrupt snapshot of stream "Account-a1" at version 2 (testagg.v1.Account)`) {
		t.Fatalf("Load with a corrupt snapshot: %v; want an error naming stream, version and aggregate", err)
	}
}

func TestRepository_UnknownAndUndecodableEvents(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store)
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	if _, err := store.Append(ctx, "Account-a1", es.Exact(1), es.EventData{Type: "testagg.v1.FromTheFuture", Data: []byte{}}); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Load(ctx, "a1")
	if err == nil || !strings.Contains(err.Error(), `event 2 of stream "Account-a1" has type "testagg.v1.FromTheFuture"`) {
		t.Fatalf("Load with an unknown type: %v; want an error naming version, stream and type", err)
	}
	skipping := newRepo(t, store, es.WithUnknownEvents(es.SkipUnknown))
	if _, v, err := skipping.Load(ctx, "a1"); err != nil || v != 2 {
		t.Fatalf("Load skipping unknown types = version %d, %v; want version 2", v, err)
	}
	if _, err := store.Append(ctx, "Account-a1", es.Exact(2), es.EventData{Type: testaggv1.DepositedEventType, Data: []byte{0x08}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = skipping.Load(ctx, "a1")
	if err == nil || !strings.Contains(err.Error(), "decode event 3 of stream \"Account-a1\" as testagg.v1.Deposited") {
		t.Fatalf("Load with an undecodable event: %v; want an error naming version, stream and type", err)
	}
}

func TestRepository_CommandIDMakesCommandsIdempotent(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store)
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	mustHandle(t, ctx, r, &testaggv1.Deposit{AccountId: "a1", Amount: 100})
	cmdCtx := es.ContextWithCommandID(ctx, "withdraw-77")
	first := mustHandle(t, cmdCtx, r, &testaggv1.Withdraw{AccountId: "a1", Amount: 80})
	// The balance is now too low to decide the same withdrawal again: only
	// recognising the command can return its original success.
	again := mustHandle(t, cmdCtx, newRepo(t, store), &testaggv1.Withdraw{AccountId: "a1", Amount: 80})
	if !again.Duplicate || again.Version != first.Version || again.Position != first.Position ||
		len(again.Events) != 1 || !proto.Equal(again.Events[0], first.Events[0]) {
		t.Fatalf("re-sent command = %+v; want the original result %+v marked duplicate", again, first)
	}
	if _, v, _ := r.Load(ctx, "a1"); v != 3 {
		t.Fatalf("stream at version %d after a re-sent command; want 3", v)
	}
	e, err := store.FindEvent(ctx, es.CommandEventID("Account-a1", "withdraw-77", 0))
	if err != nil || e.Metadata.CausationID != "withdraw-77" {
		t.Fatalf("the command's event has causation %q (err %v); want the command ID", e.Metadata.CausationID, err)
	}
}

// noFinder hides memstore's FindEvent, as a store without an ID index would.
type noFinder struct{ es.Store }

func TestRepository_CommandIDWithoutEventFinderStillAppendsOnce(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, noFinder{store})
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	cmdCtx := es.ContextWithCommandID(ctx, "deposit-1")
	first := mustHandle(t, cmdCtx, r, &testaggv1.Deposit{AccountId: "a1", Amount: 5})
	// The same decision on the next version is recognised by its event IDs.
	again, err := r.Handle(cmdCtx, &testaggv1.Deposit{AccountId: "a1", Amount: 5})
	if err != nil || again.Version != first.Version {
		t.Fatalf("re-sent command = %+v, %v; want the original version %d", again, err, first.Version)
	}
	if _, v, _ := r.Load(ctx, "a1"); v != 2 {
		t.Fatalf("stream at version %d; want 2", v)
	}
}

func TestRepository_ContextMetadataTravelsWithEvents(t *testing.T) {
	store := memstore.New()
	r := newRepo(t, store)
	ctx := es.ContextWithMetadata(context.Background(), es.Metadata{CorrelationID: "corr-1", TenantID: "acme"})
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1"})
	for e, err := range store.ReadStream(ctx, "Account-a1", 1, es.Forward, 0) {
		if err != nil || e.Metadata.CorrelationID != "corr-1" || e.Metadata.TenantID != "acme" {
			t.Fatalf("event metadata %+v (err %v); want the context's", e.Metadata, err)
		}
	}
}

func TestNewRepository_RejectsBadOptionsNamingEach(t *testing.T) {
	_, err := es.NewRepository(nil, testagg.New(), es.WithMaxAttempts(0), es.WithSnapshotEvery(-5))
	for _, want := range []string{"testagg.v1.Account", "store is nil", "max attempts must be at least 1", "snapshot interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewRepository error %v does not mention %q", err, want)
		}
	}
}

func newAgg() testaggv1.AccountAggregate { return testagg.New() }

// A snapshot from before a delete with reuse must not seed the stream's
// next life.
func TestRepository_SnapshotDoesNotOutliveADelete(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	r := newRepo(t, store, es.WithSnapshots(store), es.WithSnapshotEvery(5))
	deposits(t, ctx, r, "a1", 6) // snapshot at version 5
	if err := store.DeleteStream(ctx, "Account-a1", es.Any, es.AllowReuse()); err != nil {
		t.Fatal(err)
	}
	mustHandle(t, ctx, r, &testaggv1.Open{AccountId: "a1", Owner: "Bo"})
	state, _, err := r.Load(ctx, "a1")
	if err != nil || state.Deposits != 0 || state.Owner != "Bo" {
		t.Fatalf("state after delete and re-open = %v (err %v); want only the new life", state, err)
	}
}
