// Package order is the behaviour of the Order aggregate: the rules its
// commands follow (Decider) and how its events change its state (Evolver).
// The types it implements are generated from
// proto/shop/order/v1/order.proto.
package order

import (
	"context"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	orderv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/order/v1"
	"github.com/esgen-dev/esgen/examples/shop/rule"
)

// The rules of an order. A Decider's rejection matches one of them with
// errors.Is.
var (
	ErrNoCustomer    = errors.New("an order needs a customer")
	ErrNoLines       = errors.New("an order needs at least one line")
	ErrBadLine       = errors.New("a line needs a SKU, a positive quantity and a price of zero or more")
	ErrDuplicateSKU  = errors.New("a product appears on one line only")
	ErrNotPlaced     = errors.New("the order was never placed")
	ErrWrongAmount   = errors.New("an order is paid in full")
	ErrAlreadyPaid   = errors.New("an order is paid once")
	ErrNotPaid       = errors.New("an order ships once paid")
	ErrShipped       = errors.New("a shipped order cannot change")
	ErrCancelled     = errors.New("a cancelled order cannot change")
	ErrUnknownStatus = errors.New("the order is in a status this version does not know")
)

// Decider decides the commands of the Order aggregate. Its zero value is
// ready to use.
type Decider struct {
	// Now returns the time recorded as an order's placed_at; nil means
	// time.Now. Tests set it to get events they can compare.
	Now func() time.Time
}

var _ orderv1.OrderDecider = Decider{}

func (d Decider) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// DecidePlaceOrder places an order whose lines each name a different
// product, in a positive quantity, at a price of zero or more.
func (d Decider) DecidePlaceOrder(_ context.Context, _ *orderv1.Order, cmd *orderv1.PlaceOrder) ([]orderv1.OrderEvent, error) {
	if cmd.GetCustomerId() == "" {
		return nil, rule.Reject(ErrNoCustomer, "place order %s", cmd.GetOrderId())
	}
	if len(cmd.GetLines()) == 0 {
		return nil, rule.Reject(ErrNoLines, "place order %s", cmd.GetOrderId())
	}
	var total int64
	seen := make(map[string]bool, len(cmd.GetLines()))
	for i, l := range cmd.GetLines() {
		if l.GetSku() == "" || l.GetQuantity() <= 0 || l.GetUnitPriceCents() < 0 {
			return nil, rule.Reject(ErrBadLine, "place order %s: line %d (%q, %d at %d cents)",
				cmd.GetOrderId(), i+1, l.GetSku(), l.GetQuantity(), l.GetUnitPriceCents())
		}
		if seen[l.GetSku()] {
			return nil, rule.Reject(ErrDuplicateSKU, "place order %s: %s is on two lines", cmd.GetOrderId(), l.GetSku())
		}
		seen[l.GetSku()] = true
		total += l.GetQuantity() * l.GetUnitPriceCents()
	}
	return []orderv1.OrderEvent{&orderv1.OrderPlaced{
		OrderId:    cmd.GetOrderId(),
		CustomerId: cmd.GetCustomerId(),
		Lines:      cloneLines(cmd.GetLines()),
		TotalCents: total,
		PlacedAt:   timestamppb.New(d.now()),
	}}, nil
}

// DecideMarkOrderPaid records the payment of a placed order, which must be
// its total.
func (Decider) DecideMarkOrderPaid(_ context.Context, state *orderv1.Order, cmd *orderv1.MarkOrderPaid) ([]orderv1.OrderEvent, error) {
	if err := mustBe(state, cmd.GetOrderId(), "mark order %s paid", orderv1.OrderStatus_ORDER_STATUS_PLACED); err != nil {
		return nil, err
	}
	if cmd.GetAmountCents() != state.GetTotalCents() {
		return nil, rule.Reject(ErrWrongAmount, "mark order %s paid: %d cents paid, the total is %d",
			cmd.GetOrderId(), cmd.GetAmountCents(), state.GetTotalCents())
	}
	return []orderv1.OrderEvent{&orderv1.OrderPaid{OrderId: cmd.GetOrderId(), AmountCents: cmd.GetAmountCents()}}, nil
}

