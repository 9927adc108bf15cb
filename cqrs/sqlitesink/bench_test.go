package sqlitesink_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/esgen-dev/esgen/es/sqlitestore"
)

// BenchmarkApply measures Apply of batches of the test projection (one
// UPDATE per event) on a durable file (synchronous=FULL); ns/op is per
// event.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 100, 500} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			s, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "app.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(context.Background(), "test-balances", balancesSchema); err != nil {
				b.Fatal(err)
			}
			evs := seed(b, s, 2000)
			for _, e := range evs {
				if _, err := decode(e); err != nil {
					b.Fatal(err)
				}
			}
			sink := newSink(b, s)
			b.ResetTimer()
			applied, round := 0, 0
			for applied < b.N {
				proj := fmt.Sprint("p", round)
				for i := 0; i < len(evs) && applied < b.N; i += size {
					batch := evs[i:min(i+size, len(evs))]
					if err := sink.Apply(context.Background(), proj, batch, handler(proj)); err != nil {
						b.Fatal(err)
					}
					applied += len(batch)
				}
				round++
			}
		})
	}
}
