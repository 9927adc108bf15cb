package pgsink_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/internal/pgtest"
)

// BenchmarkReplay replays a log into a read model of one row per stream,
// one upsert per event, through a Runner and the Sink, and reports
// events/s beside two server-side baselines on the same rows in the same
// run:
//
//   - raw-insert-rows/s: one INSERT ... SELECT of every event's row into an
//     unkeyed table with the model's columns (the server's bulk insert rate);
//   - raw-upsert-rows/s: a PL/pgSQL loop doing the same upsert per event in
//     log order into a table keyed by stream (the same work as the
//     projection, minus the client and the network).
//
// Run it with durable commits:
//
//	PGTEST_DURABLE=1 go test ./cqrs/pgsink -run '^$' -bench Replay -benchtime 1x
//
// ESGEN_BENCH_EVENTS sets the log size (default 1,000,000: 10,000 streams
// of 100 events, appended 100 at a time by four writers);
// ESGEN_BENCH_BATCH the runner's batch size (default 500).
func BenchmarkReplay(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("ESGEN_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("ESGEN_BENCH_EVENTS=%q: want a positive number of events", v)
		}
		total = n
	}
	batchSize := 500
	if v := os.Getenv("ESGEN_BENCH_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("ESGEN_BENCH_BATCH=%q: want a positive batch size", v)
		}
		batchSize = n
	}
	const perStream = 100
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := pgstore.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	store, err := pgstore.New(pool, pgstore.WithLogger(quiet()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	sink, err := pgsink.Open(ctx, pool, pgsink.WithLogger(quiet()))
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
CREATE TABLE bench_model (stream_id text PRIMARY KEY, version bigint NOT NULL, pos bigint NOT NULL, data bytea NOT NULL);
CREATE TABLE raw_upsert  (stream_id text PRIMARY KEY, version bigint NOT NULL, pos bigint NOT NULL, data bytea NOT NULL);
CREATE TABLE raw_insert  (stream_id text NOT NULL, version bigint NOT NULL, pos bigint NOT NULL, data bytea NOT NULL)`)
	if err != nil {
		b.Fatal(err)
	}

	streams := (total + perStream - 1) / perStream
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < streams; i += 4 {
				evs := make([]es.EventData, min(perStream, total-i*perStream))
				for j := range evs {
					evs[j] = es.EventData{Type: "bench.v1.Updated", Data: make([]byte, 100)}
				}
				if _, err := store.Append(ctx, fmt.Sprintf("item-%05d", i), es.Any, evs...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if err := store.WaitVisible(ctx); err != nil {
		b.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d events in %s", total, time.Since(start).Round(time.Millisecond))
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE esgen.events`); err != nil {
		b.Fatal(err)
	}

	model := pgsink.NewTable("bench_model", []string{"stream_id"}, "version", "pos", "data")
	p := benchProjection{model: model}
	var replay, rawInsert, rawUpsert time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := sink.ResetFunc(ctx, p.Name(), func(ctx context.Context) error {
			_, err := pgsink.Tx(ctx).Exec(ctx, `TRUNCATE bench_model, raw_upsert, raw_insert`)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
			b.Fatal(err)
		}
		r, err := cqrs.NewRunner(store, sink, p, cqrs.WithBatch(batchSize, 100*time.Millisecond), cqrs.WithRunnerLogger(quiet()))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		for r.Status().Checkpoint != head {
			select {
			case err := <-done:
				b.Fatalf("Run returned early: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		replay += time.Since(t0)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		var rows int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM bench_model WHERE version = $1`, perStream).Scan(&rows); err != nil {
			b.Fatal(err)
		}
		if rows != total/perStream {
			b.Fatalf("read model has %d complete rows, want %d", rows, total/perStream)
		}

		t0 = time.Now()
		if _, err := pool.Exec(ctx, `INSERT INTO raw_insert SELECT stream_id, version, position, data FROM esgen.events ORDER BY tx, position`); err != nil {
			b.Fatal(err)
		}
		rawInsert += time.Since(t0)
		t0 = time.Now()
		if _, err := pool.Exec(ctx, `DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT stream_id, version, position, data FROM esgen.events ORDER BY tx, position LOOP
        INSERT INTO raw_upsert VALUES (r.stream_id, r.version, r.position, r.data)
        ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, pos = EXCLUDED.pos, data = EXCLUDED.data;
    END LOOP;
END $$`); err != nil {
			b.Fatal(err)
		}
		rawUpsert += time.Since(t0)
		b.StartTimer()
	}
	n := float64(b.N * total)
	b.ReportMetric(n/replay.Seconds(), "events/s")
	b.ReportMetric(n/rawInsert.Seconds(), "raw-insert-rows/s")
	b.ReportMetric(n/rawUpsert.Seconds(), "raw-upsert-rows/s")
}

type benchProjection struct{ model *pgsink.Table }

func (benchProjection) Name() string         { return "bench" }
func (benchProjection) EventTypes() []string { return []string{"bench.v1.Updated"} }
func (p benchProjection) Handle(ctx context.Context, rec es.Event) error {
	return p.model.Upsert(ctx, rec.StreamID, rec.Version, int64(rec.Position.Prepare), rec.Data)
}
