package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/essink"
	"github.com/esgen-dev/esgen/es"
	orderv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/order/v1"
)

// ordersIndex is the alias of the Elasticsearch index of the order
// documents. Searches and the projection use the alias; the index behind it
// is versioned (shop-orders_v1, _v2...), and each rebuild builds the next.
const ordersIndex = "shop-orders"

// ordersSpec is the alias and the settings and mappings of each version of
// the index behind it.
var ordersSpec = essink.IndexSpec{Alias: ordersIndex, Body: []byte(`{"mappings":{"properties":{
	"order_id":{"type":"keyword"},"customer_id":{"type":"keyword"},"status":{"type":"keyword"},
	"lines":{"type":"integer"},"total_cents":{"type":"long"},"paid_cents":{"type":"long"}}}}`)}

type orderRepo = es.Repository[*orderv1.Order, orderv1.OrderCommand, orderv1.OrderEvent]

// orderDoc is the document of one order, for search.
type orderDoc struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Status     string `json:"status"`
	Lines      int    `json:"lines"`
	TotalCents int64  `json:"total_cents"`
	PaidCents  int64  `json:"paid_cents"`
}

// orderDocs is a projection that keeps one Elasticsearch document per order:
// the order's state, loaded from its stream, written with the event's log
// position as its external version. Elasticsearch keeps a write only when
// its version is above the stored one, so a replay or a duplicate never takes
// a document back to an older state.
type orderDocs struct{ orders *orderRepo }

func (orderDocs) Name() string { return "shop-order-docs" }

func (orderDocs) EventTypes() []string {
	return []string{orderv1.OrderPlacedEventType, orderv1.OrderPaidEventType,
		orderv1.OrderShippedEventType, orderv1.OrderCancelledEventType}
}

func (p orderDocs) Handle(ctx context.Context, rec es.Event) error {
	id, ok := orderv1.OrderIDFromStream(rec.StreamID)
	if !ok {
		return fmt.Errorf("event %d of stream %q: not an order stream", rec.Version, rec.StreamID)
	}
	order, _, err := p.orders.Load(ctx, id)
	if err != nil {
		return err
	}
	// essink.Name is the alias, or during a rebuild the index being built.
	return essink.Index(ctx, essink.Name(ctx, ordersIndex), id, orderDoc{
		OrderID:    id,
		CustomerID: order.GetCustomerId(),
		Status:     strings.ToLower(strings.TrimPrefix(order.GetStatus().String(), "ORDER_STATUS_")),
		Lines:      len(order.GetLines()),
		TotalCents: order.GetTotalCents(),
		PaidCents:  order.GetPaidCents(),
	})
}

// searchModel is the order documents in Elasticsearch.
type searchModel struct {
	client *elasticsearch.Client
	sink   *essink.Sink
	logger *slog.Logger
}

func openSearch(url string, logger *slog.Logger) (*searchModel, error) {
	client, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{url},
		// The sink retries, with backoff, and its breaker must see failures.
		DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client for %s: %w", url, err)
	}
	sink, err := essink.New(client, essink.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	return &searchModel{client: client, sink: sink, logger: logger}, nil
}

// update brings the order documents up to the log. The first run builds
// the index the way a rebuild does, which creates it and the alias.
func (m *searchModel) update(ctx context.Context, store es.Store, orders *orderRepo) error {
	live, err := m.sink.ResolveAlias(ctx, ordersIndex)
	if err != nil {
		return err
	}
	if len(live) == 0 {
		if _, err := m.rebuild(ctx, store, orders); err != nil {
			return err
		}
	}
	return catchUp(ctx, store, m.sink, orderDocs{orders}, m.logger)
}

// rebuild builds the next version of the order documents from the log,
// blue/green, and returns the index now behind the alias. Searches read the
// current version until the alias swaps to the new one.
func (m *searchModel) rebuild(ctx context.Context, store es.Store, orders *orderRepo) (string, error) {
	err := m.sink.Rebuild(ctx, store, orderDocs{orders}, essink.RebuildOptions{
		Indexes: []essink.IndexSpec{ordersSpec},
		Runner: []cqrs.RunnerOption{cqrs.WithRunnerConfig(cqrs.RunnerConfig{
			MaxWait: 5 * time.Millisecond, CheckpointInterval: 5 * time.Millisecond, Logger: m.logger})},
	})
	if err != nil {
		return "", err
	}
	live, err := m.sink.ResolveAlias(ctx, ordersIndex)
	if err != nil || len(live) != 1 {
		return "", fmt.Errorf("alias %s after the rebuild: %v, %w", ordersIndex, live, err)
	}
	return live[0], nil
}

// status reads one order's status back from its document.
func (m *searchModel) status(ctx context.Context, id string) (string, error) {
	res, err := m.client.Get(ordersIndex, id, m.client.Get.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("get %s/%s: %w", ordersIndex, id, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return "missing", nil
	}
	body, err := io.ReadAll(res.Body)
	if err != nil || res.IsError() {
		return "", fmt.Errorf("get %s/%s: %s %s", ordersIndex, id, res.Status(), body)
	}
	var got struct {
		Source orderDoc `json:"_source"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return "", fmt.Errorf("decode %s/%s: %w", ordersIndex, id, err)
	}
	return got.Source.Status, nil
}
