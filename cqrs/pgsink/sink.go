package pgsink

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationSet is the name under which pgsink's migrations are recorded in
// <schema>.schema_migrations.
const MigrationSet = "pgsink"

// Migrations returns pgsink's migrations in order.
func Migrations() []pgstore.Migration {
	ms, err := pgstore.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time: a bad name is a build defect
	}
	return ms
}

// Option configures a Sink.
type Option func(*config)

type config struct {
	schema string
	logger *slog.Logger
}

// WithSchema sets the Postgres schema of the checkpoint tables (default
// "esgen", the event store's).
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

func newConfig(opts []Option) (config, error) {
	c := config{schema: "esgen"}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.schema == "" {
		return c, errors.New("pgsink: schema name is empty")
	}
	return c, nil
}

// Migrate creates or upgrades pgsink's tables. It is safe to run
// concurrently and a no-op when they are current.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	if err := pgstore.MigrateSet(ctx, pool, cfg.schema, MigrationSet, Migrations()); err != nil {
		return fmt.Errorf("pgsink: %w", err)
	}
	return nil
}

// Sink is a [cqrs.Sink] on PostgreSQL. It is safe for concurrent use, by
// any number of projections.
type Sink struct {
	pool *pgxpool.Pool
	cfg  config
	sql  statements

	// beforeCommit, set by tests, runs after the checkpoint is written and
	// before the commit.
	beforeCommit func()
}

var (
	_ cqrs.Sink        = (*Sink)(nil)
	_ cqrs.EventParker = (*Sink)(nil)
)

// New returns a Sink on pool. It does not create tables: run [Migrate] first
// (or use [Open]). The pool stays the caller's.
func New(pool *pgxpool.Pool, opts ...Option) (*Sink, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Sink{pool: pool, cfg: cfg, sql: newStatements(cfg.schema)}, nil
}

// Open runs [Migrate] and returns a Sink on pool.
func Open(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Sink, error) {
	if err := Migrate(ctx, pool, opts...); err != nil {
		return nil, err
	}
	return New(pool, opts...)
}

// Pool returns the sink's pool.
func (s *Sink) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema of the sink's tables.
func (s *Sink) Schema() string { return s.cfg.schema }

type statements struct {
	checkpoint, saveCheckpoint, park, reset string
}

func newStatements(schema string) statements {
	q := pgx.Identifier{schema}.Sanitize()
	return statements{
		checkpoint: `SELECT commit_pos, prepare_pos FROM ` + q + `.projection_checkpoints WHERE projection = $1`,
		// The fence: the update happens only if the stored checkpoint is
		// before the batch's first event ($4, $5). If another runner
		// committed that batch meanwhile, ON CONFLICT DO UPDATE waits for
		// its row lock and then sees its checkpoint (ON CONFLICT evaluates
		// the WHERE against the latest committed row, even in READ
		// COMMITTED), so no row is returned and the caller rolls back.
		saveCheckpoint: `INSERT INTO ` + q + `.projection_checkpoints AS c (projection, commit_pos, prepare_pos, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (projection) DO UPDATE
SET commit_pos = EXCLUDED.commit_pos, prepare_pos = EXCLUDED.prepare_pos, updated_at = now()
WHERE (c.commit_pos, c.prepare_pos) < ($4::bigint, $5::bigint)`,
		park: `INSERT INTO ` + q + `.projection_parked AS p
    (projection, event_id, stream_id, version, type, commit_pos, prepare_pos, error, attempts, skipped)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (projection, event_id) DO UPDATE
SET error = EXCLUDED.error, attempts = p.attempts + EXCLUDED.attempts, skipped = EXCLUDED.skipped, parked_at = now()`,
		reset: `DELETE FROM ` + q + `.projection_checkpoints WHERE projection = $1`,
	}
}

// Checkpoint implements [cqrs.Sink].
func (s *Sink) Checkpoint(ctx context.Context, projection string) (es.Position, error) {
	var c, p int64
	err := s.pool.QueryRow(ctx, s.sql.checkpoint, projection).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return es.Position{}, nil
	}
	if err != nil {
		return es.Position{}, s.mapErr(fmt.Sprintf("read checkpoint of %q", projection), err)
	}
	return es.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// Apply implements [cqrs.Sink] in one transaction: the handler's writes,
