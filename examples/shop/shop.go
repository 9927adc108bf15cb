package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	inventoryv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/inventory/v1"
	orderv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/order/v1"
	paymentv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/payment/v1"
	"github.com/esgen-dev/esgen/examples/shop/inventory"
	"github.com/esgen-dev/esgen/examples/shop/order"
	"github.com/esgen-dev/esgen/examples/shop/payment"
	"github.com/esgen-dev/esgen/examples/shop/rule"
)

// product is an item of the catalog the session keeps in stock.
type product struct {
	sku, name   string
	priceCents  int64
	firstStock  int64
	restockWith int64
}

var catalog = []product{
	{sku: "mug", name: "Enamel mug", priceCents: 1250, firstStock: 10, restockWith: 10},
	{sku: "tea", name: "Green tea, 100 g", priceCents: 899, firstStock: 20, restockWith: 10},
}

// restockBelow is the availability under which the session restocks an
// item, so that its orders can always be served: each session ships 2 mugs
// and 1 tea and reserves at most 3 mugs and 2 teas at a time.
const restockBelow = 3

// shop runs the scripted session: every command goes through the bus,
// which routes it to the repository of its aggregate.
type shop struct {
	out       io.Writer
	store     es.Store
	snapshots es.SnapshotStore
	model     readModel
	search    *searchModel // nil without -elasticsearch
	orders    *orderRepo
	bus       *cqrs.Bus
	items     *es.Repository[*inventoryv1.Item, inventoryv1.ItemCommand, inventoryv1.ItemEvent]
	itemAgg   inventoryv1.ItemAggregate
}

// newShop builds a repository per aggregate on store, snapshotting in
// snapshots unless it is nil, and registers them on a bus.
func newShop(out io.Writer, store es.Store, snapshots es.SnapshotStore, model readModel, logger *slog.Logger) (*shop, error) {
	var opts []es.RepositoryOption
	if snapshots != nil {
		opts = append(opts, es.WithSnapshots(snapshots))
	}
	orders, err := es.NewRepository(store, orderv1.NewOrderAggregate(order.Decider{}, order.Evolver{}), opts...)
	if err != nil {
		return nil, err
	}
	itemAgg := inventoryv1.NewItemAggregate(inventory.Decider{}, inventory.Evolver{})
	items, err := es.NewRepository(store, itemAgg, opts...)
	if err != nil {
		return nil, err
	}
	payments, err := es.NewRepository(store, paymentv1.NewPaymentAggregate(payment.Decider{}, payment.Evolver{}), opts...)
	if err != nil {
		return nil, err
	}
	bus := cqrs.NewBus(
		cqrs.Logging(logger),
		cqrs.Metadata(func(context.Context, proto.Message) es.Metadata { return es.Metadata{UserID: "shop-script"} }),
	)
	if err := errors.Join(cqrs.Register(bus, orders), cqrs.Register(bus, items), cqrs.Register(bus, payments)); err != nil {
		return nil, err
	}
	return &shop{out: out, store: store, snapshots: snapshots, model: model, orders: orders, bus: bus, items: items, itemAgg: itemAgg}, nil
}

// session runs the script: stock the catalog, then three orders, one
// shipped, one too large for the stock, one cancelled after payment.
// It continues from what the store holds, so it can run again and again.
func (s *shop) session(ctx context.Context) error {
	before, err := s.model.summary(ctx)
	if err != nil {
		return err
	}
	n := before.GetOrders()
	s.printf("%d orders in the log; this session places %s to %s\n", n, orderID(n+1), orderID(n+3))

	s.printf("\ncatalog\n")
	for _, p := range catalog {
		if err := s.stock(ctx, p); err != nil {
			return err
		}
	}
	if err := s.shipped(ctx, orderID(n+1)); err != nil {
		return err
	}
	if err := s.tooLarge(ctx, orderID(n+2)); err != nil {
		return err
	}
	if err := s.cancelled(ctx, orderID(n+3)); err != nil {
		return err
	}
	if err := s.summary(ctx); err != nil {
		return err
	}
	return s.searchReport(ctx, orderID(n+1), orderID(n+2), orderID(n+3))
}

