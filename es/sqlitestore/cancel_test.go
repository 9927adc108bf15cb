package sqlitestore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/sqlitestore"
)

// A context cancelled at any moment of an Append, or of a read, must cost
// that call only: the store's single writer connection (and its readers)
// must keep working. modernc.org/sqlite can otherwise leave a statement
// un-reset and fail every later statement on the connection.
func TestCancelledCallsNeverBreakTheConnections(t *testing.T) {
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "cancel.db"), sqlitestore.WithRelaxedSync())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tries := 1500
	if testing.Short() {
		tries = 500
	}
	var written int64
	for i := range tries {
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			time.Sleep(time.Duration(rand.N(300)) * time.Microsecond)
			cancel()
		}()
		if _, err := st.Append(cctx, "s", es.Any, estest.Events("test.Maybe", 1)...); err == nil {
			written++
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("try %d: a cancelled append failed with %v; want context.Canceled", i, err)
		}
		for range st.ReadAll(cctx, es.Position{}, 5) {
		}
		cancel()
		if _, err := st.Append(ctx, "s", es.Any, estest.Events("test.Sure", 1)...); err != nil {
			t.Fatalf("try %d: an append after a cancelled one failed: %v", i, err)
		}
		written++
		if _, err := st.Head(ctx); err != nil {
			t.Fatalf("try %d: a read after a cancelled one failed: %v", i, err)
		}
	}
	all, err := estest.Collect(st.ReadStream(ctx, "s", es.StreamStart, es.Forward, 0))
	if err != nil || int64(len(all)) != written {
		t.Fatalf("stream has %d events (err %v); %d appends reported success", len(all), err, written)
	}
}