// DecideShipOrder ships a paid order.
func (Decider) DecideShipOrder(_ context.Context, state *orderv1.Order, cmd *orderv1.ShipOrder) ([]orderv1.OrderEvent, error) {
	if err := mustBe(state, cmd.GetOrderId(), "ship order %s", orderv1.OrderStatus_ORDER_STATUS_PAID); err != nil {
		return nil, err
	}
	return []orderv1.OrderEvent{&orderv1.OrderShipped{OrderId: cmd.GetOrderId()}}, nil
}

// DecideCancelOrder cancels an order that has not shipped. What was paid
// becomes due for a refund.
func (Decider) DecideCancelOrder(_ context.Context, state *orderv1.Order, cmd *orderv1.CancelOrder) ([]orderv1.OrderEvent, error) {
	if err := mustBe(state, cmd.GetOrderId(), "cancel order %s",
		orderv1.OrderStatus_ORDER_STATUS_PLACED, orderv1.OrderStatus_ORDER_STATUS_PAID); err != nil {
		return nil, err
	}
	return []orderv1.OrderEvent{&orderv1.OrderCancelled{
		OrderId:        cmd.GetOrderId(),
		Reason:         cmd.GetReason(),
		RefundDueCents: state.GetPaidCents(),
	}}, nil
}

// mustBe rejects a command on an order whose status is not one of want,
// naming the rule the order's actual status breaks.
func mustBe(state *orderv1.Order, id, action string, want ...orderv1.OrderStatus) error {
	status := state.GetStatus()
	for _, w := range want {
		if status == w {
			return nil
		}
	}
	var broken error
	switch status {
	case orderv1.OrderStatus_ORDER_STATUS_UNSPECIFIED:
		broken = ErrNotPlaced
	case orderv1.OrderStatus_ORDER_STATUS_PLACED:
		broken = ErrNotPaid
	case orderv1.OrderStatus_ORDER_STATUS_PAID:
		broken = ErrAlreadyPaid
	case orderv1.OrderStatus_ORDER_STATUS_SHIPPED:
		broken = ErrShipped
	case orderv1.OrderStatus_ORDER_STATUS_CANCELLED:
		broken = ErrCancelled
	default:
		broken = ErrUnknownStatus
	}
	return rule.Reject(broken, action, id)
}

// Evolver applies the events of the Order aggregate to its state.
type Evolver struct{}

var _ orderv1.OrderEvolver = Evolver{}

// EvolveOrderPlaced starts a placed order.
func (Evolver) EvolveOrderPlaced(state *orderv1.Order, e *orderv1.OrderPlaced) error {
	state.OrderId = e.GetOrderId()
	state.CustomerId = e.GetCustomerId()
	state.Lines = cloneLines(e.GetLines())
	state.TotalCents = e.GetTotalCents()
	state.PlacedAt = proto.CloneOf(e.GetPlacedAt())
	state.Status = orderv1.OrderStatus_ORDER_STATUS_PLACED
	return nil
}

// EvolveOrderPaid marks the order paid.
func (Evolver) EvolveOrderPaid(state *orderv1.Order, e *orderv1.OrderPaid) error {
	state.PaidCents = e.GetAmountCents()
	state.Status = orderv1.OrderStatus_ORDER_STATUS_PAID
	return nil
}

// EvolveOrderShipped marks the order shipped.
func (Evolver) EvolveOrderShipped(state *orderv1.Order, _ *orderv1.OrderShipped) error {
	state.Status = orderv1.OrderStatus_ORDER_STATUS_SHIPPED
	return nil
}

// EvolveOrderCancelled marks the order cancelled.
func (Evolver) EvolveOrderCancelled(state *orderv1.Order, _ *orderv1.OrderCancelled) error {
	state.Status = orderv1.OrderStatus_ORDER_STATUS_CANCELLED
	return nil
}

// cloneLines copies lines, so that an event never shares messages with the
// command it came from or the state it goes into.
func cloneLines(lines []*orderv1.Line) []*orderv1.Line {
	out := make([]*orderv1.Line, len(lines))
	for i, l := range lines {
		out[i] = proto.CloneOf(l)
	}
	return out
}
