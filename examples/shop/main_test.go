package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/es/sqlitestore"
	reportv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/report/v1"
	"github.com/esgen-dev/esgen/internal/esfake"
	"github.com/esgen-dev/esgen/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// session runs the command with args and returns what it printed.
func session(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, args); err != nil {
		t.Fatalf("run %q: %v\noutput so far:\n%s", args, err, out.String())
	}
	return out.String()
}

// mustContain fails unless out has every line of want, in that order.
func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("output lacks %q (after the lines before it)\noutput:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}

const golden = "testdata/session-memory.golden"

func TestRun_MemoryPrintsTheGoldenSessionEveryTime(t *testing.T) {
	first := session(t, "-store", "memory")
	if *update {
		if err := os.WriteFile(golden, []byte(first), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if first != string(want) {
		t.Fatalf("output differs from %s (go test ./examples/shop -run Golden -update rewrites it)\ngot:\n%s", golden, first)
	}
	// A memory store starts empty every time.
	if second := session(t, "-store", "memory"); second != first {
		t.Fatalf("second run on a new memory store differs:\n%s", second)
	}
}

func TestRun_SQLiteContinuesOnTheSameFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shop.db")
	first := session(t, "-db", db) // sqlite is the default
	mustContain(t, first,
		"shop on sqlite ("+db+")",
		"0 orders in the log; this session places ord-0001 to ord-0003",
		"RegisterItem mug, 10 on hand             recorded ItemRegistered (Item-mug v1)",
		"ChargePayment re-sent, same command ID   already handled, nothing appended (Payment-ord-0001 v1)",
		"summary: 3 orders (1 shipped, 2 cancelled, 0 open); charged €46.49, refunded €12.50",
		"stock: mug 8 on hand, 0 reserved",
	)
	second := session(t, "-store", "sqlite", "-db", db)
	mustContain(t, second,
		"3 orders in the log; this session places ord-0004 to ord-0006",
		"mug                                      8 on hand, 0 reserved (Item-mug v5)",
		"PlaceOrder for cust-ada                  recorded OrderPlaced (Order-ord-0004 v1)",
		"ChargePayment re-sent, same command ID   already handled, nothing appended (Payment-ord-0004 v1)",
		"reserve 50 mug for ord-0005: only 6 available: not enough stock",
		"summary: 6 orders (2 shipped, 4 cancelled, 0 open); charged €92.98, refunded €25.00",
		"stock: mug 6 on hand, 0 reserved (Item-mug v9",
		"stock: tea 18 on hand, 0 reserved (Item-tea v9",
	)
	// The summary is a table in the same file, kept by the projection
	// runner with its checkpoint.
	st, err := sqlitestore.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var orders, charged, checkpoints int64
	row := st.ReadDB().QueryRow(`SELECT orders, charged_cents,
		(SELECT count(*) FROM projection_checkpoints WHERE projection = ?) FROM summary WHERE id = 1`, reportv1.SummaryProjectionName)
	if err := row.Scan(&orders, &charged, &checkpoints); err != nil || orders != 6 || charged != 9298 || checkpoints != 1 {
		t.Fatalf("summary table: %d orders, %d cents charged, %d checkpoints (err %v); want 6, 9298 and 1", orders, charged, checkpoints, err)
	}
}

func TestRun_PostgresContinuesInTheSameDatabase(t *testing.T) {
	url := pgtest.URL(t)
	first := session(t, "-store", "postgres", "-database-url", url)
	mustContain(t, first,
		"shop on postgres\n",
		"0 orders in the log",
		"ChargePayment re-sent, same command ID   already handled, nothing appended (Payment-ord-0001 v1)",
		"ShipStock mug, decided on v4             conflict: Item-mug is at v5, nothing appended",
		"summary: 3 orders (1 shipped, 2 cancelled, 0 open)",
		// pgstore is also a snapshot store: Item snapshots every 5 events.
		"stock: mug 8 on hand, 0 reserved (Item-mug v5, snapshot at v5)",
	)
	if strings.Contains(first, url) {
		t.Fatalf("the output shows the database URL:\n%s", first)
	}
	t.Setenv("DATABASE_URL", url)
	second := session(t, "-store", "postgres")
	mustContain(t, second,
		"3 orders in the log; this session places ord-0004 to ord-0006",
		"summary: 6 orders (2 shipped, 4 cancelled, 0 open); charged €92.98, refunded €25.00",
		"stock: mug 6 on hand, 0 reserved (Item-mug v9, snapshot at v5)",
	)
	pool := pgtestPool(t, url)
	var orders, refunded, checkpoints int64
	err := pool.QueryRow(context.Background(), `SELECT orders, refunded_cents,
		(SELECT count(*) FROM esgen.projection_checkpoints WHERE projection = $1) FROM shop.summary WHERE id = 1`,
		reportv1.SummaryProjectionName).Scan(&orders, &refunded, &checkpoints)
	if err != nil || orders != 6 || refunded != 2500 || checkpoints != 1 {
		t.Fatalf("summary table: %d orders, %d cents refunded, %d checkpoints (err %v); want 6, 2500 and 1", orders, refunded, checkpoints, err)
	}
}

func pgtestPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestRun_UsageErrors(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, args := range [][]string{
		{"-store", "mongo"},
		{"-no-such-flag"},
		{"extra"},
		{"-store", "postgres"},
	} {
		err := run(context.Background(), new(bytes.Buffer), args)
		if !errors.Is(err, errUsage) {
			t.Errorf("run %q: got %v, want a usage error", args, err)
		}
	}
}

func TestRun_HelpListsTheFlags(t *testing.T) {
	out := session(t, "-h")
	mustContain(t, out, "-database-url", "-db", "-store")
}

// The order documents in Elasticsearch, against the request-level model of
// the server (internal/esfake); ELASTICSEARCH_URL runs the app against a
// real cluster.
func TestRun_ElasticsearchOrderDocuments(t *testing.T) {
	fake, srv := esfake.New(t)
	db := filepath.Join(t.TempDir(), "shop.db")
	out := session(t, "-db", db, "-elasticsearch", srv.URL)
	mustContain(t, out, "search: shop-orders holds ord-0001 shipped, ord-0002 cancelled, ord-0003 cancelled")
	bulks := 0
	for _, r := range fake.Log() {
		if strings.HasSuffix(r.Path, "/_bulk") {
			bulks++
			if !strings.Contains(r.Body, `"version_type":"external"`) {
				t.Fatalf("bulk request without external versions:\n%s", r.Body)
			}
		}
	}
	if bulks == 0 {
		t.Fatal("no bulk request reached Elasticsearch")
	}
	// The second run indexes its own orders and leaves the first run's
	// documents as they were.
	out = session(t, "-db", db, "-elasticsearch", srv.URL)
	mustContain(t, out, "search: shop-orders holds ord-0004 shipped, ord-0005 cancelled, ord-0006 cancelled")

	// A blue/green rebuild builds shop-orders_v2 from the log and swaps
	// the alias; searches then read every order from it.
	fake.ResetLog()
	out = session(t, "-db", db, "-elasticsearch", srv.URL, "-rebuild-search")
	mustContain(t, out, "search: rebuilt shop-orders into shop-orders_v2",
		"search: shop-orders holds ord-0007 shipped, ord-0008 cancelled, ord-0009 cancelled")
	var created, dropped bool
	for _, r := range fake.Log() {
		created = created || (r.Method == "PUT" && r.Path == "/shop-orders_v2" && strings.Contains(r.Body, `"status":{"type":"keyword"}`))
		dropped = dropped || (r.Method == "DELETE" && r.Path == "/shop-orders_v1")
	}
	if !created || !dropped {
		t.Fatalf("the rebuild created shop-orders_v2 with its mappings: %v; dropped shop-orders_v1: %v", created, dropped)
	}
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Get("shop-orders", "ord-0001")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Index  string         `json:"_index"`
		Source map[string]any `json:"_source"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || doc.Index != "shop-orders_v2" || doc.Source["status"] != "shipped" {
		t.Fatalf("ord-0001 after the rebuild: %+v, %v", doc, err)
	}
}

func TestRun_RebuildSearchNeedsElasticsearch(t *testing.T) {
	t.Setenv("ELASTICSEARCH_URL", "")
	var out strings.Builder
	err := run(t.Context(), &out, []string{"-db", filepath.Join(t.TempDir(), "shop.db"), "-rebuild-search"})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "-rebuild-search needs -elasticsearch") {
		t.Fatalf("run -rebuild-search without Elasticsearch: %v", err)
	}
}