// searchReport brings the order documents in Elasticsearch up to the log
// and reads this session's orders back from them.
func (s *shop) searchReport(ctx context.Context, ids ...string) error {
	if s.search == nil {
		return nil
	}
	if err := s.search.update(ctx, s.store, s.orders); err != nil {
		return err
	}
	var found []string
	for _, id := range ids {
		status, err := s.search.status(ctx, id)
		if err != nil {
			return err
		}
		found = append(found, id+" "+status)
	}
	s.printf("search: %s holds %s\n", ordersIndex, strings.Join(found, ", "))
	return nil
}

func orderID(n int64) string { return fmt.Sprintf("ord-%04d", n) }

// stock registers p, or restocks it when few units are left.
func (s *shop) stock(ctx context.Context, p product) error {
	item, version, err := s.items.Load(ctx, p.sku)
	if err != nil {
		return err
	}
	switch {
	case version == 0:
		_, _, err = s.send(ctx, fmt.Sprintf("%s, %d on hand", p.sku, p.firstStock),
			&inventoryv1.RegisterItem{Sku: p.sku, Name: p.name, OnHand: p.firstStock})
	case inventory.Available(item) < restockBelow:
		_, _, err = s.send(ctx, fmt.Sprintf("%d %s", p.restockWith, p.sku),
			&inventoryv1.RestockItem{Sku: p.sku, Quantity: p.restockWith})
	default:
		s.printf("  %-40s %d on hand, %d reserved (Item-%s v%d)\n", p.sku, item.GetOnHand(), item.GetReserved(), p.sku, version)
	}
	return err
}

// shipped places an order, charges it, shows that a re-sent charge is
// recognised, ships it, and shows that it can no longer be cancelled.
func (s *shop) shipped(ctx context.Context, id string) error {
	lines := []*orderv1.Line{line("mug", 2), line("tea", 1)}
	ctx = s.begin(ctx, id, "paid and shipped", lines)
	ok, err := s.placeAndReserve(ctx, id, lines)
	if !ok || err != nil {
		return err
	}
	total := totalCents(lines)
	charge := &paymentv1.ChargePayment{OrderId: id, AmountCents: total, Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD}
	// The charge carries a command ID: sent again, by a retry or after a
	// crash, it is recognised and nothing is charged twice.
	charged := es.ContextWithCommandID(ctx, "charge-"+id)
	if _, _, err := s.send(charged, money(total)+" by card", charge); err != nil {
		return err
	}
	if _, _, err := s.send(charged, "re-sent, same command ID", charge); err != nil {
		return err
	}
	// Another command ID is another charge, and the rule forbids it.
	if _, _, err := s.send(es.ContextWithCommandID(ctx, "charge-"+id+"-again"), "again, new command ID", charge); err != nil {
		return err
	}
	if _, ok, err := s.send(ctx, money(total), &orderv1.MarkOrderPaid{OrderId: id, AmountCents: total}); !ok || err != nil {
		return err
	}
	for _, l := range lines {
		if _, _, err := s.send(ctx, l.GetSku(), &inventoryv1.ShipStock{Sku: l.GetSku(), OrderId: id}); err != nil {
			return err
		}
	}
	if _, _, err := s.send(ctx, "", &orderv1.ShipOrder{OrderId: id}); err != nil {
		return err
	}
	_, _, err = s.send(ctx, "after shipping", &orderv1.CancelOrder{OrderId: id, Reason: "changed my mind"})
	return err
}

// tooLarge places an order for more mugs than there are: the reservation
// is rejected, and the order is cancelled and its other reservation
// released.
func (s *shop) tooLarge(ctx context.Context, id string) error {
	lines := []*orderv1.Line{line("tea", 1), line("mug", 50)}
	ctx = s.begin(ctx, id, "more mugs than in stock", lines)
	_, err := s.placeAndReserve(ctx, id, lines)
	return err
}

