package memstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

func Example() {
	ctx := context.Background()
	store := memstore.New()

	// Open an order: the stream must not exist yet.
	res, err := store.Append(ctx, "order-1", es.NoStream,
		es.EventData{Type: "shop.order.v1.OrderPlaced", Data: []byte("placed")},
		es.EventData{Type: "shop.order.v1.ItemAdded", Data: []byte("book")},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("order-1 is at version", res.Version)

	// Another writer that still thinks the order is new loses.
	_, err = store.Append(ctx, "order-1", es.NoStream, es.EventData{Type: "shop.order.v1.OrderPlaced", Data: []byte{}})
	fmt.Println("stale append conflicts:", errors.Is(err, es.ErrConcurrency))

	// Continue from the version we know.
	if _, err := store.Append(ctx, "order-1", es.Exact(res.Version), es.EventData{Type: "shop.order.v1.OrderPaid", Data: []byte("paid")}); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := store.Append(ctx, "user-7", es.Any, es.EventData{Type: "shop.user.v1.UserRegistered", Data: []byte("ada")}); err != nil {
		fmt.Println(err)
		return
	}

	fmt.Println("order-1:")
	for e, err := range store.ReadStream(ctx, "order-1", es.StreamStart, es.Forward, 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("  v%d %s %s\n", e.Version, e.Type, e.Data)
	}

	fmt.Println("all:")
	for e, err := range store.ReadAll(ctx, es.Position{}, 0) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("  %s %s v%d %s\n", e.Position, e.StreamID, e.Version, e.Type)
	}
	// Output:
	// order-1 is at version 2
	// stale append conflicts: true
	// order-1:
	//   v1 shop.order.v1.OrderPlaced placed
	//   v2 shop.order.v1.ItemAdded book
	//   v3 shop.order.v1.OrderPaid paid
	// all:
	//   1/1 order-1 v1 shop.order.v1.OrderPlaced
	//   2/2 order-1 v2 shop.order.v1.ItemAdded
	//   3/3 order-1 v3 shop.order.v1.OrderPaid
	//   4/4 user-7 v1 shop.user.v1.UserRegistered
}
