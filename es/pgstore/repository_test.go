package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/internal/pgtest"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

type accountRepo = es.Repository[*testaggv1.Account, testaggv1.AccountCommand, testaggv1.AccountEvent]

func newRepo(t testing.TB, s *pgstore.Store, opts ...es.RepositoryOption) *accountRepo {
	t.Helper()
	r, err := es.NewRepository(s, testagg.New(), append([]es.RepositoryOption{es.WithSnapshots(s)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRepository_SnapshotsInPostgres(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, pgtest.Pool(t))
	r := newRepo(t, s)
	if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	for range 109 {
		if _, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "a1", Amount: 2}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.LoadSnapshot(ctx, "Account-a1")
	if err != nil || snap.Version != 100 || snap.Fingerprint != testaggv1.AccountStateFingerprint {
		t.Fatalf("snapshot at version %d, fingerprint %q (err %v); want version 100 under the current schema", snap.Version, snap.Fingerprint, err)
	}
	// An older snapshot never replaces a newer one.
	if err := s.SaveSnapshot(ctx, es.Snapshot{Stream: "Account-a1", Version: 50, Fingerprint: "x", Data: []byte{}}); err != nil {
		t.Fatal(err)
	}
	if snap, _ := s.LoadSnapshot(ctx, "Account-a1"); snap.Version != 100 {
		t.Fatalf("an older snapshot replaced the newer one: version %d", snap.Version)
	}
	state, version, err := r.Load(ctx, "a1")
	want := &testaggv1.Account{AccountId: "a1", Balance: 218, Deposits: 109}
	if err != nil || version != 110 || !proto.Equal(state, want) {
		t.Fatalf("Load = %v at %d (err %v); want %v at 110", state, version, err, want)
	}
	if _, err := s.LoadSnapshot(ctx, "Account-none"); !errors.Is(err, es.ErrSnapshotNotFound) {
		t.Fatalf("LoadSnapshot of a stream without one: %v; want es.ErrSnapshotNotFound", err)
	}
}

func TestRepository_CommandIDSurvivesARestart(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	first := newRepo(t, newStore(t, pool))
	if _, err := first.Handle(ctx, &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	cmdCtx := es.ContextWithCommandID(ctx, "deposit-42")
	orig, err := first.Handle(cmdCtx, &testaggv1.Deposit{AccountId: "a1", Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	// A new process, a new store and repository on the same database.
	again, err := newRepo(t, newStore(t, pool)).Handle(cmdCtx, &testaggv1.Deposit{AccountId: "a1", Amount: 5})
	if err != nil || !again.Duplicate || again.Version != orig.Version || again.Position != orig.Position {
		t.Fatalf("re-sent command after a restart = %+v, %v; want the original %+v marked duplicate", again, err, orig)
	}
	if _, v, _ := first.Load(ctx, "a1"); v != 2 {
		t.Fatalf("stream at version %d; want 2", v)
	}
}

func TestRepository_ConcurrentClientsOnPostgresLoseNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, pgtest.Pool(t))
	r := newRepo(t, s, es.WithMaxAttempts(10))
	if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: "hot"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sum, ok int64
	for i := range 32 {
		wg.Go(func() {
			_, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "hot", Amount: int64(i + 1)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				sum += int64(i + 1)
				ok++
			case !errors.Is(err, es.ErrConcurrency):
				t.Errorf("deposit %d: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	state, version, err := r.Load(ctx, "hot")
	if err != nil || state.Balance != sum || state.Deposits != ok || version != ok+1 {
		t.Fatalf("state %v at %d (err %v); want the %d successful deposits summing to %d", state, version, err, ok, sum)
	}
}

func TestRepository_SnapshotDoesNotOutliveADeleteInPostgres(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, pgtest.Pool(t))
	r := newRepo(t, s, es.WithSnapshotEvery(5))
	if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "a1", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteStream(ctx, "Account-a1", es.Any, es.AllowReuse()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(ctx, "Account-a1"); !errors.Is(err, es.ErrSnapshotNotFound) {
		t.Fatalf("snapshot of the deleted life: %v; want es.ErrSnapshotNotFound", err)
	}
	if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: "a1", Owner: "Bo"}); err != nil {
		t.Fatal(err)
	}
	state, _, err := r.Load(ctx, "a1")
	if err != nil || state.Deposits != 0 || state.Owner != "Bo" {
		t.Fatalf("state after delete and re-open = %v (err %v); want only the new life", state, err)
	}
}

// The repository loads through LoadStream: one statement per load.
func TestRepository_LoadIsOneStatement(t *testing.T) {
	ctx := context.Background()
	s, counter := countedStore(t)
	r := newRepo(t, s, es.WithSnapshotEvery(5))
	if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: "a1"}); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if _, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "a1", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	before := counter.n.Load()
	state, v, err := r.Load(ctx, "a1")
	if err != nil || v != 8 || state.Deposits != 7 {
		t.Fatalf("Load = %v at %d (err %v); want 7 deposits at version 8", state, v, err)
	}
	if got := counter.n.Load() - before; got != 1 {
		t.Fatalf("Load of a snapshotted aggregate sent %d statements; want 1", got)
	}
	before = counter.n.Load()
	if _, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "a1", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if got := counter.n.Load() - before; got != 2 {
		t.Fatalf("a command sent %d statements; want 2 (load, append)", got)
	}
}
