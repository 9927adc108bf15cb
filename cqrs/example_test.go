package cqrs_test

import (
	"context"
	"fmt"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// Commands go to the bus; the repository registered for their aggregate
// loads it, decides with the generated Decider, and appends the events.
func Example() {
	ctx := context.Background()
	store := memstore.New()
	repo, err := es.NewRepository(store, testagg.New(), es.WithSnapshots(store))
	if err != nil {
		panic(err)
	}
	bus := cqrs.NewBus()
	if err := cqrs.Register(bus, repo); err != nil {
		panic(err)
	}
	for _, cmd := range []testaggv1.AccountCommand{
		&testaggv1.Open{AccountId: "a1", Owner: "Ada"},
		&testaggv1.Deposit{AccountId: "a1", Amount: 100},
		&testaggv1.Withdraw{AccountId: "a1", Amount: 250},
	} {
		res, err := bus.Send(ctx, cmd)
		if err != nil {
			fmt.Println("rejected:", err)
			continue
		}
		fmt.Printf("%s is at version %d\n", res.Stream, res.Version)
	}
	state, _, _ := repo.Load(ctx, "a1")
	fmt.Println("balance:", state.Balance)
	// Output:
	// Account-a1 is at version 1
	// Account-a1 is at version 2
	// rejected: handle testagg.v1.Withdraw for Account-a1: withdraw 250 from a balance of 100: insufficient funds
	// balance: 100
}
