package essink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/internal/esfake"
)

// target is where a behaviour test runs: the fake server, or a real cluster
// when ELASTICSEARCH_URL is set.
type target struct {
	client *elasticsearch.Client
	fake   *esfake.Server // nil on a real cluster
	prefix string         // prepended to every index name the test uses
}

func (tg target) index(name string) string { return tg.prefix + name }

// fastOpts keep retries and the breaker quick in tests.
func fastOpts(tg target) []Option {
	return []Option{
		WithBackoff(time.Millisecond, 5*time.Millisecond),
		WithBreaker(5, 50*time.Millisecond),
		WithCheckpointIndex(tg.index("checkpoints")),
		WithStatusIndex(tg.index("status")),
		WithParkedIndex(tg.index("parked")),
		WithLogger(discard()),
	}
}

func newClient(t testing.TB, url string) *elasticsearch.Client {
	t.Helper()
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fakeTarget(t testing.TB) target {
	f, srv := esfake.New(t)
	return target{client: newClient(t, srv.URL), fake: f}
}

// eachTarget runs fn against the fake and, when ELASTICSEARCH_URL is set,
// against that cluster, with index names unique to the run.
func eachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	t.Run("fake", func(t *testing.T) { fn(t, fakeTarget(t)) })
	t.Run("cluster", func(t *testing.T) {
		url := os.Getenv("ELASTICSEARCH_URL")
		if url == "" {
			t.Skip("ELASTICSEARCH_URL not set: to run against a real cluster, start Elasticsearch 8 " +
				"(docker run -p 9200:9200 -e discovery.type=single-node -e xpack.security.enabled=false " +
				"docker.elastic.co/elasticsearch/elasticsearch:8.19.7) and set ELASTICSEARCH_URL=http://localhost:9200")
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		tg := target{client: newClient(t, url), prefix: "esgen_test_" + hex.EncodeToString(b) + "_"}
		t.Cleanup(func() {
			// Wildcard deletes are refused by default; the tests use these names.
			for _, n := range []string{"checkpoints", "status", "parked", "orders", "orders_v1", "orders_v2", "orders_v3", "orders_v4", "clean"} {
				res, err := tg.client.Indices.Delete([]string{tg.index(n)})
				if err == nil {
					res.Body.Close()
				}
			}
		})
		fn(t, tg)
	})
}

func newSink(t testing.TB, tg target, opts ...Option) *Sink {
	t.Helper()
	s, err := New(tg.client, append(fastOpts(tg), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ev returns an event of an order stream at global position pos.
func ev(stream string, version int64, pos uint64, typ string) es.Event {
	return es.Event{
		ID: es.NewID(), StreamID: stream, Type: typ, Version: version,
		Position: es.Position{Commit: pos, Prepare: pos}, Data: []byte{},
	}
}

// orderLog is a small log: two orders, one paid, one cancelled.
func orderLog() []es.Event {
	return []es.Event{
		ev("order-1", 1, 1, "OrderPlaced"),
		ev("order-2", 1, 2, "OrderPlaced"),
		ev("order-1", 2, 3, "OrderPaid"),
		ev("order-2", 2, 4, "OrderCancelled"),
		ev("order-1", 3, 5, "OrderShipped"),
	}
}

// orderProjection keeps one document per order in index.
func orderProjection(index string) func(ctx context.Context, rec es.Event) error {
	return func(ctx context.Context, rec es.Event) error {
		switch rec.Type {
		case "OrderPlaced":
			return Index(ctx, index, rec.StreamID, map[string]any{"order": rec.StreamID, "status": "placed", "events": rec.Version})
		case "OrderPaid":
			return Index(ctx, index, rec.StreamID, map[string]any{"order": rec.StreamID, "status": "paid", "events": rec.Version})
		case "OrderShipped":
			return Index(ctx, index, rec.StreamID, map[string]any{"order": rec.StreamID, "status": "shipped", "events": rec.Version})
		case "OrderCancelled":
			return Delete(ctx, index, rec.StreamID)
		}
		return nil
	}
}

type storedDoc struct {
	Found   bool
	Version int64
	Source  map[string]any
}

func getDoc(t testing.TB, c *elasticsearch.Client, index, id string) storedDoc {
	t.Helper()
	res, err := c.Get(index, id)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return storedDoc{}
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("get %s/%s: %d %s", index, id, res.StatusCode, b)
	}
	var r struct {
		Found   bool           `json:"found"`
		Version int64          `json:"_version"`
		Source  map[string]any `json:"_source"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return storedDoc(r)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
