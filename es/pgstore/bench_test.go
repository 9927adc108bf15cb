package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/internal/pgtest"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// The benchmarks compare esgen with a raw baseline on the same server in the
// same run: plain pgx INSERTs (or COPY) of identical rows into a table with
// the same columns and indexes, with the client already knowing each row's
// version, so the baseline does no checking at all.
//
//	PGTEST_DURABLE=1 go test ./es/pgstore -run '^$' -bench . -benchtime 3s
//
// ESGEN_BENCH_EVENTS sets the log size of BenchmarkReadAll (default 1,000,000).

const rawTable = `CREATE TABLE raw_events (
    position    bigint      GENERATED ALWAYS AS IDENTITY,
    tx          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL,
    id          uuid        NOT NULL,
    type        text        NOT NULL,
    data        bytea       NOT NULL,
    metadata    jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tx, position),
    UNIQUE (stream_id, version),
    UNIQUE (id)
)`

func benchSetup(b *testing.B) (*pgstore.Store, *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := pgstore.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, rawTable); err != nil {
		b.Fatal(err)
	}
	s, err := pgstore.New(pool)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, pool
}

// benchEvent is a typical small event: a ~120-byte protobuf payload with
// correlation and causation IDs.
func benchEvent() es.EventData {
	return es.EventData{
		ID:   es.NewID(),
		Type: "shop.order.v1.OrderPlaced",
		Data: make([]byte, 120),
		Metadata: es.Metadata{
			CorrelationID: "6a1f0c1e-94b1-4b2e-9d27-5f7f0a7e1c11",
			CausationID:   "0b5a3b8e-2f0e-4a6b-8d8c-3c1e7a9d2f44",
		},
	}
}

func metaJSON(e es.EventData) string { return string(e.Metadata.AppendJSON(nil)) }

const rawInsert = `INSERT INTO raw_events (stream_id, version, id, type, data, metadata) VALUES ($1, $2, $3, $4, $5, $6)`

// paired times two ways of doing the same thing, alternating them in one
// loop so that load from anything else on the machine hits both alike, from
// n goroutines (b.N calls of each in all). It reports each side's mean and
// percentiles and the ratio of esgen's throughput to the baseline's
// (baseline mean / esgen mean). ns/op covers both sides together.
func paired(b *testing.B, n int, esgen, raw func(stream string, i int64) error) {
	b.Helper()
	var esLat, rawLat latencies
	var streams, calls atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			id := strconv.FormatInt(streams.Add(1), 10) + "-" + es.NewID().String()
			for i := int64(1); ; i++ {
				if calls.Add(1) > int64(b.N) {
					return
				}
				start := time.Now()
				if err := esgen("es-"+id, i); err != nil {
					b.Error(err)
					return
				}
				esLat.add(time.Since(start))
				start = time.Now()
				if err := raw("raw-"+id, i); err != nil {
					b.Error(err)
					return
				}
				rawLat.add(time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	esMean, rawMean := esLat.mean(), rawLat.mean()
	b.ReportMetric(esMean, "esgen-µs/op")
	b.ReportMetric(rawMean, "raw-µs/op")
	b.ReportMetric(rawMean/esMean, "ratio")
	b.ReportMetric(esLat.at(0.50), "esgen-p50-µs")
	b.ReportMetric(esLat.at(0.99), "esgen-p99-µs")
	b.ReportMetric(rawLat.at(0.50), "raw-p50-µs")
	b.ReportMetric(rawLat.at(0.99), "raw-p99-µs")
}

// BenchmarkAppend appends one event per transaction: esgen.Append with an
// exact expected version against a plain INSERT of the same row.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) {
			s, pool := benchSetup(b)
			paired(b, n,
				func(stream string, v int64) error {
					_, err := s.Append(ctx, stream, es.Exact(v-1), benchEvent())
					return err
				},
				func(stream string, v int64) error {
					e := benchEvent()
					_, err := pool.Exec(ctx, rawInsert, stream, v, [16]byte(e.ID), e.Type, e.Data, metaJSON(e))
					return err
				})
		})
	}
}

