package sqlitesink

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/sqlitestore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Component is the name under which the sink's migrations are recorded in
// the store's file.
const Component = "sqlitesink"

// Migrations returns the sink's migrations in order.
func Migrations() []sqlitestore.Migration {
	ms, err := sqlitestore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time: a bad name is a build defect
	}
	return ms
}

const (
	qCheckpoint = `SELECT commit_pos, prepare_pos FROM projection_checkpoints WHERE projection = ?`
	// The WHERE repeats the fence Apply checks first; within one write
	// transaction it cannot fail, but it keeps the statement safe alone.
	qSaveCheckpoint = `INSERT INTO projection_checkpoints (projection, commit_pos, prepare_pos, updated_at)
VALUES (?1, ?2, ?3, ?6)
ON CONFLICT (projection) DO UPDATE
SET commit_pos = excluded.commit_pos, prepare_pos = excluded.prepare_pos, updated_at = excluded.updated_at
WHERE (commit_pos, prepare_pos) < (?4, ?5)`
	qPark = `INSERT INTO projection_parked
    (projection, event_id, stream_id, version, type, commit_pos, prepare_pos, error, attempts, skipped, parked_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (projection, event_id) DO UPDATE
SET error = excluded.error, attempts = attempts + excluded.attempts, skipped = excluded.skipped, parked_at = excluded.parked_at`
	qListParked = `SELECT projection, event_id, stream_id, version, type, commit_pos, prepare_pos, error, attempts, skipped, parked_at
FROM projection_parked WHERE ?1 = '' OR projection = ?1 ORDER BY commit_pos, prepare_pos`
	qReset = `DELETE FROM projection_checkpoints WHERE projection = ?`
)

// Sink is a [cqrs.Sink] in the SQLite file of a [sqlitestore.Store]. Create
// it with [New].
//
// A Sink is safe for concurrent use, by any number of projections and
// goroutines, and by several processes on the same file. SQLite has one
// writer per file: Apply calls, and the store's appends, take turns on the
// store's writer connection and on the file's write lock, so batches of
// different projections never run at the same time, and a long batch makes
// appends wait (for up to the store's busy timeout when they come from
// another process). Keep batches short.
type Sink struct {
	store *sqlitestore.Store
}

var (
	_ cqrs.Sink        = (*Sink)(nil)
	_ cqrs.EventParker = (*Sink)(nil)
)

// New returns a Sink in store's file, creating or upgrading its tables
// first ([sqlitestore.Store.Migrate], idempotent). The store stays the
// caller's: close it after the sink's last use.
func New(store *sqlitestore.Store) (*Sink, error) {
	if store == nil {
		return nil, errors.New("sqlitesink: new sink: store is nil")
	}
	// Migrate is quick, and waits only for the busy timeout; New has no
	// context to pass, as its signature mirrors the other sinks' New.
	if err := store.Migrate(context.Background(), Component, Migrations()); err != nil {
		return nil, fmt.Errorf("sqlitesink: new sink: %w", err)
	}
	return &Sink{store: store}, nil
}

// Store returns the store whose file the sink writes.
func (s *Sink) Store() *sqlitestore.Store { return s.store }

type txKey struct{}

