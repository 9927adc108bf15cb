package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/es"
)

// Store is an [es.Store] on PostgreSQL. It is safe for concurrent use.
// Close it to stop the background notifier and listener goroutines.
type Store struct {
	pool *pgxpool.Pool
	cfg  config
	sql  statements

	wake     wakeup // signalled after local appends and remote notifications
	notifier *notifier

	listenOnce sync.Once
	stop       context.CancelFunc // stops background goroutines
	stopCtx    context.Context
	bg         sync.WaitGroup

	ownPool bool
}

var _ es.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*config)

type config struct {
	schema       string
	limits       es.Limits
	pollInterval time.Duration
	pageSize     int
	notify       bool
	logger       *slog.Logger
}

func newConfig(opts []Option) config {
	c := config{
		schema:       "esgen",
		limits:       es.DefaultLimits,
		pollInterval: 500 * time.Millisecond,
		pageSize:     10000,
		notify:       true,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

func (c *config) validate() error {
	var errs []error
	if c.schema == "" {
		errs = append(errs, errors.New("pgstore: schema name is empty"))
	}
	if c.limits.MaxEvents <= 0 || c.limits.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("pgstore: limits must be positive, got %d events and %d bytes", c.limits.MaxEvents, c.limits.MaxBytes))
	}
	if c.pollInterval <= 0 {
		errs = append(errs, fmt.Errorf("pgstore: poll interval must be positive, got %s", c.pollInterval))
	}
	if c.pageSize <= 0 {
		errs = append(errs, fmt.Errorf("pgstore: page size must be positive, got %d", c.pageSize))
	}
	return errors.Join(errs...)
}

// WithSchema sets the Postgres schema that holds the tables (default
// "esgen"), so that several apps can share a database.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithLimits sets the largest append accepted (default [es.DefaultLimits]).
func WithLimits(l es.Limits) Option { return func(c *config) { c.limits = l } }

// WithPollInterval sets how often a caught-up subscription polls when no
// notification arrives (default 500ms). Notifications make live delivery
// immediate; polling covers lost notifications and transactions outside
// esgen that hold the global log back.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// WithPageSize sets the most events one read query fetches (default
// 10,000). Reads start with a smaller page and size the next ones by the
// events seen, so that a page stays within a 32 MiB budget.
func WithPageSize(n int) Option { return func(c *config) { c.pageSize = n } }

// WithNotify turns cross-process NOTIFY on or off (default on). When on, a
// background goroutine sends one coalesced NOTIFY after appends, outside the
// append's transaction so that commits are not serialised on the notify
// queue lock. Subscribers in the same process are woken directly either way.
func WithNotify(on bool) Option { return func(c *config) { c.notify = on } }

// WithLogger sets the logger for background errors (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// New returns a Store on pool. It does not create tables: run [Migrate]
// first (or use [Open]). The pool stays the caller's to close.
func New(pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{pool: pool, cfg: cfg, sql: newStatements(cfg.schema)}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	if cfg.notify {
		s.notifier = newNotifier(s)
	}
	return s, nil
}

// Open connects to the database at url, runs [Migrate], and returns a Store
// that owns the pool: Close closes it.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	if err := Migrate(ctx, pool, opts...); err != nil {
		pool.Close()
		return nil, err
	}
	s, err := New(pool, opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownPool = true
	return s, nil
}

// Pool returns the pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the Postgres schema that holds the store's tables.
func (s *Store) Schema() string { return s.cfg.schema }

// Close stops the store's background goroutines and waits for them, and
// closes the pool if [Open] created it. Subscriptions end with [es.ErrClosed].
func (s *Store) Close() error {
	s.stop()
	s.bg.Wait()
	if s.ownPool {
		s.pool.Close()
	}
	return nil
}

// mapErr turns driver errors into es errors with context. what describes the
// call, e.g. `append to "order-1"`.
func (s *Store) mapErr(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("pgstore: %s: %w", what, ctxErr)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000" || pgErr.Code == "42883") {
		return fmt.Errorf("pgstore: %s: schema %q has no esgen event tables (run pgstore.Migrate or `esgen migrate`): %w", what, s.cfg.schema, err)
	}
	if errors.Is(err, pgx.ErrTxClosed) || (errors.Is(err, context.Canceled) && s.stopCtx.Err() != nil) {
		return fmt.Errorf("pgstore: %s: %w", what, es.ErrClosed)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}