// cancelled places and pays an order, then cancels it: its stock is
// released and the payment refunded. A warehouse worker who decided to ship
// it on stale state is stopped by optimistic concurrency.
func (s *shop) cancelled(ctx context.Context, id string) error {
	lines := []*orderv1.Line{line("mug", 1)}
	ctx = s.begin(ctx, id, "paid, then cancelled and refunded", lines)
	ok, err := s.placeAndReserve(ctx, id, lines)
	if !ok || err != nil {
		return err
	}
	total := totalCents(lines)
	pay := es.ContextWithCommandID(ctx, "charge-"+id)
	if _, ok, err := s.send(pay, money(total)+" by invoice",
		&paymentv1.ChargePayment{OrderId: id, AmountCents: total, Method: paymentv1.PaymentMethod_PAYMENT_METHOD_INVOICE}); !ok || err != nil {
		return err
	}
	if _, ok, err := s.send(ctx, money(total), &orderv1.MarkOrderPaid{OrderId: id, AmountCents: total}); !ok || err != nil {
		return err
	}

	// The warehouse reads the mug's stock while the order is still paid...
	stale, staleVersion, err := s.items.Load(ctx, "mug")
	if err != nil {
		return err
	}

	res, ok, err := s.send(ctx, "customer request", &orderv1.CancelOrder{OrderId: id, Reason: "customer request"})
	if !ok || err != nil {
		return err
	}
	if _, _, err := s.send(ctx, "mug", &inventoryv1.ReleaseStock{Sku: "mug", OrderId: id}); err != nil {
		return err
	}

	// ...and, on that stale state, decides to ship the order's mug. The
	// append expects the version it read, so the store refuses it.
	if err := s.shipStale(ctx, stale, staleVersion, id); err != nil {
		return err
	}
	// The repository always loads before deciding (and on a conflict loads
	// and decides again): on the current state, the rule says no.
	if _, _, err := s.send(ctx, "mug", &inventoryv1.ShipStock{Sku: "mug", OrderId: id}); err != nil {
		return err
	}

	cancelled, _ := res.Events[0].(*orderv1.OrderCancelled)
	due := cancelled.GetRefundDueCents()
	if _, _, err := s.send(ctx, money(due+1000), &paymentv1.RefundPayment{OrderId: id, AmountCents: due + 1000, Reason: "cancelled"}); err != nil {
		return err
	}
	_, _, err = s.send(ctx, money(due), &paymentv1.RefundPayment{OrderId: id, AmountCents: due, Reason: "cancelled"})
	return err
}

// shipStale decides ShipStock on a state read earlier and appends the
// events expecting the version of that read, as the repository would if
// nothing had changed since.
func (s *shop) shipStale(ctx context.Context, stale *inventoryv1.Item, version int64, orderID string) error {
	label := fmt.Sprintf("%-40s", fmt.Sprintf("ShipStock mug, decided on v%d", version))
	events, err := s.itemAgg.Decide(ctx, stale, &inventoryv1.ShipStock{Sku: "mug", OrderId: orderID})
	if err != nil {
		return err
	}
	data := make([]es.EventData, len(events))
	for i, e := range events {
		if data[i], err = s.itemAgg.EncodeEvent(e); err != nil {
			return err
		}
	}
	_, err = s.store.Append(ctx, s.itemAgg.StreamName("mug"), es.Exact(version), data...)
	var conflict *es.ConcurrencyError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("a stale append to %s: got %v, want a concurrency error", s.itemAgg.StreamName("mug"), err)
	}
	s.printf("  %s conflict: %s is at v%d, nothing appended\n", label, conflict.Stream, conflict.Actual)
	return nil
}

// begin prints an order's header and returns ctx with the order's ID as
// the correlation ID of every event its commands record.
func (s *shop) begin(ctx context.Context, id, story string, lines []*orderv1.Line) context.Context {
	var items []string
	for _, l := range lines {
		items = append(items, fmt.Sprintf("%d %s", l.GetQuantity(), l.GetSku()))
	}
	s.printf("\norder %s: %s, %s (%s)\n", id, strings.Join(items, " + "), money(totalCents(lines)), story)
	return es.ContextWithMetadata(ctx, es.Metadata{CorrelationID: id})
}