// Tx returns the write transaction of the Apply (or [Sink.ResetFunc]) that
// ctx belongs to, or nil outside one. A projection's handler writes its read
// model through it, so that the writes commit with the checkpoint.
//
// The transaction holds the store's only writer connection: while it is
// open, anything else that writes through the same Store (Append,
// DeleteStream, SaveSnapshot, Migrate, or [sqlitestore.Store.DB] used
// directly) waits for it, so a handler that does so deadlocks. Read through
// the transaction to see the batch's own writes; [sqlitestore.Store.ReadDB]
// sees only committed data.
//
// The context Apply gives the handler is never cancelled, so that no
// statement on the writer connection is interrupted: with
// modernc.org/sqlite v1.34.0, a query whose context is cancelled just as
// it returns its first row leaves its statement open, and the connection
// then fails every later statement with "interrupted". Do not pass another
// cancellable context to the transaction's query methods either.
func Tx(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// Checkpoint implements [cqrs.Sink]: the position of the last event of the
// last batch applied for projection, or the zero Position when there is
// none.
func (s *Sink) Checkpoint(ctx context.Context, projection string) (es.Position, error) {
	what := fmt.Sprintf("read checkpoint of projection %q", projection)
	if err := ctx.Err(); err != nil {
		return es.Position{}, fmt.Errorf("sqlitesink: %s: %w", what, err)
	}
	// Not cancelled midway: see Tx. The read is one row by primary key.
	var c, p int64
	err := s.store.ReadDB().QueryRowContext(context.WithoutCancel(ctx), qCheckpoint, projection).Scan(&c, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return es.Position{}, nil
	}
	if err != nil {
		return es.Position{}, s.fail(ctx, what, err)
	}
	return es.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// Apply implements [cqrs.Sink] in one write transaction on the store's
// writer: it checks that the stored checkpoint of projection is before the
// batch's first event, calls handle for each event with a context carrying
// the transaction ([Tx]), writes the position of the last event as the
// checkpoint, and commits. If it returns an error, nothing of the batch is
// kept: neither the handler's writes nor the checkpoint. Should the process
// die at any point, SQLite rolls back what was not committed.
//
// Cancelling ctx stops Apply between two events or before the commit, and
// rolls the batch back; it does not interrupt a statement. The handler's
// context carries ctx's values but not its cancellation (see [Tx] for why);
// a handler that waits on something else should watch ctx itself.
//
// It returns an error matching [cqrs.ErrCheckpointMoved] when the stored
// checkpoint is at or past the batch's first event (the batch, or a later
// one, was applied already), without calling handle; the handler's errors,
// wrapped, naming the event; [sqlitestore.ErrLocked] when the file's write
// lock stayed taken for longer than the busy timeout; and the context's
// error once ctx is done. An empty batch does nothing.
func (s *Sink) Apply(ctx context.Context, projection string, batch []es.Event, handle func(ctx context.Context, rec es.Event) error) error {
	if len(batch) == 0 {
		return nil
	}
	first, last := batch[0].Position, batch[len(batch)-1].Position
	what := fmt.Sprintf("apply %d events from %s to projection %q", len(batch), first, projection)
	if err := fits(first, last); err != nil {
		return fmt.Errorf("sqlitesink: %s: %w", what, err)
	}
	// Waiting for the writer connection honours ctx; the statements on it
	// run without cancellation (see Tx).
	conn, err := s.store.DB().Conn(ctx)
	if err != nil {
		return s.fail(ctx, what, err)
	}
	defer conn.Close()
	bg := context.WithoutCancel(ctx)
	// BEGIN IMMEDIATE (the store's writer begins every transaction so):
	// the write lock is held from here to the commit, so the checkpoint
	// read next cannot move before the commit.
	tx, err := conn.BeginTx(bg, nil)
	if err != nil {
		return s.fail(ctx, what, err)
	}
	defer tx.Rollback()
	var c, p int64
	switch err := tx.QueryRowContext(bg, qCheckpoint, projection).Scan(&c, &p); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return s.fail(ctx, what, err)
	case !before(es.Position{Commit: uint64(c), Prepare: uint64(p)}, first):
		return fmt.Errorf("sqlitesink: %s: the checkpoint is at %s: %w", what,
			es.Position{Commit: uint64(c), Prepare: uint64(p)}, cqrs.ErrCheckpointMoved)
	}
	hctx := context.WithValue(bg, txKey{}, tx)
	for _, rec := range batch {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlitesink: %s: stopped before event %d of stream %q: %w", what, rec.Version, rec.StreamID, err)
		}
		if err := handle(hctx, rec); err != nil {
			return fmt.Errorf("sqlitesink: projection %q: handle event %d of stream %q (%s, position %s): %w",
				projection, rec.Version, rec.StreamID, rec.Type, rec.Position, err)
		}
	}
	res, err := tx.ExecContext(bg, qSaveCheckpoint, projection, int64(last.Commit), int64(last.Prepare),
		int64(first.Commit), int64(first.Prepare), time.Now().UnixNano())
	if err != nil {
		return s.fail(ctx, what, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("sqlitesink: %s: %w", what, cqrs.ErrCheckpointMoved)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitesink: %s: stopped before the commit: %w", what, err)
	}
	// Once Commit returns nil the batch is stored; when it returns an
	// error, SQLite has rolled it back.
	if err := tx.Commit(); err != nil {
		return s.fail(bg, what, err)
	}
	return nil
}

// before reports whether a is before b in the log's order.
func before(a, b es.Position) bool {
	return a.Commit < b.Commit || a.Commit == b.Commit && a.Prepare < b.Prepare
}

// fits checks that positions fit SQLite's signed 64-bit integers, so that
// they compare in the table as they do in the log.
func fits(ps ...es.Position) error {
	for _, p := range ps {
		if p.Commit > math.MaxInt64 || p.Prepare > math.MaxInt64 {
			return fmt.Errorf("position %s does not fit a signed 64-bit integer: %w", p, es.ErrInvalidArgument)
		}
	}
	return nil
}

// Park implements [cqrs.EventParker]: it records the event in
// projection_parked (one row per projection and event; parking it again
// adds the attempts), in the transaction on ctx when there is one ([Tx]),
// so that the record commits with the checkpoint that passes the event.
func (s *Sink) Park(ctx context.Context, p cqrs.OnParkParams) error {
	e := p.Event
	what := fmt.Sprintf("park event %d of stream %q for projection %q", e.Version, e.StreamID, p.Projection)
	if err := fits(e.Position); err != nil {
		return fmt.Errorf("sqlitesink: %s: %w", what, err)
	}
	msg := ""
	if p.Err != nil {
		msg = p.Err.Error()
	}
	args := []any{p.Projection, e.ID[:], e.StreamID, e.Version, e.Type, int64(e.Position.Commit), int64(e.Position.Prepare),
		msg, p.Attempts, p.Skipped, time.Now().UnixNano()}
	var err error
	if tx := Tx(ctx); tx != nil {
		_, err = tx.ExecContext(ctx, qPark, args...)
	} else if err = ctx.Err(); err == nil {
		_, err = s.store.DB().ExecContext(context.WithoutCancel(ctx), qPark, args...)
	}
	return s.fail(ctx, what, err)
}

// Parked is a row of projection_parked.
type Parked struct {
	Projection string
	EventID    es.ID
	StreamID   string
	Version    int64
	Type       string
	Position   es.Position
	Error      string
	Attempts   int
	Skipped    bool
	ParkedAt   time.Time
}

// ListParked returns the parked events of projection ("" for every
// projection), oldest first.
func (s *Sink) ListParked(ctx context.Context, projection string) ([]Parked, error) {
	const what = "list parked events"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlitesink: %s: %w", what, err)
	}
	rows, err := s.store.ReadDB().QueryContext(context.WithoutCancel(ctx), qListParked, projection)
	if err != nil {
		return nil, s.fail(ctx, what, err)
	}
	defer rows.Close()
	var out []Parked
	for rows.Next() {
		var (
			p        Parked
			id       []byte
			c, pp    int64
			parkedAt int64
		)
		if err := rows.Scan(&p.Projection, &id, &p.StreamID, &p.Version, &p.Type, &c, &pp, &p.Error, &p.Attempts, &p.Skipped, &parkedAt); err != nil {
			return nil, s.fail(ctx, what, err)
		}
		copy(p.EventID[:], id)
		p.Position = es.Position{Commit: uint64(c), Prepare: uint64(pp)}
		p.ParkedAt = time.Unix(0, parkedAt).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, what, err)
	}
	return out, nil
}

