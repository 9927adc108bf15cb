package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/cqrs/sqlitesink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/es/sqlitestore"
	orderv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/order/v1"
	paymentv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/payment/v1"
	reportv1 "github.com/esgen-dev/esgen/examples/shop/gen/shop/report/v1"
)

// readModel keeps the Summary read model and reads it.
type readModel interface {
	// summary brings the read model up to the events stored so far and
	// returns it.
	summary(ctx context.Context) (*reportv1.Summary, error)
}

// sqlModel keeps the Summary in a table beside the log (Postgres or the
// SQLite file), written by a projection runner through the store's sink:
// each batch's row updates commit with the projection's checkpoint, so the
// counts are exact although an increment is not idempotent, and a second
// run of the app continues from the checkpoint.
type sqlModel struct {
	store  es.Store
	sink   cqrs.Sink
	table  string
	name   func(ctx context.Context, table string) string           // the table a handler writes now
	exec   func(ctx context.Context, sql string) error              // in the batch's transaction
	query  func(ctx context.Context, sql string, dest ...any) error // one row, outside it
	logger *slog.Logger
}

// The Summary table: one row, id 1.
const summaryColumns = `id INTEGER PRIMARY KEY,
    orders BIGINT NOT NULL DEFAULT 0, shipped BIGINT NOT NULL DEFAULT 0, cancelled BIGINT NOT NULL DEFAULT 0,
    charged_cents BIGINT NOT NULL DEFAULT 0, refunded_cents BIGINT NOT NULL DEFAULT 0`

func sqliteModel(ctx context.Context, st *sqlitestore.Store, logger *slog.Logger) (readModel, error) {
	if err := st.Migrate(ctx, "shop", []sqlitestore.Migration{{Version: 1, Name: "summary",
		SQL: `CREATE TABLE summary (` + summaryColumns + `); INSERT INTO summary (id) VALUES (1);`}}); err != nil {
		return nil, err
	}
	sink, err := sqlitesink.New(st)
	if err != nil {
		return nil, err
	}
	return &sqlModel{
		store: st, sink: sink, table: "summary", logger: logger,
		name: func(_ context.Context, table string) string { return table },
		exec: func(ctx context.Context, q string) error {
			_, err := sqlitesink.Tx(ctx).ExecContext(ctx, q)
			return err
		},
		query: func(ctx context.Context, q string, dest ...any) error {
			return st.ReadDB().QueryRowContext(ctx, q).Scan(dest...)
		},
	}, nil
}

func postgresModel(ctx context.Context, st *pgstore.Store, logger *slog.Logger) (readModel, error) {
	err := pgstore.MigrateSet(ctx, st.Pool(), "shop", "shop", []pgstore.Migration{{Version: 1, Name: "summary",
		SQL: `CREATE TABLE {{schema}}.summary (` + summaryColumns + `); INSERT INTO {{schema}}.summary (id) VALUES (1);`}})
	if err != nil {
		return nil, err
	}
	sink, err := pgsink.Open(ctx, st.Pool())
	if err != nil {
		return nil, err
	}
	return &sqlModel{
		store: st, sink: sink, table: "shop.summary", logger: logger,
		// While pgsink rebuilds the projection blue/green, handlers write
		// the copy being built, not the live table.
		name: pgsink.Name,
		exec: func(ctx context.Context, q string) error { return pgsink.Exec(ctx, q) },
		query: func(ctx context.Context, q string, dest ...any) error {
			return st.Pool().QueryRow(ctx, q).Scan(dest...)
		},
	}, nil
}

func (m *sqlModel) summary(ctx context.Context) (*reportv1.Summary, error) {
	if err := m.catchUp(ctx); err != nil {
		return nil, err
	}
	q := `SELECT orders, shipped, cancelled, charged_cents, refunded_cents FROM ` + m.table + ` WHERE id = 1`
	var s reportv1.Summary
	if err := m.query(ctx, q, &s.Orders, &s.Shipped, &s.Cancelled, &s.ChargedCents, &s.RefundedCents); err != nil {
		return nil, fmt.Errorf("read the summary: %w", err)
	}
	return &s, nil
}

// catchUp runs the Summary projection until its checkpoint reaches the head
// of the log, then stops it.
func (m *sqlModel) catchUp(ctx context.Context) error {
	return catchUp(ctx, m.store, m.sink, reportv1.NewSummaryProjection(sqlSummarizer{m}), m.logger)
}

// catchUp runs projection into sink until its checkpoint reaches the head
// of the log, then stops it. A long-running app would keep the runner going
// for the process's lifetime instead.
func catchUp(ctx context.Context, store es.Store, sink cqrs.Sink, projection cqrs.Projection, logger *slog.Logger) error {
	// pgstore shows an event to global readers once no older transaction
	// is running; wait for that, so that the head includes our own writes.
	if w, ok := store.(interface{ WaitVisible(context.Context) error }); ok {
		if err := w.WaitVisible(ctx); err != nil {
			return err
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	r, err := cqrs.NewRunner(store, sink, projection, cqrs.WithRunnerConfig(cqrs.RunnerConfig{
		MaxWait: 5 * time.Millisecond, ScanAll: true, CheckpointInterval: 5 * time.Millisecond, Logger: logger,
	}))
	if err != nil {
		return err
	}
	if err := r.RunUntil(ctx, func(context.Context) (es.Position, error) { return head, nil }, nil); err != nil {
		return fmt.Errorf("projection %s: catch up: %w", projection.Name(), err)
	}
	return nil
}

// sqlSummarizer is the projector of the Summary read model kept in a
// table: each event adds to one column, in the batch's transaction.
type sqlSummarizer struct{ m *sqlModel }

var _ reportv1.SummaryProjector = sqlSummarizer{}

func (p sqlSummarizer) add(ctx context.Context, column string, n int64) error {
	return p.m.exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = %s + %d WHERE id = 1`, p.m.name(ctx, p.m.table), column, column, n))
}

func (p sqlSummarizer) ProjectOrderPlaced(ctx context.Context, _ *orderv1.OrderPlaced, _ es.Event) error {
	return p.add(ctx, "orders", 1)
}

func (p sqlSummarizer) ProjectOrderShipped(ctx context.Context, _ *orderv1.OrderShipped, _ es.Event) error {
	return p.add(ctx, "shipped", 1)
}

func (p sqlSummarizer) ProjectOrderCancelled(ctx context.Context, _ *orderv1.OrderCancelled, _ es.Event) error {
	return p.add(ctx, "cancelled", 1)
}

func (p sqlSummarizer) ProjectPaymentCharged(ctx context.Context, e *paymentv1.PaymentCharged, _ es.Event) error {
	return p.add(ctx, "charged_cents", e.GetAmountCents())
}

func (p sqlSummarizer) ProjectPaymentRefunded(ctx context.Context, e *paymentv1.PaymentRefunded, _ es.Event) error {
	return p.add(ctx, "refunded_cents", e.GetAmountCents())
}

// foldModel folds the whole log into a Summary on each read: the read
// model of the in-memory store, which has nowhere to keep a table.
type foldModel struct{ store es.Store }

func (m foldModel) summary(ctx context.Context) (*reportv1.Summary, error) {
	return readSummary(ctx, m.store)
}