// placeAndReserve places the order and reserves its lines. When a line
// cannot be reserved it compensates: the order is cancelled and what was
// reserved is released. ok reports that the order is placed and reserved.
func (s *shop) placeAndReserve(ctx context.Context, id string, lines []*orderv1.Line) (ok bool, err error) {
	if _, ok, err := s.send(ctx, "for cust-ada", &orderv1.PlaceOrder{OrderId: id, CustomerId: "cust-ada", Lines: lines}); !ok || err != nil {
		return false, err
	}
	var reserved []string
	for _, l := range lines {
		_, ok, err := s.send(ctx, fmt.Sprintf("%d %s", l.GetQuantity(), l.GetSku()),
			&inventoryv1.ReserveStock{Sku: l.GetSku(), OrderId: id, Quantity: l.GetQuantity()})
		if err != nil {
			return false, err
		}
		if ok {
			reserved = append(reserved, l.GetSku())
			continue
		}
		if _, _, err := s.send(ctx, "out of stock", &orderv1.CancelOrder{OrderId: id, Reason: "out of stock"}); err != nil {
			return false, err
		}
		for _, sku := range reserved {
			if _, _, err := s.send(ctx, sku, &inventoryv1.ReleaseStock{Sku: sku, OrderId: id}); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	return true, nil
}

// send sends cmd through the bus and prints one line: the command, label,
// and what happened. ok reports that the command was handled (now or
// before); a command rejected by a business rule is not an error.
func (s *shop) send(ctx context.Context, label string, cmd proto.Message) (res cqrs.Result, ok bool, err error) {
	what := fmt.Sprintf("%-40s", strings.TrimSpace(string(cmd.ProtoReflect().Descriptor().Name())+" "+label))
	res, err = s.bus.Send(ctx, cmd)
	var rejected *rule.Rejection
	switch {
	case errors.As(err, &rejected):
		s.printf("  %s rejected: %v\n", what, rejected)
		return res, false, nil
	case errors.Is(err, es.ErrAlreadyExists):
		// Another process created it first, such as a second session
		// running at the same time on the same store.
		s.printf("  %s rejected: %v\n", what, err)
		return res, false, nil
	case err != nil:
		return res, false, err
	case res.Duplicate:
		s.printf("  %s already handled, nothing appended (%s v%d)\n", what, res.Stream, res.Version)
	default:
		names := make([]string, len(res.Events))
		for i, e := range res.Events {
			names[i] = string(e.ProtoReflect().Descriptor().Name())
		}
		s.printf("  %s recorded %s (%s v%d)\n", what, strings.Join(names, ", "), res.Stream, res.Version)
	}
	return res, true, nil
}

// summary prints what the log holds: the orders and money, from the Summary
// read model, and the stock of each item, loaded from its stream.
func (s *shop) summary(ctx context.Context) error {
	sum, err := s.model.summary(ctx)
	if err != nil {
		return err
	}
	open := sum.GetOrders() - sum.GetShipped() - sum.GetCancelled()
	s.printf("\nsummary: %d orders (%d shipped, %d cancelled, %d open); charged %s, refunded %s\n",
		sum.GetOrders(), sum.GetShipped(), sum.GetCancelled(), open, money(sum.GetChargedCents()), money(sum.GetRefundedCents()))
	for _, p := range catalog {
		item, version, err := s.items.Load(ctx, p.sku)
		if err != nil {
			return err
		}
		snap := "no snapshots in this store"
		if s.snapshots != nil {
			snap = "no snapshot yet"
			stream := s.itemAgg.StreamName(p.sku)
			switch sn, err := s.snapshots.LoadSnapshot(ctx, stream); {
			case err == nil:
				snap = fmt.Sprintf("snapshot at v%d", sn.Version)
			case !errors.Is(err, es.ErrSnapshotNotFound):
				return err
			}
		}
		s.printf("stock: %s %d on hand, %d reserved (Item-%s v%d, %s)\n", p.sku, item.GetOnHand(), item.GetReserved(), p.sku, version, snap)
	}
	return nil
}

func (s *shop) printf(format string, args ...any) { fmt.Fprintf(s.out, format, args...) }

func line(sku string, quantity int64) *orderv1.Line {
	for _, p := range catalog {
		if p.sku == sku {
			return &orderv1.Line{Sku: sku, Quantity: quantity, UnitPriceCents: p.priceCents}
		}
	}
	panic("no product " + sku + " in the catalog")
}

func totalCents(lines []*orderv1.Line) int64 {
	var t int64
	for _, l := range lines {
		t += l.GetQuantity() * l.GetUnitPriceCents()
	}
	return t
}

// money formats cents as euros.
func money(cents int64) string { return fmt.Sprintf("€%d.%02d", cents/100, cents%100) }