// Reset deletes projection's checkpoint, so that its next run starts from
// the beginning of the log. Clearing the read model is the caller's: do it
// in the same transaction with [Sink.ResetFunc].
func (s *Sink) Reset(ctx context.Context, projection string) error {
	return s.ResetFunc(ctx, projection, nil)
}

// ResetFunc deletes projection's checkpoint and runs clear (when not nil)
// in one write transaction; clear empties the read model through [Tx](ctx),
// whose context, as in Apply, is not cancelled.
// Stop the projection's runners first: one that applies a batch afterwards
// writes its checkpoint again.
func (s *Sink) ResetFunc(ctx context.Context, projection string, clear func(ctx context.Context) error) error {
	what := fmt.Sprintf("reset projection %q", projection)
	conn, err := s.store.DB().Conn(ctx)
	if err != nil {
		return s.fail(ctx, what, err)
	}
	defer conn.Close()
	bg := context.WithoutCancel(ctx) // see Tx
	tx, err := conn.BeginTx(bg, nil)
	if err != nil {
		return s.fail(ctx, what, err)
	}
	defer tx.Rollback()
	if clear != nil {
		if err := clear(context.WithValue(bg, txKey{}, tx)); err != nil {
			return fmt.Errorf("sqlitesink: %s: %w", what, err)
		}
	}
	if _, err := tx.ExecContext(bg, qReset, projection); err != nil {
		return s.fail(ctx, what, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitesink: %s: %w", what, err)
	}
	return s.fail(bg, what, tx.Commit())
}

// fail maps an error of database/sql or the driver to one that names what
// failed and matches the sentinels callers branch on (the context's error,
// [es.ErrClosed], [sqlitestore.ErrLocked]); the driver's error type does not
// leak, only its text. It returns nil for nil.
func (s *Sink) fail(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("sqlitesink: %s: %w", what, cerr)
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("sqlitesink: %s: %w", what, es.ErrClosed)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("sqlitesink: %s: %w", what, err)
	}
	switch se.Code() & 0xff {
	case sqliteBusy, sqliteLocked:
		return fmt.Errorf("sqlitesink: %s in %s: %w (%s)", what, s.store.Path(), sqlitestore.ErrLocked, se.Error())
	case sqliteInterrupt:
		return fmt.Errorf("sqlitesink: %s in %s: interrupted: %w", what, s.store.Path(), context.Canceled)
	}
	return fmt.Errorf("sqlitesink: %s in %s: %s", what, s.store.Path(), se.Error())
}

// SQLite primary result codes (https://www.sqlite.org/rescode.html).
const (
	sqliteBusy      = 5
	sqliteLocked    = 6
	sqliteInterrupt = 9
)