// then the fenced checkpoint update, then commit. It returns
// [cqrs.ErrCheckpointMoved] when another runner applied the batch first, and
// a *[cqrs.EventError] when a queued statement fails, naming the event that
// queued it.
func (s *Sink) Apply(ctx context.Context, projection string, batch []es.Event, handle func(ctx context.Context, rec es.Event) error) error {
	if len(batch) == 0 {
		return nil
	}
	first, last := batch[0].Position, batch[len(batch)-1].Position
	what := fmt.Sprintf("apply %d events at %s to projection %q", len(batch), first, projection)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.mapErr(what, err)
	}
	defer func() {
		// A no-op after Commit; after a failure, bounded so that a dead
		// connection cannot hold the runner.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	w := &writer{tx: tx, events: batch}
	hctx := context.WithValue(ctx, writerKey{}, w)
	for i := range batch {
		w.current = i
		if err := handle(hctx, batch[i]); err != nil {
			if w.err != nil {
				return w.err
			}
			return fmt.Errorf("pgsink: %s: %w", what, err)
		}
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, s.sql.saveCheckpoint, projection,
		int64(last.Commit), int64(last.Prepare), int64(first.Commit), int64(first.Prepare))
	if err != nil {
		return s.mapErr(what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgsink: %s: %w", what, cqrs.ErrCheckpointMoved)
	}
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	if err := tx.Commit(ctx); err != nil {
		return s.mapErr(what, err)
	}
	return nil
}

// Park implements [cqrs.EventParker]: it records the event in
// projection_parked, in the batch's transaction when ctx carries one.
func (s *Sink) Park(ctx context.Context, p cqrs.OnParkParams) error {
	e := p.Event
	args := []any{p.Projection, [16]byte(e.ID), e.StreamID, e.Version, e.Type,
		int64(e.Position.Commit), int64(e.Position.Prepare), p.Err.Error(), p.Attempts, p.Skipped}
	var err error
	if w, ok := ctx.Value(writerKey{}).(*writer); ok {
		if err = w.flush(ctx); err == nil {
			_, err = w.tx.Exec(ctx, s.sql.park, args...)
		}
	} else {
		_, err = s.pool.Exec(ctx, s.sql.park, args...)
	}
	return s.mapErr(fmt.Sprintf("park event %d of stream %q for projection %q", e.Version, e.StreamID, p.Projection), err)
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
	q := pgx.Identifier{s.cfg.schema}.Sanitize()
	rows, err := s.pool.Query(ctx, `SELECT projection, event_id, stream_id, version, type, commit_pos, prepare_pos, error, attempts, skipped, parked_at
FROM `+q+`.projection_parked WHERE $1 = '' OR projection = $1 ORDER BY commit_pos, prepare_pos`, projection)
	if err != nil {
		return nil, s.mapErr("list parked events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Parked, error) {
		var p Parked
		var id [16]byte
		var c, pp int64
		err := r.Scan(&p.Projection, &id, &p.StreamID, &p.Version, &p.Type, &c, &pp, &p.Error, &p.Attempts, &p.Skipped, &p.ParkedAt)
		p.EventID, p.Position = es.ID(id), es.Position{Commit: uint64(c), Prepare: uint64(pp)}
		return p, err
	})
	return out, s.mapErr("list parked events", err)
}

// Reset deletes projection's checkpoint, in the transaction on ctx if there
// is one ([Tx]), so that its next run starts from the beginning of the log.
// Clearing the read model is the caller's: do it in the same transaction
// with [Sink.ResetFunc].
func (s *Sink) Reset(ctx context.Context, projection string) error {
	return s.ResetFunc(ctx, projection, nil)
}

// ResetFunc deletes projection's checkpoint and runs clear (when not nil)
// in one transaction; clear empties the read model through [Tx](ctx). Stop
// the projection's runners first, or hold its lease: a runner that is
// applying a batch meanwhile would write its checkpoint again.
func (s *Sink) ResetFunc(ctx context.Context, projection string, clear func(ctx context.Context) error) error {
	what := fmt.Sprintf("reset projection %q", projection)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		w := &writer{tx: tx}
		if clear != nil {
			if err := clear(context.WithValue(ctx, writerKey{}, w)); err != nil {
				return err
			}
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, s.sql.reset, projection)
		return err
	})
	return s.mapErr(what, err)
}

func (s *Sink) mapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
		return fmt.Errorf("pgsink: %s: schema %q has no projection tables (run pgsink.Migrate): %w", what, s.cfg.schema, err)
	}
	return fmt.Errorf("pgsink: %s: %w", what, err)
}
