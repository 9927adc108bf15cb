// Package inventory is the behaviour of the Item aggregate: the stock of
// one product, reserved per order. The types it implements are generated
// from proto/shop/inventory/v1/inventory.proto.
package inventory

import (
	"context"
	"errors"
	"slices"

	inventoryv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/inventory/v1"
	"github.com/esgen-dev/esgen/examples/shop/rule"
)

// The rules of the stock. A Decider's rejection matches one of them with
// errors.Is.
var (
	ErrNoName            = errors.New("an item needs a name")
	ErrNotRegistered     = errors.New("the item was never registered")
	ErrBadQuantity       = errors.New("a quantity must be positive")
	ErrNoOrder           = errors.New("stock is reserved for an order")
	ErrInsufficientStock = errors.New("not enough stock")
	ErrAlreadyReserved   = errors.New("an order holds one reservation per item")
	ErrNoReservation     = errors.New("the order holds no reservation of the item")
)

// Available returns the units of item that are not reserved.
func Available(item *inventoryv1.Item) int64 { return item.GetOnHand() - item.GetReserved() }

// reservation returns the index of orderID's reservation in item, or -1.
func reservation(item *inventoryv1.Item, orderID string) int {
	return slices.IndexFunc(item.GetReservations(), func(r *inventoryv1.Reservation) bool {
		return r.GetOrderId() == orderID
	})
}

// Decider decides the commands of the Item aggregate.
type Decider struct{}

var _ inventoryv1.ItemDecider = Decider{}

// DecideRegisterItem registers a named product with its first stock, which
// may be zero.
func (Decider) DecideRegisterItem(_ context.Context, _ *inventoryv1.Item, cmd *inventoryv1.RegisterItem) ([]inventoryv1.ItemEvent, error) {
	if cmd.GetName() == "" {
		return nil, rule.Reject(ErrNoName, "register %s", cmd.GetSku())
	}
	if cmd.GetOnHand() < 0 {
		return nil, rule.Reject(ErrBadQuantity, "register %s with %d on hand", cmd.GetSku(), cmd.GetOnHand())
	}
	return []inventoryv1.ItemEvent{&inventoryv1.ItemRegistered{Sku: cmd.GetSku(), Name: cmd.GetName(), OnHand: cmd.GetOnHand()}}, nil
}

// DecideRestockItem adds a positive quantity to a registered item.
func (Decider) DecideRestockItem(_ context.Context, state *inventoryv1.Item, cmd *inventoryv1.RestockItem) ([]inventoryv1.ItemEvent, error) {
	if state.GetSku() == "" {
		return nil, rule.Reject(ErrNotRegistered, "restock %s", cmd.GetSku())
	}
	if cmd.GetQuantity() <= 0 {
		return nil, rule.Reject(ErrBadQuantity, "restock %s with %d", cmd.GetSku(), cmd.GetQuantity())
	}
	return []inventoryv1.ItemEvent{&inventoryv1.ItemRestocked{Sku: cmd.GetSku(), Quantity: cmd.GetQuantity()}}, nil
}

// DecideReserveStock sets units aside for an order that holds no
// reservation of the item yet, if that many are available: units on hand
// that no other order reserved.
func (Decider) DecideReserveStock(_ context.Context, state *inventoryv1.Item, cmd *inventoryv1.ReserveStock) ([]inventoryv1.ItemEvent, error) {
	switch {
	case state.GetSku() == "":
		return nil, rule.Reject(ErrNotRegistered, "reserve %s", cmd.GetSku())
	case cmd.GetOrderId() == "":
		return nil, rule.Reject(ErrNoOrder, "reserve %d %s", cmd.GetQuantity(), cmd.GetSku())
	case cmd.GetQuantity() <= 0:
		return nil, rule.Reject(ErrBadQuantity, "reserve %d %s for %s", cmd.GetQuantity(), cmd.GetSku(), cmd.GetOrderId())
	case reservation(state, cmd.GetOrderId()) >= 0:
		return nil, rule.Reject(ErrAlreadyReserved, "reserve %s for %s", cmd.GetSku(), cmd.GetOrderId())
	case cmd.GetQuantity() > Available(state):
		return nil, rule.Reject(ErrInsufficientStock, "reserve %d %s for %s: only %d available",
			cmd.GetQuantity(), cmd.GetSku(), cmd.GetOrderId(), Available(state))
	}
	return []inventoryv1.ItemEvent{&inventoryv1.StockReserved{Sku: cmd.GetSku(), OrderId: cmd.GetOrderId(), Quantity: cmd.GetQuantity()}}, nil
}

