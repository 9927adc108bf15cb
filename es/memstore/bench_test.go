package memstore_test

import (
	"fmt"
	"testing"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/memstore"
)

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s := memstore.New()
			ctx := b.Context()
			evs := estest.Events("Bench", n)
			for i := range evs {
				evs[i].ID = es.ID{} // fresh IDs, so no append is a retry
				evs[i].Data = make([]byte, 200)
			}
			b.ReportAllocs()
			b.SetBytes(int64(n * 200))
			i := 0
			for b.Loop() {
				if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i%1000), es.Any, evs...); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	const total = 100_000
	s := memstore.New()
	ctx := b.Context()
	for i := 0; i < total; i += 1000 {
		evs := estest.Events("Bench", 1000)
		for j := range evs {
			evs[j].Data = make([]byte, 200)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", i/1000), es.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(total * 200)
	for b.Loop() {
		n := 0
		for _, err := range s.ReadAll(ctx, es.Position{}, 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != total {
			b.Fatalf("read %d events; want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/event")
}
