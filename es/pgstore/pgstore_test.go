package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t *testing.T, pool *pgxpool.Pool, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	ctx := context.Background()
	if err := pgstore.Migrate(ctx, pool, opts...); err != nil {
		t.Fatal(err)
	}
	s, err := pgstore.New(pool, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	estest.Run(t, estest.Harness{
		New: func(t *testing.T) es.Store {
			return newStore(t, pgtest.Pool(t), pgstore.WithPollInterval(50*time.Millisecond))
		},
		DelayCommit: delayCommit,
		Short:       testing.Short(),
	})
}

// delayCommit makes the next append to stream stop inside its transaction,
// after its rows took their positions, until release: an AFTER INSERT
// trigger waits for an advisory lock that a second connection holds.
func delayCommit(t *testing.T, st es.Store, stream string) (waitBlocked, release func()) {
	t.Helper()
	s := st.(*pgstore.Store)
	ctx := context.Background()
	key := rand.Int32N(1<<30) + 1
	schema := pgx.Identifier{s.Schema()}.Sanitize()
	fn := fmt.Sprintf("%s.hold_%d", schema, key)
	ddl := fmt.Sprintf(`CREATE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stream_id = %[2]s THEN PERFORM pg_advisory_xact_lock_shared(%[3]d); END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER hold_%[3]d AFTER INSERT ON %[4]s.events FOR EACH ROW EXECUTE FUNCTION %[1]s();`,
		fn, quoteLiteral(stream), key, schema)
	if _, err := s.Pool().Exec(ctx, ddl); err != nil {
		t.Fatalf("install hold trigger: %v", err)
	}
	holder, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(key)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := holder.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(key)); err != nil {
				t.Errorf("release hold: %v", err)
			}
			holder.Release()
		})
	}
	t.Cleanup(func() {
		release()
		_, _ = s.Pool().Exec(ctx, fmt.Sprintf(`DROP TRIGGER IF EXISTS hold_%d ON %s.events`, key, schema))
	})
	waitBlocked = func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var waiting int
			err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = $1`, int64(key)).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("append to %q never reached the hold trigger", stream)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return waitBlocked, release
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// queryCounter counts the statements a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countedStore returns a store on a fresh database whose pool counts the
// statements it sends. Notifications are off so that only the calls under
// test send statements.
func countedStore(t *testing.T) (*pgstore.Store, *queryCounter) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return newStore(t, pool, pgstore.WithNotify(false)), counter
}

func TestAppend_OneStatementWhateverTheBatchSize(t *testing.T) {
	ctx := context.Background()
	s, counter := countedStore(t)
	for _, n := range []int{1, 100, 1000} {
		before := counter.n.Load()
		if _, err := s.Append(ctx, fmt.Sprintf("batch-%d", n), es.NoStream, estest.Events("test.Happened", n)...); err != nil {
			t.Fatal(err)
		}
		if got := counter.n.Load() - before; got != 1 {
			t.Errorf("append of %d events sent %d statements, want 1", n, got)
		}
	}
}

func TestSubscribe_WokenByNotifyFromAnotherStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := pgtest.URL(t)
	open := func() *pgstore.Store {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		// With an hour between polls, only a notification can deliver.
		return newStore(t, pool, pgstore.WithPollInterval(time.Hour))
	}
	writer, reader := open(), open()
	got := make(chan es.Event, 1)
	go func() {
		for e, err := range reader.Subscribe(ctx, es.Position{}, es.Filter{}) {
			if err != nil {
				return
			}
			got <- e
			return
		}
	}()
	// Let the subscription reach its wait before the append.
	time.Sleep(200 * time.Millisecond)
	want := estest.Events("test.Happened", 1)
	if _, err := writer.Append(ctx, "notified", es.NoStream, want...); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.ID != want[0].ID || e.StreamID != "notified" {
			t.Fatalf("subscriber got %s in %q, want %s in \"notified\"", e.ID, e.StreamID, want[0].ID)
		}
	case <-ctx.Done():
		t.Fatal("subscriber in another store was not woken by NOTIFY")
	}
}

func TestAppend_KilledConnectionWritesNothingAndRetryWritesOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	s := newStore(t, pool)
	waitBlocked, release := delayCommit(t, s, "killed")
	events := estest.Events("test.Happened", 3)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "killed", es.NoStream, events...)
		done <- err
	}()
	waitBlocked()
	// Kill the appending backend while its transaction is open.
	var killed int
	err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the appending backend: killed %d, %v", killed, err)
	}
	if err := <-done; err == nil {
		t.Fatal("append on a killed connection succeeded")
	}
	release()
	if evs, err := estest.Collect(s.ReadStream(ctx, "killed", es.StreamStart, es.Forward, 0)); !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatalf("after the killed append the stream has %d events (err %v), want not found", len(evs), err)
	}
	// The caller retries with the same IDs: written exactly once.
	for range 2 {
		if _, err := s.Append(ctx, "killed", es.NoStream, events...); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := estest.Collect(s.ReadStream(ctx, "killed", es.StreamStart, es.Forward, 0))
	if err != nil || len(evs) != 3 {
		t.Fatalf("after retries the stream has %d events (err %v), want 3", len(evs), err)
	}
}

func TestMigrate_ConcurrentAndRepeatedRunsApplyOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- pgstore.Migrate(ctx, pool) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := pgstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM esgen.schema_migrations WHERE set_name = 'events'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := len(pgstore.Migrations()); n != want {
		t.Fatalf("schema_migrations has %d rows for events, want %d", n, want)
	}
}

func TestStore_WithoutMigrationSaysSo(t *testing.T) {
	s, err := pgstore.New(pgtest.Pool(t), pgstore.WithSchema("never_migrated"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Append(context.Background(), "s", es.Any, estest.Events("test.Happened", 1)...)
	if err == nil || !strings.Contains(err.Error(), `schema "never_migrated" has no esgen event tables`) {
		t.Fatalf("append without tables: got %v, want an error naming the schema and the fix", err)
	}
}

func TestStore_SchemasIsolateApps(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	a := newStore(t, pool, pgstore.WithSchema("app_a"))
	b := newStore(t, pool, pgstore.WithSchema("app_b"))
	if _, err := a.Append(ctx, "shared-name", es.NoStream, estest.Events("test.Happened", 2)...); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "shared-name", es.NoStream, estest.Events("test.Happened", 1)...); err != nil {
		t.Fatalf("schema app_b sees app_a's stream: %v", err)
	}
	all, err := estest.Collect(b.ReadAll(ctx, es.Position{}, 0))
	if err != nil || len(all) != 1 {
		t.Fatalf("app_b's log has %d events (err %v), want 1", len(all), err)
	}
}

func TestNew_RejectsBadOptionsNamingEach(t *testing.T) {
	_, err := pgstore.New(nil, pgstore.WithSchema(""), pgstore.WithPageSize(0), pgstore.WithPollInterval(-time.Second))
	if err == nil {
		t.Fatal("New accepted an empty schema, a zero page size and a negative poll interval")
	}
	for _, want := range []string{"schema name is empty", "page size must be positive", "poll interval must be positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWaitVisible_WaitsForTransactionsRunningAtTheCall(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, pgtest.Pool(t))
	waitBlocked, release := delayCommit(t, s, "held")
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "held", es.NoStream, estest.Events("test.Held", 1)...)
		done <- err
	}()
	waitBlocked()
	later := estest.Events("test.Later", 1)
	if _, err := s.Append(ctx, "later", es.NoStream, later...); err != nil {
		t.Fatal(err)
	}
	// The held transaction is older than "later": global readers must not
	// see "later" yet, and WaitVisible must not return.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.WaitVisible(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitVisible with an older transaction open: %v; want the deadline to pass", err)
	}
	if all, err := estest.Collect(s.ReadAll(ctx, es.Position{}, 0)); err != nil || len(all) != 0 {
		t.Fatalf("ReadAll with an older transaction open = %d events (err %v); want 0", len(all), err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.WaitVisible(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := estest.Collect(s.ReadAll(ctx, es.Position{}, 0))
	if err != nil || len(all) != 2 || all[0].StreamID != "held" || all[1].ID != later[0].ID {
		t.Fatalf("ReadAll after WaitVisible = %d events (err %v); want held's then later's", len(all), err)
	}
}

func TestLag_CountsWhatAGlobalReaderHasYetToSee(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, pgtest.Pool(t))
	placed := estest.Events("test.Placed", 3)
	res, err := s.Append(ctx, "a", es.NoStream, append(placed, estest.Events("test.Paid", 2)...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitVisible(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		after es.Position
		types []string
		want  int64
	}{
		{"from the start, every type", es.Position{}, nil, 5},
		{"from the start, one type", es.Position{}, []string{"test.Paid"}, 2},
		{"at the head", res.Position, nil, 0},
	} {
		n, oldest, err := s.Lag(ctx, tc.after, tc.types)
		if err != nil || n != tc.want || (n > 0) == oldest.IsZero() {
			t.Errorf("%s: Lag = %d events, oldest %v (err %v); want %d", tc.name, n, oldest, err, tc.want)
		}
	}
}
