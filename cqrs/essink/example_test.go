package essink

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	"github.com/esgen-dev/esgen/internal/esfake"
)

// A projection keeps one document per order. Applying an older batch again,
// as a replay does, leaves the newer document in place.
func ExampleSink() {
	srv := httptest.NewServer(esfake.NewServer()) // stands in for Elasticsearch
	defer srv.Close()
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		panic(err)
	}
	sink, err := New(client)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	handle := func(ctx context.Context, rec es.Event) error {
		return Index(ctx, "orders", rec.StreamID, map[string]any{"status": rec.Type})
	}
	batch := []es.Event{
		{StreamID: "order-1", Type: "OrderPlaced", Version: 1, Position: es.Position{Commit: 1, Prepare: 1}},
		{StreamID: "order-1", Type: "OrderPaid", Version: 2, Position: es.Position{Commit: 2, Prepare: 2}},
	}
	if err := sink.Apply(ctx, "orders", batch, handle); err != nil {
		panic(err)
	}
	if err := sink.Apply(ctx, "orders", batch[:1], handle); err != nil { // a replay
		panic(err)
	}

	cp, err := sink.Checkpoint(ctx, "orders")
	if err != nil {
		panic(err)
	}
	fmt.Println("checkpoint:", cp)

	res, err := client.Get("orders", "order-1")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var doc struct {
		Version int64             `json:"_version"`
		Source  map[string]string `json:"_source"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		panic(err)
	}
	fmt.Printf("order-1: %s, version %d (position 2/2 packed)\n", doc.Source["status"], doc.Version)
	// Output:
	// checkpoint: 2/2
	// order-1: OrderPaid, version 4294967298 (position 2/2 packed)
}

// statusDocs keeps each order's last event type in the index behind the
// alias "orders".
type statusDocs struct{}

func (statusDocs) Name() string         { return "order-status" }
func (statusDocs) EventTypes() []string { return nil } // all
func (statusDocs) Handle(ctx context.Context, rec es.Event) error {
	// Name is the alias, or during a rebuild the index being built.
	return Index(ctx, Name(ctx, "orders"), rec.StreamID, map[string]any{"status": rec.Type})
}

// Rebuild builds the read model into the next versioned index and swaps the
// alias; the first rebuild also creates the alias.
func ExampleSink_Rebuild() {
	srv := httptest.NewServer(esfake.NewServer()) // stands in for Elasticsearch
	defer srv.Close()
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		panic(err)
	}
	sink, err := New(client)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	store := memstore.New()
	for _, typ := range []string{"OrderPlaced", "OrderPaid"} {
		if _, err := store.Append(ctx, "order-1", es.Any, es.EventData{Type: typ, Data: []byte{}}); err != nil {
			panic(err)
		}
	}
	opts := RebuildOptions{Indexes: []IndexSpec{{
		Alias: "orders",
		Body:  []byte(`{"mappings":{"properties":{"status":{"type":"keyword"}}}}`),
	}}}
	for range 2 {
		if err := sink.Rebuild(ctx, store, statusDocs{}, opts); err != nil {
			panic(err)
		}
		live, err := sink.ResolveAlias(ctx, "orders")
		if err != nil {
			panic(err)
		}
		fmt.Println("orders →", live)
	}
	// Output:
	// orders → [orders_v1]
	// orders → [orders_v2]
}
