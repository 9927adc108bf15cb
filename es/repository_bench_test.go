package es_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// BenchmarkHandle measures a whole command on memstore — route, load,
// decide, encode, append — so ns/op and allocs/op are the framework's own
// cost per command. Each command opens a new aggregate.
//
//	go test ./es -run '^$' -bench Handle -benchmem
func BenchmarkHandle(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			ctx := context.Background()
			r, err := es.NewRepository(memstore.New(), testagg.New())
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(clients)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := strconv.FormatInt(n.Add(1), 10)
					if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: id, Owner: "bench"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
		})
	}
}

// BenchmarkLoad loads an aggregate of 10,000 events, with and without
// snapshots (taken every 50 events), on memstore.
func BenchmarkLoad(b *testing.B) {
	for _, snapshots := range []bool{false, true} {
		b.Run("snapshots="+strconv.FormatBool(snapshots), func(b *testing.B) {
			ctx := context.Background()
			store := memstore.New()
			var opts []es.RepositoryOption
			if snapshots {
				opts = append(opts, es.WithSnapshots(store))
			}
			r, err := es.NewRepository(store, testagg.New(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Handle(ctx, &testaggv1.Open{AccountId: "big"}); err != nil {
				b.Fatal(err)
			}
			for range 9_999 {
				if _, err := r.Handle(ctx, &testaggv1.Deposit{AccountId: "big", Amount: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, v, err := r.Load(ctx, "big"); err != nil || v != 10_000 {
					b.Fatalf("Load = version %d, %v", v, err)
				}
			}
		})
	}
}