// DecideReleaseStock gives back what an order reserved.
func (Decider) DecideReleaseStock(_ context.Context, state *inventoryv1.Item, cmd *inventoryv1.ReleaseStock) ([]inventoryv1.ItemEvent, error) {
	i := reservation(state, cmd.GetOrderId())
	if i < 0 {
		return nil, rule.Reject(ErrNoReservation, "release %s for %s", cmd.GetSku(), cmd.GetOrderId())
	}
	return []inventoryv1.ItemEvent{&inventoryv1.StockReleased{
		Sku: cmd.GetSku(), OrderId: cmd.GetOrderId(), Quantity: state.GetReservations()[i].GetQuantity(),
	}}, nil
}

// DecideShipStock takes what an order reserved out of the warehouse.
func (Decider) DecideShipStock(_ context.Context, state *inventoryv1.Item, cmd *inventoryv1.ShipStock) ([]inventoryv1.ItemEvent, error) {
	i := reservation(state, cmd.GetOrderId())
	if i < 0 {
		return nil, rule.Reject(ErrNoReservation, "ship %s for %s", cmd.GetSku(), cmd.GetOrderId())
	}
	return []inventoryv1.ItemEvent{&inventoryv1.StockShipped{
		Sku: cmd.GetSku(), OrderId: cmd.GetOrderId(), Quantity: state.GetReservations()[i].GetQuantity(),
	}}, nil
}

// Evolver applies the events of the Item aggregate to its state.
type Evolver struct{}

var _ inventoryv1.ItemEvolver = Evolver{}

// EvolveItemRegistered starts a registered item.
func (Evolver) EvolveItemRegistered(state *inventoryv1.Item, e *inventoryv1.ItemRegistered) error {
	state.Sku, state.Name, state.OnHand = e.GetSku(), e.GetName(), e.GetOnHand()
	return nil
}

// EvolveItemRestocked adds to the units on hand.
func (Evolver) EvolveItemRestocked(state *inventoryv1.Item, e *inventoryv1.ItemRestocked) error {
	state.OnHand += e.GetQuantity()
	return nil
}

// EvolveStockReserved adds the order's reservation.
func (Evolver) EvolveStockReserved(state *inventoryv1.Item, e *inventoryv1.StockReserved) error {
	state.Reserved += e.GetQuantity()
	state.Reservations = append(state.Reservations, &inventoryv1.Reservation{OrderId: e.GetOrderId(), Quantity: e.GetQuantity()})
	return nil
}

// EvolveStockReleased removes the order's reservation.
func (Evolver) EvolveStockReleased(state *inventoryv1.Item, e *inventoryv1.StockReleased) error {
	state.Reserved -= e.GetQuantity()
	state.Reservations = slices.DeleteFunc(state.Reservations, func(r *inventoryv1.Reservation) bool { return r.GetOrderId() == e.GetOrderId() })
	return nil
}

// EvolveStockShipped removes the order's reservation and its units.
func (Evolver) EvolveStockShipped(state *inventoryv1.Item, e *inventoryv1.StockShipped) error {
	state.OnHand -= e.GetQuantity()
	state.Reserved -= e.GetQuantity()
	state.Reservations = slices.DeleteFunc(state.Reservations, func(r *inventoryv1.Reservation) bool { return r.GetOrderId() == e.GetOrderId() })
	return nil
}