// BenchmarkAppendBatch100 appends 100 events per transaction: esgen.Append
// against the faster of a multi-row INSERT from arrays and COPY, run as
// separate pairs.
func BenchmarkAppendBatch100(b *testing.B) {
	ctx := context.Background()
	const size = 100
	batch := func() []es.EventData {
		evs := make([]es.EventData, size)
		for i := range evs {
			evs[i] = benchEvent()
		}
		return evs
	}
	esgen := func(s *pgstore.Store) func(string, int64) error {
		return func(stream string, i int64) error {
			_, err := s.Append(ctx, stream+"-"+strconv.FormatInt(i, 10), es.NoStream, batch()...)
			return err
		}
	}
	b.Run("vs=insert", func(b *testing.B) {
		s, pool := benchSetup(b)
		paired(b, 1, esgen(s), func(stream string, i int64) error {
			versions := make([]int64, size)
			ids := make([][16]byte, size)
			types := make([]string, size)
			data := make([][]byte, size)
			metas := make([]string, size)
			for j, e := range batch() {
				versions[j], ids[j], types[j], data[j], metas[j] = int64(j+1), e.ID, e.Type, e.Data, metaJSON(e)
			}
			_, err := pool.Exec(ctx, `INSERT INTO raw_events (stream_id, version, id, type, data, metadata)
				SELECT $1, u.v, u.id, u.type, u.data, u.meta::jsonb
				FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::bytea[], $6::text[]) AS u(v, id, type, data, meta)`,
				stream+"-"+strconv.FormatInt(i, 10), versions, ids, types, data, metas)
			return err
		})
	})
	b.Run("vs=copy", func(b *testing.B) {
		s, pool := benchSetup(b)
		paired(b, 1, esgen(s), func(stream string, i int64) error {
			name := stream + "-" + strconv.FormatInt(i, 10)
			rows := make([][]any, size)
			for j, e := range batch() {
				rows[j] = []any{name, int64(j + 1), [16]byte(e.ID), e.Type, e.Data, metaJSON(e)}
			}
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"raw_events"},
				[]string{"stream_id", "version", "id", "type", "data", "metadata"}, pgx.CopyFromRows(rows))
			return err
		})
	})
}

// BenchmarkReadAll reads the whole log from position zero, decoding every
// event, once per iteration. Run it with -benchtime 1x or 3x.
func BenchmarkReadAll(b *testing.B) {
	b.StopTimer()
	ctx := context.Background()
	total := 1_000_000
	if v := os.Getenv("ESGEN_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("ESGEN_BENCH_EVENTS=%q: want a positive number of events", v)
		}
		total = n
	}
	s, _ := benchSetup(b)
	const perAppend = 1000
	for i := 0; i < total; i += perAppend {
		evs := make([]es.EventData, min(perAppend, total-i))
		for j := range evs {
			evs[j] = benchEvent()
		}
		if _, err := s.Append(ctx, "load-"+strconv.Itoa(i/perAppend%1000), es.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadAll(ctx, es.Position{}, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}

// latencies collects per-call durations for percentile metrics.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) mean() float64 {
	var sum time.Duration
	for _, d := range l.d {
		sum += d
	}
	return float64(sum.Microseconds()) / float64(max(1, len(l.d)))
}

// at returns the p-th percentile in microseconds.
func (l *latencies) at(p float64) float64 {
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds())
}

// BenchmarkHandle measures commands per second through the repository on
// Postgres, each command opening a new aggregate (load, decide, append).
func BenchmarkHandle(b *testing.B) {
	ctx := context.Background()
	for _, clients := range []int{1, 8} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			s, _ := benchSetup(b)
			r := newRepo(b, s)
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range clients {
				wg.Go(func() {
					for n.Add(1) <= int64(b.N) {
						if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: es.NewID().String(), Owner: "bench"}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
		})
	}
}

// BenchmarkLoad loads an aggregate of 10,000 events from Postgres, with
// and without snapshots (every 50 events).
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	s, _ := benchSetup(b)
	with := newRepo(b, s)
	without, err := es.NewRepository(s, testagg.New())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := with.Handle(ctx, &testaggv1.Open{AccountId: "big"}); err != nil {
		b.Fatal(err)
	}
	for range 9_999 {
		if _, err := with.Handle(ctx, &testaggv1.Deposit{AccountId: "big", Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
	for name, r := range map[string]*accountRepo{"snapshots=false": without, "snapshots=true": with} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, v, err := r.Load(ctx, "big"); err != nil || v != 10_000 {
					b.Fatalf("Load = version %d, %v", v, err)
				}
			}
		})
	}
}
