// Command shop is the esgen shop example: orders, stock and payments as
// event-sourced aggregates, declared in proto/, generated into gen/ and
// decided by the hand-written packages order, inventory and payment. It
// runs a scripted session through the command bus and prints each command
// and its outcome: the events recorded, or the rule that rejected it.
//
//	go run ./examples/shop                   # SQLite in ./shop.db; run it again to continue
//	go run ./examples/shop -store memory
//	go run ./examples/shop -store postgres   # $DATABASE_URL, or -database-url
//
// Regenerate gen/ after changing proto/ with go generate.
package main

//go:generate go run github.com/esgen-dev/esgen/cmd/esgen generate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/memstore"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/es/sqlitestore"
)

// errUsage marks errors in the command line, for which main exits with 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run parses args, opens the chosen store and runs the scripted session on
// it, printing to stdout.
func run(ctx context.Context, stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("shop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kind := fs.String("store", "sqlite", "event store: sqlite, memory or postgres")
	path := fs.String("db", "shop.db", "SQLite file, with -store sqlite")
	url := fs.String("database-url", "", "Postgres URL, with -store postgres (default $DATABASE_URL)")
	search := fs.String("elasticsearch", "", "Elasticsearch URL for the order documents (default $ELASTICSEARCH_URL; none: no search read model)")
	rebuildSearch := fs.Bool("rebuild-search", false, "rebuild the order documents blue/green into the next index version before the session (with -elasticsearch)")
	verbose := fs.Bool("v", false, "log every command to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		return fmt.Errorf("%w: %w (run with -h for the flags)", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *url == "" {
		*url = os.Getenv("DATABASE_URL") // not the flag's default, which -h would print
	}
	if *search == "" {
		*search = os.Getenv("ELASTICSEARCH_URL")
	}

	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	b, err := open(ctx, *kind, *path, *url, logger)
	if err != nil {
		return err
	}
	defer b.close()

	s, err := newShop(stdout, b.store, b.snapshots, b.model, logger)
	if err != nil {
		return err
	}
	if *rebuildSearch && *search == "" {
		return fmt.Errorf("%w: -rebuild-search needs -elasticsearch or ELASTICSEARCH_URL", errUsage)
	}
	if *search != "" {
		if s.search, err = openSearch(*search, logger); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "shop on %s\n", b.name)
	if *rebuildSearch {
		ix, err := s.search.rebuild(ctx, b.store, s.orders)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "search: rebuilt %s into %s\n", ordersIndex, ix)
	}
	return s.session(ctx)
}

// backend is an opened event store.
type backend struct {
	name  string
	store es.Store
	// snapshots is where the repositories keep snapshots; nil when the
	// store keeps none.
	snapshots es.SnapshotStore
	// model is the Summary read model: a table beside the log, kept by a
	// projection runner, or for the in-memory store a fold of the log.
	model readModel
	close func() error
}

// open opens the event store of the given kind. Snapshots are kept in the
// store when it offers them: when it is also an es.SnapshotStore.
func open(ctx context.Context, kind, path, url string, logger *slog.Logger) (backend, error) {
	b := backend{name: kind}
	switch kind {
	case "memory":
		b.store, b.close = memstore.New(), func() error { return nil }
		b.model = foldModel{b.store}
	case "sqlite":
		st, err := sqlitestore.Open(ctx, path)
		if err != nil {
			return b, err
		}
		b.name += " (" + path + ")"
		b.store, b.close = st, st.Close
		if b.model, err = sqliteModel(ctx, st, logger); err != nil {
			st.Close()
			return b, err
		}
	case "postgres":
		if url == "" {
			return b, fmt.Errorf("%w: -store postgres needs -database-url or DATABASE_URL", errUsage)
		}
		st, err := pgstore.Open(ctx, url)
		if err != nil {
			return b, err
		}
		b.store, b.close = st, st.Close
		if b.model, err = postgresModel(ctx, st, logger); err != nil {
			st.Close()
			return b, err
		}
	default:
		return b, fmt.Errorf("%w: -store %q: want sqlite, memory or postgres", errUsage, kind)
	}
	if ss, ok := b.store.(es.SnapshotStore); ok {
		b.snapshots = ss
	}
	return b, nil
}
