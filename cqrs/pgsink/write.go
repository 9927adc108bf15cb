package pgsink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

type writerKey struct{}

// writer is the write handle of one Apply: its transaction and the
// statements queued by the handler, with the index of the event that queued
// each, to blame the right event when one fails.
type writer struct {
	tx      pgx.Tx
	events  []es.Event
	current int
	batch   *pgx.Batch
	owners  []int
	err     error
}

func (w *writer) queue(sql string, args []any) {
	if w.batch == nil {
		w.batch = &pgx.Batch{}
	}
	w.batch.Queue(sql, args...)
	w.owners = append(w.owners, w.current)
}

// flush sends the queued statements in one round trip. After a failure the
// transaction is aborted, and every later flush returns the same error.
func (w *writer) flush(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	if w.batch == nil || w.batch.Len() == 0 {
		return nil
	}
	b, owners := w.batch, w.owners
	w.batch, w.owners = nil, nil
	br := w.tx.SendBatch(ctx, b)
	for _, owner := range owners {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			w.err = w.blame(ctx, owner, err)
			return w.err
		}
	}
	if err := br.Close(); err != nil {
		w.err = fmt.Errorf("pgsink: send queued writes: %w", err)
	}
	return w.err
}

// blame wraps err as a *cqrs.EventError for the event that queued the
// statement, unless the failure is the connection's or the server's rather
// than the statement's.
func (w *writer) blame(ctx context.Context, owner int, err error) error {
	var pgErr *pgconn.PgError
	if ctx.Err() != nil || !errors.As(err, &pgErr) || owner >= len(w.events) {
		return fmt.Errorf("pgsink: send queued writes: %w", err)
	}
	switch pgErr.Code[:2] {
	case "08", "53", "57", "58": // connection, resources, operator intervention, system
		return fmt.Errorf("pgsink: send queued writes: %w", err)
	}
	return &cqrs.EventError{Event: w.events[owner], Err: fmt.Errorf("pgsink: queued write: %w", err)}
}

func writerFrom(ctx context.Context) (*writer, error) {
	w, ok := ctx.Value(writerKey{}).(*writer)
	if !ok {
		return nil, errors.New("pgsink: no transaction on the context: write only from a handler called by Sink.Apply")
	}
	return w, nil
}

// Tx returns the transaction of the batch being applied, for a handler's own
// queries, after sending the statements queued so far (if that fails, the
// transaction is aborted and Apply returns the failure). It returns nil when
// ctx does not come from [Sink.Apply].
func Tx(ctx context.Context) pgx.Tx {
	w, err := writerFrom(ctx)
	if err != nil {
		return nil
	}
	_ = w.flush(ctx)
	return w.tx
}

// Exec queues a statement in the batch's transaction. It is sent, with the
// other queued statements, before the checkpoint is written or when [Tx] is
// next called. Its error reports only a missing transaction; the statement's
// own error comes back from Apply.
func Exec(ctx context.Context, sql string, args ...any) error {
	w, err := writerFrom(ctx)
	if err != nil {
		return err
	}
	w.queue(sql, args)
	return nil
}

// Table describes a read-model table for the common write shapes: upsert a
// row by its key, delete a row by its key. Build it once with [NewTable]; it
// is safe for concurrent use. During a [Sink.Rebuild] its writes go to the
// copy being built (see [Name]).
type Table struct {
	name      string
	key, cols []string
	live      tableSQL
	next      tableSQL
}

type tableSQL struct{ upsert, delete string }

// NewTable describes table name (optionally schema-qualified, "app.orders")
// keyed by key (its primary key or a unique constraint's columns) with the
// other columns cols. It panics when key is empty, as a programming error.
func NewTable(name string, key []string, cols ...string) *Table {
	if len(key) == 0 {
		panic("pgsink: NewTable " + name + ": no key columns")
	}
	return &Table{name: name, key: key, cols: cols,
		live: buildTableSQL(name, key, cols), next: buildTableSQL(name+nextSuffix, key, cols)}
}

func buildTableSQL(name string, key, cols []string) tableSQL {
	q := pgx.Identifier(strings.Split(name, ".")).Sanitize()
	ident := func(cs []string) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = pgx.Identifier{c}.Sanitize()
		}
		return out
	}
	k, c := ident(key), ident(cols)
	all := append(append([]string{}, k...), c...)
	params := make([]string, len(all))
	for i := range params {
		params[i] = "$" + strconv.Itoa(i+1)
	}
	up := "INSERT INTO " + q + " (" + strings.Join(all, ", ") + ") VALUES (" + strings.Join(params, ", ") +
		") ON CONFLICT (" + strings.Join(k, ", ") + ") DO "
	if len(c) == 0 {
		up += "NOTHING"
	} else {
		sets := make([]string, len(c))
		for i, col := range c {
			sets[i] = col + " = EXCLUDED." + col
		}
		up += "UPDATE SET " + strings.Join(sets, ", ")
	}
	where := make([]string, len(k))
	for i, col := range k {
		where[i] = col + " = $" + strconv.Itoa(i+1)
	}
	return tableSQL{upsert: up, delete: "DELETE FROM " + q + " WHERE " + strings.Join(where, " AND ")}
}

func (t *Table) sql(ctx context.Context) tableSQL {
	if rebuilding(ctx) {
		return t.next
	}
	return t.live
}

// Upsert queues an insert of the row with values (the key columns' then the
// other columns', in NewTable's order) that updates the other columns when a
// row with the key exists. See [Exec] for when it is sent.
func (t *Table) Upsert(ctx context.Context, values ...any) error {
	if len(values) != len(t.key)+len(t.cols) {
		return fmt.Errorf("pgsink: upsert into %s: %d values for %d columns", t.name, len(values), len(t.key)+len(t.cols))
	}
	return Exec(ctx, t.sql(ctx).upsert, values...)
}

// Delete queues a delete of the row with key values keys.
func (t *Table) Delete(ctx context.Context, keys ...any) error {
	if len(keys) != len(t.key) {
		return fmt.Errorf("pgsink: delete from %s: %d values for %d key columns", t.name, len(keys), len(t.key))
	}
	return Exec(ctx, t.sql(ctx).delete, keys...)
}
