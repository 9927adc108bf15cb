package sqlitesink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/sqlitesink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/sqlitestore"
	"github.com/esgen-dev/esgen/internal/testagg"
	testaggv1 "github.com/esgen-dev/esgen/internal/testagg/v1"
)

// ownersProjection keeps each account's owner in a table of the store's
// file, written through the batch's transaction.
type ownersProjection struct{}

func (ownersProjection) Name() string { return "owners" }

func (ownersProjection) EventTypes() []string { return []string{testaggv1.OpenedEventType} }

func (ownersProjection) Handle(ctx context.Context, rec es.Event) error {
	e, err := testagg.New().DecodeEvent(rec)
	if err != nil {
		return err
	}
	opened := e.(*testaggv1.Opened)
	_, err = sqlitesink.Tx(ctx).ExecContext(ctx,
		`INSERT INTO owners (account, owner) VALUES (?, ?)`, opened.AccountId, opened.Owner)
	return err
}

// The log, the read model and the projection's checkpoint in one SQLite
// file: the runner commits each batch's rows with its checkpoint.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlitesink-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	// The read model's table is the app's, migrated as its own component.
	if err := store.Migrate(ctx, "owners", []sqlitestore.Migration{{Version: 1, Name: "owners",
		SQL: `CREATE TABLE owners (account TEXT PRIMARY KEY, owner TEXT NOT NULL) STRICT`}}); err != nil {
		panic(err)
	}
	repo, err := es.NewRepository(store, testagg.New(), es.WithSnapshots(store))
	if err != nil {
		panic(err)
	}
	for _, cmd := range []testaggv1.AccountCommand{
		&testaggv1.Open{AccountId: "a1", Owner: "Ada"},
		&testaggv1.Open{AccountId: "a2", Owner: "Grace"},
	} {
		if _, err := repo.Handle(ctx, cmd); err != nil {
			panic(err)
		}
	}
	head, _ := store.Head(ctx)

	sink, err := sqlitesink.New(store)
	if err != nil {
		panic(err)
	}
	r, err := cqrs.NewRunner(store, sink, ownersProjection{}, cqrs.WithBatch(100, 10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	for r.Status().Checkpoint != head {
		time.Sleep(time.Millisecond)
	}
	stop()
	fmt.Println("Run:", <-done)

	rows, err := store.ReadDB().QueryContext(ctx, `SELECT account, owner FROM owners ORDER BY account`)
	if err != nil {
		panic(err)
	}
	defer rows.Close()
	for rows.Next() {
		var account, owner string
		if err := rows.Scan(&account, &owner); err != nil {
			panic(err)
		}
		fmt.Println(account, owner)
	}
	cp, _ := sink.Checkpoint(ctx, "owners")
	fmt.Println("checkpoint at head:", cp == head)
	// Output:
	// Run: <nil>
	// a1 Ada
	// a2 Grace
	// checkpoint at head: true
}
