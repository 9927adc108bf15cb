package sqlitestore_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/sqlitestore"
)

// benchEvents returns n events of about 200 bytes of data, with metadata, and
// zero IDs (the store assigns them), as a typical command produces.
func benchEvents(n int) []es.EventData {
	evs := make([]es.EventData, n)
	data := make([]byte, 200)
	for i := range evs {
		evs[i] = es.EventData{
			Type:     "shop.order.v1.ItemAdded",
			Data:     data,
			Metadata: es.Metadata{CorrelationID: "0190f6f2-3c1e-7d7a-9a4e-1f2e3d4c5b6a", UserID: "user-42"},
		}
	}
	return evs
}

func benchStore(b *testing.B, opts ...sqlitestore.Option) *sqlitestore.Store {
	b.Helper()
	s, err := sqlitestore.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkAppend(b *testing.B) {
	for _, sync := range []struct {
		name string
		opts []sqlitestore.Option
	}{
		{"sync=full", nil},
		{"sync=normal", []sqlitestore.Option{sqlitestore.WithRelaxedSync()}},
	} {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("events=%d/%s", n, sync.name), func(b *testing.B) {
				s := benchStore(b, sync.opts...)
				evs := benchEvents(n)
				i := 0
				for b.Loop() {
					// Spread appends over streams, as many aggregates do.
					stream := fmt.Sprintf("order-%d", i%1000)
					if _, err := s.Append(b.Context(), stream, es.Any, evs...); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

func BenchmarkReadAll(b *testing.B) {
	const total = 100_000
	s := benchStore(b, sqlitestore.WithRelaxedSync())
	batch := benchEvents(1000)
	for i := range total / len(batch) {
		if _, err := s.Append(b.Context(), fmt.Sprintf("order-%d", i), es.NoStream, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadAll(b.Context(), es.Position{}, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != total {
			b.Fatalf("ReadAll yielded %d events; want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}
