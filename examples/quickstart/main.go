// Command quickstart tours the esgen event log on the in-memory store: two
// tellers race to update one account, optimistic concurrency catches the
// race, the loser retries on fresh state, and a subscriber to the global log
// sees every event once, in order.
//
//	go run ./examples/quickstart
//
// In an esgen app the event messages are generated from .proto files (see
// docs/declaring-aggregates.md). Here the well-known wrapperspb.Int64Value
// carries the amounts, so that the tour needs no code generation.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
)

const (
	opened    = "bank.v1.AccountOpened"
	deposited = "bank.v1.MoneyDeposited"
	withdrawn = "bank.v1.MoneyWithdrawn"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, memstore.New()); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func amount(cents int64) []byte {
	b, err := proto.Marshal(wrapperspb.Int64(cents))
	if err != nil {
		panic(err) // an Int64Value always encodes
	}
	return b
}

// balance folds a stream into the account balance and returns the version
// it was computed at.
func balance(ctx context.Context, store es.Store, stream string) (cents, version int64, err error) {
	for e, err := range store.ReadStream(ctx, stream, es.StreamStart, es.Forward, 0) {
		if err != nil {
			return 0, 0, err
		}
		var v wrapperspb.Int64Value
		if err := proto.Unmarshal(e.Data, &v); err != nil {
			return 0, 0, fmt.Errorf("decode %s at version %d of %q: %w", e.Type, e.Version, stream, err)
		}
		switch e.Type {
		case opened, deposited:
			cents += v.Value
		case withdrawn:
			cents -= v.Value
		default:
			return 0, 0, fmt.Errorf("unknown event type %q at version %d of %q", e.Type, e.Version, stream)
		}
		version = e.Version
	}
	return cents, version, nil
}

// withdraw decides on the state read at one version and appends expecting
// that version; a concurrent change makes the append fail with
// es.ErrConcurrency instead of overdrawing the account.
func withdraw(ctx context.Context, store es.Store, stream string, cents, seenBalance, seenVersion int64) error {
	if seenBalance < cents {
		return fmt.Errorf("insufficient funds: balance %.2f, withdrawal %.2f", float64(seenBalance)/100, float64(cents)/100)
	}
	_, err := store.Append(ctx, stream, es.Exact(seenVersion),
		es.EventData{Type: withdrawn, Data: amount(cents)})
	return err
}

func run(ctx context.Context, out io.Writer, store es.Store) error {
	const stream = "account-42"
	meta := es.Metadata{CorrelationID: "quickstart-1"}
	res, err := store.Append(ctx, stream, es.NoStream,
		es.EventData{Type: opened, Data: amount(100_00), Metadata: meta},
		es.EventData{Type: deposited, Data: amount(50_00), Metadata: meta})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "opened %s with 150.00; stream at version %d\n", stream, res.Version)

	// Two tellers read the same state...
	bal, ver, err := balance(ctx, store, stream)
	if err != nil {
		return err
	}
	// ...the first withdraws 120.00...
	if err := withdraw(ctx, store, stream, 120_00, bal, ver); err != nil {
		return err
	}
	fmt.Fprintf(out, "teller A withdrew 120.00 at version %d\n", ver)
	// ...and the second, deciding on the same stale state, is stopped.
	err = withdraw(ctx, store, stream, 100_00, bal, ver)
	var conflict *es.ConcurrencyError
	if !errors.As(err, &conflict) {
		return fmt.Errorf("teller B's stale withdrawal: got %v, want a concurrency error", err)
	}
	fmt.Fprintf(out, "teller B was stopped: expected version %d, stream is at %d\n", ver, conflict.Actual)

	// Teller B retries on fresh state, and the rule holds.
	bal, ver, err = balance(ctx, store, stream)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "teller B retried at version %d: %v\n", ver, withdraw(ctx, store, stream, 100_00, bal, ver))

	// A subscriber to the global log sees every event once, in order.
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	seen := 0
	for e, err := range store.Subscribe(subCtx, es.Position{}, es.Filter{StreamPrefixes: []string{"account-"}}) {
		if err != nil {
			return err
		}
		var v wrapperspb.Int64Value
		if err := proto.Unmarshal(e.Data, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s v%d %-22s %7.2f\n", e.StreamID, e.Version, e.Type, float64(v.Value)/100)
		if seen++; seen == 3 {
			break
		}
	}
	bal, _, err = balance(ctx, store, stream)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "balance: %.2f\n", float64(bal)/100)
	return nil
}
