package order_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/esgen-dev/esgen/es"
	orderv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/order/v1"
	"github.com/esgen-dev/esgen/examples/shop/order"
)

var now = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func newTest(t *testing.T) *orderv1.OrderTest {
	return orderv1.NewOrderTest(t, order.Decider{Now: func() time.Time { return now }}, order.Evolver{})
}

func lines() []*orderv1.Line {
	return []*orderv1.Line{
		{Sku: "mug", Quantity: 2, UnitPriceCents: 1250},
		{Sku: "tea", Quantity: 1, UnitPriceCents: 899},
	}
}

// placed is the event of an order of lines(), whose total is 3399 cents.
func placed() *orderv1.OrderPlaced {
	return &orderv1.OrderPlaced{OrderId: "o1", CustomerId: "ada", Lines: lines(), TotalCents: 3399, PlacedAt: timestamppb.New(now)}
}

func paid() *orderv1.OrderPaid { return &orderv1.OrderPaid{OrderId: "o1", AmountCents: 3399} }

func TestPlaceOrder_RecordsLinesTotalAndTime(t *testing.T) {
	newTest(t).
		When(&orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: lines()}).
		Then(placed()).
		ThenState(&orderv1.Order{
			OrderId: "o1", CustomerId: "ada", Lines: lines(), TotalCents: 3399,
			Status: orderv1.OrderStatus_ORDER_STATUS_PLACED, PlacedAt: timestamppb.New(now),
		})
}

func TestPlaceOrder_FreeLinesAreAllowed(t *testing.T) {
	free := []*orderv1.Line{{Sku: "sticker", Quantity: 3}}
	newTest(t).
		When(&orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: free}).
		Then(&orderv1.OrderPlaced{OrderId: "o1", CustomerId: "ada", Lines: free, PlacedAt: timestamppb.New(now)})
}

func TestPlaceOrder_RejectsMalformedOrders(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  *orderv1.PlaceOrder
		want error
	}{
		{"no customer", &orderv1.PlaceOrder{OrderId: "o1", Lines: lines()}, order.ErrNoCustomer},
		{"no lines", &orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada"}, order.ErrNoLines},
		{"no SKU", &orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: []*orderv1.Line{{Quantity: 1, UnitPriceCents: 100}}}, order.ErrBadLine},
		{"zero quantity", &orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: []*orderv1.Line{{Sku: "mug", UnitPriceCents: 100}}}, order.ErrBadLine},
		{"negative price", &orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: []*orderv1.Line{{Sku: "mug", Quantity: 1, UnitPriceCents: -1}}}, order.ErrBadLine},
		{"one SKU on two lines", &orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: append(lines(), &orderv1.Line{Sku: "mug", Quantity: 1, UnitPriceCents: 1250})}, order.ErrDuplicateSKU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTest(t).When(tc.cmd).ThenError(tc.want)
		})
	}
}

func TestPlaceOrder_TwiceIsRejected(t *testing.T) {
	newTest(t).
		Given(placed()).
		When(&orderv1.PlaceOrder{OrderId: "o1", CustomerId: "ada", Lines: lines()}).
		ThenError(es.ErrAlreadyExists)
}

func TestMarkOrderPaid_RecordsTheTotal(t *testing.T) {
	newTest(t).
		Given(placed()).
		When(&orderv1.MarkOrderPaid{OrderId: "o1", AmountCents: 3399}).
		Then(paid())
}

func TestShipOrder_ShipsAPaidOrder(t *testing.T) {
	test := newTest(t).
		Given(placed(), paid()).
		When(&orderv1.ShipOrder{OrderId: "o1"}).
		Then(&orderv1.OrderShipped{OrderId: "o1"})
	if got := test.State().GetStatus(); got != orderv1.OrderStatus_ORDER_STATUS_SHIPPED {
		t.Fatalf("status %v, want shipped", got)
	}
}

func TestCancelOrder_BeforeShippingMakesWhatWasPaidDue(t *testing.T) {
	for _, tc := range []struct {
		name  string
		given []orderv1.OrderEvent
		due   int64
	}{
		{"placed", []orderv1.OrderEvent{placed()}, 0},
		{"paid", []orderv1.OrderEvent{placed(), paid()}, 3399},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTest(t).
				Given(tc.given...).
				When(&orderv1.CancelOrder{OrderId: "o1", Reason: "changed my mind"}).
				Then(&orderv1.OrderCancelled{OrderId: "o1", Reason: "changed my mind", RefundDueCents: tc.due})
		})
	}
}

// TestCommands_RejectedInTheWrongStatus covers the life of an order:
// placed, paid, shipped, or cancelled before shipping.
func TestCommands_RejectedInTheWrongStatus(t *testing.T) {
	shipped := []orderv1.OrderEvent{placed(), paid(), &orderv1.OrderShipped{OrderId: "o1"}}
	cancelled := []orderv1.OrderEvent{placed(), &orderv1.OrderCancelled{OrderId: "o1"}}
	for _, tc := range []struct {
		name  string
		given []orderv1.OrderEvent
		cmd   orderv1.OrderCommand
		want  error
	}{
		{"pay an order never placed", nil, &orderv1.MarkOrderPaid{OrderId: "o1", AmountCents: 3399}, order.ErrNotPlaced},
		{"pay less than the total", []orderv1.OrderEvent{placed()}, &orderv1.MarkOrderPaid{OrderId: "o1", AmountCents: 3000}, order.ErrWrongAmount},
		{"pay twice", []orderv1.OrderEvent{placed(), paid()}, &orderv1.MarkOrderPaid{OrderId: "o1", AmountCents: 3399}, order.ErrAlreadyPaid},
		{"pay a cancelled order", cancelled, &orderv1.MarkOrderPaid{OrderId: "o1", AmountCents: 3399}, order.ErrCancelled},
		{"ship before payment", []orderv1.OrderEvent{placed()}, &orderv1.ShipOrder{OrderId: "o1"}, order.ErrNotPaid},
		{"ship twice", shipped, &orderv1.ShipOrder{OrderId: "o1"}, order.ErrShipped},
		{"ship a cancelled order", cancelled, &orderv1.ShipOrder{OrderId: "o1"}, order.ErrCancelled},
		{"cancel after shipping", shipped, &orderv1.CancelOrder{OrderId: "o1"}, order.ErrShipped},
		{"cancel twice", cancelled, &orderv1.CancelOrder{OrderId: "o1"}, order.ErrCancelled},
		{"cancel an order never placed", nil, &orderv1.CancelOrder{OrderId: "o1"}, order.ErrNotPlaced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTest(t).Given(tc.given...).When(tc.cmd).ThenError(tc.want)
		})
	}
}
