package inventory_test

import (
	"testing"

	"github.com/esgen-dev/esgen/es"
	inventoryv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/inventory/v1"
	"github.com/esgen-dev/esgen/examples/shop/inventory"
)

func newTest(t *testing.T) *inventoryv1.ItemTest {
	return inventoryv1.NewItemTest(t, inventory.Decider{}, inventory.Evolver{})
}

func registered(onHand int64) *inventoryv1.ItemRegistered {
	return &inventoryv1.ItemRegistered{Sku: "mug", Name: "Enamel mug", OnHand: onHand}
}

func reserved(order string, quantity int64) *inventoryv1.StockReserved {
	return &inventoryv1.StockReserved{Sku: "mug", OrderId: order, Quantity: quantity}
}

func TestRegisterItem_RecordsTheFirstStock(t *testing.T) {
	newTest(t).
		When(&inventoryv1.RegisterItem{Sku: "mug", Name: "Enamel mug", OnHand: 10}).
		Then(registered(10)).
		ThenState(&inventoryv1.Item{Sku: "mug", Name: "Enamel mug", OnHand: 10})
}

func TestRestockItem_AddsToTheStock(t *testing.T) {
	newTest(t).
		Given(registered(10), reserved("o1", 4)).
		When(&inventoryv1.RestockItem{Sku: "mug", Quantity: 5}).
		Then(&inventoryv1.ItemRestocked{Sku: "mug", Quantity: 5}).
		ThenState(&inventoryv1.Item{Sku: "mug", Name: "Enamel mug", OnHand: 15, Reserved: 4,
			Reservations: []*inventoryv1.Reservation{{OrderId: "o1", Quantity: 4}}})
}

func TestReserveStock_UpToWhatOtherOrdersLeft(t *testing.T) {
	test := newTest(t).
		Given(registered(10), reserved("o1", 4)).
		When(&inventoryv1.ReserveStock{Sku: "mug", OrderId: "o2", Quantity: 6}).
		Then(reserved("o2", 6)).
		ThenState(&inventoryv1.Item{Sku: "mug", Name: "Enamel mug", OnHand: 10, Reserved: 10,
			Reservations: []*inventoryv1.Reservation{{OrderId: "o1", Quantity: 4}, {OrderId: "o2", Quantity: 6}}})
	if got := inventory.Available(test.State()); got != 0 {
		t.Fatalf("available %d, want 0", got)
	}
}

func TestReleaseStock_GivesBackOnlyThatOrdersReservation(t *testing.T) {
	newTest(t).
		Given(registered(10), reserved("o1", 4), reserved("o2", 3)).
		When(&inventoryv1.ReleaseStock{Sku: "mug", OrderId: "o1"}).
		Then(&inventoryv1.StockReleased{Sku: "mug", OrderId: "o1", Quantity: 4}).
		ThenState(&inventoryv1.Item{Sku: "mug", Name: "Enamel mug", OnHand: 10, Reserved: 3,
			Reservations: []*inventoryv1.Reservation{{OrderId: "o2", Quantity: 3}}})
}

func TestShipStock_TakesTheReservedUnits(t *testing.T) {
	newTest(t).
		Given(registered(10), reserved("o1", 4)).
		When(&inventoryv1.ShipStock{Sku: "mug", OrderId: "o1"}).
		Then(&inventoryv1.StockShipped{Sku: "mug", OrderId: "o1", Quantity: 4}).
		ThenState(&inventoryv1.Item{Sku: "mug", Name: "Enamel mug", OnHand: 6})
}

func TestCommands_RejectedByTheRules(t *testing.T) {
	released := &inventoryv1.StockReleased{Sku: "mug", OrderId: "o1", Quantity: 4}
	for _, tc := range []struct {
		name  string
		given []inventoryv1.ItemEvent
		cmd   inventoryv1.ItemCommand
		want  error
	}{
		{"register without a name", nil, &inventoryv1.RegisterItem{Sku: "mug", OnHand: 1}, inventory.ErrNoName},
		{"register a negative stock", nil, &inventoryv1.RegisterItem{Sku: "mug", Name: "Enamel mug", OnHand: -1}, inventory.ErrBadQuantity},
		{"register twice", []inventoryv1.ItemEvent{registered(10)}, &inventoryv1.RegisterItem{Sku: "mug", Name: "Enamel mug"}, es.ErrAlreadyExists},
		{"restock an unknown item", nil, &inventoryv1.RestockItem{Sku: "mug", Quantity: 1}, inventory.ErrNotRegistered},
		{"restock nothing", []inventoryv1.ItemEvent{registered(10)}, &inventoryv1.RestockItem{Sku: "mug"}, inventory.ErrBadQuantity},
		{"reserve an unknown item", nil, &inventoryv1.ReserveStock{Sku: "mug", OrderId: "o1", Quantity: 1}, inventory.ErrNotRegistered},
		{"reserve for no order", []inventoryv1.ItemEvent{registered(10)}, &inventoryv1.ReserveStock{Sku: "mug", Quantity: 1}, inventory.ErrNoOrder},
		{"reserve nothing", []inventoryv1.ItemEvent{registered(10)}, &inventoryv1.ReserveStock{Sku: "mug", OrderId: "o1"}, inventory.ErrBadQuantity},
		{"reserve more than on hand", []inventoryv1.ItemEvent{registered(10)}, &inventoryv1.ReserveStock{Sku: "mug", OrderId: "o1", Quantity: 11}, inventory.ErrInsufficientStock},
		{"reserve what another order holds", []inventoryv1.ItemEvent{registered(10), reserved("o1", 8)}, &inventoryv1.ReserveStock{Sku: "mug", OrderId: "o2", Quantity: 3}, inventory.ErrInsufficientStock},
		{"reserve twice for one order", []inventoryv1.ItemEvent{registered(10), reserved("o1", 2)}, &inventoryv1.ReserveStock{Sku: "mug", OrderId: "o1", Quantity: 1}, inventory.ErrAlreadyReserved},
		{"release without a reservation", []inventoryv1.ItemEvent{registered(10), reserved("o2", 2)}, &inventoryv1.ReleaseStock{Sku: "mug", OrderId: "o1"}, inventory.ErrNoReservation},
		{"release twice", []inventoryv1.ItemEvent{registered(10), reserved("o1", 4), released}, &inventoryv1.ReleaseStock{Sku: "mug", OrderId: "o1"}, inventory.ErrNoReservation},
		{"ship a released reservation", []inventoryv1.ItemEvent{registered(10), reserved("o1", 4), released}, &inventoryv1.ShipStock{Sku: "mug", OrderId: "o1"}, inventory.ErrNoReservation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newTest(t).Given(tc.given...).When(tc.cmd).ThenError(tc.want)
		})
	}
}
