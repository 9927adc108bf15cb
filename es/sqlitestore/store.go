package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/esgen-dev/esgen/es"
)

// Errors about the file, matched with [errors.Is]. Their messages name the
// file and what is wrong with it.
var (
	// ErrNotDatabase is returned by Open for a file that is not an SQLite
	// database, or is encrypted or corrupt.
	ErrNotDatabase = errors.New("not an SQLite database, or encrypted or corrupt")
	// ErrForeignDatabase is returned by Open for an SQLite database that
	// belongs to another application: it has tables but no esgen marker.
	// Open never adds tables to such a file.
	ErrForeignDatabase = errors.New("SQLite database of another application")
	// ErrNewerSchema is returned by Open and Migrate for a file written by a
	// newer release of esgen, whose schema this release does not know.
	ErrNewerSchema = errors.New("schema is newer than this release")
	// ErrLocked is returned when another connection or process held the
	// database's write lock for longer than the busy timeout.
	ErrLocked = errors.New("database is locked")
	// ErrReadOnly is returned when the file, or its directory, is not
	// writable.
	ErrReadOnly = errors.New("database is read-only")
)

// applicationID marks a file as esgen's, in the SQLite header's application
// ID field (PRAGMA application_id): "esgn".
const applicationID = 0x6573676e

//go:embed migrations
var migrationFiles embed.FS

// Component is the name under which the event log's migrations are
// recorded in the file.
const Component = "es"

// Defaults of the options.
const (
	DefaultBusyTimeout  = 5 * time.Second
	DefaultPollInterval = 250 * time.Millisecond
)

// Option configures a [Store]. Options are applied in order.
type Option func(*config)

type config struct {
	limits       es.Limits
	busyTimeout  time.Duration
	pollInterval time.Duration
	readConns    int
	syncNormal   bool
}

// WithLimits sets the limits on one append. Zero fields mean the field of
// [es.DefaultLimits].
func WithLimits(l es.Limits) Option {
	return func(c *config) {
		if l.MaxEvents > 0 {
			c.limits.MaxEvents = l.MaxEvents
		}
		if l.MaxBytes > 0 {
			c.limits.MaxBytes = l.MaxBytes
		}
	}
}

// WithBusyTimeout sets how long a call waits for a lock held by another
// connection or process before it fails with [ErrLocked]. Default
// [DefaultBusyTimeout].
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.busyTimeout = d
		}
	}
}

// WithPollInterval sets how often a live subscription looks for events
// appended by another Store or process. Appends through this Store wake its
// subscriptions at once. Default [DefaultPollInterval].
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pollInterval = d
		}
	}
}

// WithReadConns sets the size of the pool of read connections. Default: the
// larger of 4 and GOMAXPROCS.
func WithReadConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readConns = n
		}
	}
}

// WithRelaxedSync trades durability for append speed: SQLite stops syncing
// the write-ahead log to disk on every commit (PRAGMA synchronous=NORMAL). A
// crash of the process loses nothing, but a power loss or OS crash may lose
// the last appends that returned success. The file is never corrupted.
func WithRelaxedSync() Option {
	return func(c *config) { c.syncNormal = true }
}

// Store is an event log in one SQLite file. It is safe for concurrent use,
// also by several Stores and processes on the same file. Create it with
// [Open] and release it with [Store.Close].
type Store struct {
	path   string
	limits es.Limits
	poll   time.Duration
	busy   time.Duration

	// w is the writer: one connection, whose transactions begin with
	// BEGIN IMMEDIATE so that they take SQLite's write lock up front.
	w *sql.DB
	// r is the pool of read connections; they are query-only.
	r *sql.DB

	stmts stmts

	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// changed is closed, and replaced, after every append that writes
	// events, waking the subscriptions of this Store.
	changed chan struct{}
}

var _ es.Store = (*Store)(nil)

// Open opens the store in the file at path, creating the file when it does
// not exist, and brings its schema up to date.
//
// Open refuses, with an error naming the file and what is wrong, a file that
// is not an SQLite database ([ErrNotDatabase]), an SQLite database of another
// application ([ErrForeignDatabase]: it has tables and no esgen marker), a
// file written by a newer release ([ErrNewerSchema]), a file or directory
// that is not writable ([ErrReadOnly]) and a database locked for longer than
// the busy timeout ([ErrLocked]). In each case it writes nothing to the file.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	c := config{
		limits:       es.DefaultLimits,
		busyTimeout:  DefaultBusyTimeout,
		pollInterval: DefaultPollInterval,
		readConns:    max(4, runtime.GOMAXPROCS(0)),
	}
	for _, opt := range opts {
		opt(&c)
	}
	if path == "" {
		return nil, errors.New("sqlitestore: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if err := checkPath(abs); err != nil {
		return nil, err
	}
	s := &Store{
		path:    abs,
		limits:  c.limits,
		poll:    c.pollInterval,
		busy:    c.busyTimeout,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	syncMode := "FULL"
	if c.syncNormal {
		syncMode = "NORMAL"
	}
	// Only connection-level pragmas go in the DSN: nothing may write to the
	// file before identify has checked that it is ours.
	s.w, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", c.busyTimeout.Milliseconds()),
			"foreign_keys(1)",
			"synchronous(" + syncMode + ")",
		},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", abs, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := s.init(ctx); err != nil {
		s.w.Close()
		return nil, err
	}

	s.r, err = sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", c.busyTimeout.Milliseconds()),
			"query_only(1)",
		},
	}))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", abs, err)
	}
	s.r.SetMaxOpenConns(c.readConns)
	s.r.SetMaxIdleConns(c.readConns)
	if err := s.stmts.prepare(ctx, s.w, s.r); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, s.fail(ctx, "open", err)
	}
	return s, nil
}

// checkPath gives a clear error for paths SQLite would fail on with a vague
// "unable to open database file".
func checkPath(abs string) error {
	fi, err := os.Stat(abs)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("sqlitestore: open %s: is a directory, want a file path", abs)
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("sqlitestore: open %s: is not a regular file", abs)
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("sqlitestore: open %s: %w", abs, err)
	}
	dir := filepath.Dir(abs)
	di, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("sqlitestore: open %s: directory %s does not exist", abs, dir)
	case err != nil:
		return fmt.Errorf("sqlitestore: open %s: %w", abs, err)
	case !di.IsDir():
		return fmt.Errorf("sqlitestore: open %s: %s is not a directory", abs, dir)
	}
	return nil
}

// dsn builds the driver's URI for the file at abs. Escaping the path keeps
// names with '?', '#' or '%' intact.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	if !strings.HasPrefix(u.Path, "/") {
		// A Windows path (C:/...) needs the empty authority form file:///C:/...
		u.Path = "/" + u.Path
	}
	return u.String()
}

// init checks that the file is empty or ours, switches it to WAL mode, marks
// a new file as esgen's and applies the event log's migrations.
func (s *Store) init(ctx context.Context) error {
	// identify reads only; whatever it finds, nothing has been written yet.
	fresh, err := s.identify(ctx, s.w)
	if err != nil {
		return err
	}
	// WAL lets readers run beside the writer. It is a property of the file,
	// so it is set only now that the file is known to be empty or ours.
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return s.fail(ctx, "open", err)
	}
	if fresh {
		if err := s.mark(ctx); err != nil {
			return err
		}
	}
	ms, err := LoadMigrations(migrationFiles, "migrations/es")
	if err != nil {
		return err
	}
	return s.Migrate(ctx, Component, ms)
}

// identify reports whether the database is empty (fresh), and fails unless
// it is empty or esgen's.
func (s *Store) identify(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (fresh bool, err error) {
	var app int64
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil {
		return false, s.fail(ctx, "open", err)
	}
	if app == applicationID {
		return false, nil
	}
	var names sql.NullString
	if err := q.QueryRowContext(ctx,
		`SELECT group_concat(name, ', ') FROM (SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 5)`,
	).Scan(&names); err != nil {
		return false, s.fail(ctx, "open", err)
	}
	var total int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&total); err != nil {
		return false, s.fail(ctx, "open", err)
	}
	switch {
	case app != 0:
		return false, fmt.Errorf("sqlitestore: open %s: its application ID is %#08x, not esgen's %#08x; refusing to use it: %w",
			s.path, uint32(app), applicationID, ErrForeignDatabase)
	case total > 0:
		return false, fmt.Errorf("sqlitestore: open %s: it has no esgen marker and is not empty (%d schema objects; tables: %s); refusing to add tables to it: %w",
			s.path, total, names.String, ErrForeignDatabase)
	}
	return true, nil
}

// mark makes an empty file esgen's: the application ID and the migrations
// table, in one transaction that checks again that the file is empty, in case
// another process got there first.
func (s *Store) mark(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, "open", err)
	}
	defer tx.Rollback()
	fresh, err := s.identify(ctx, tx)
	if err != nil || !fresh {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return s.fail(ctx, "open", err)
	}
	if _, err := tx.ExecContext(ctx, metaSchema); err != nil {
		return s.fail(ctx, "open", err)
	}
	return s.fail(ctx, "open", tx.Commit())
}

// Path returns the absolute path of the store's file.
func (s *Store) Path() string { return s.path }

// Limits returns the limits the store applies to one append.
func (s *Store) Limits() es.Limits { return s.limits }

// DB returns the store's writer: a pool of exactly one connection, whose
// transactions begin with BEGIN IMMEDIATE and so take the file's write lock
// at once. It is for components that keep their own tables in the same file
// (snapshots, checkpoints, read models), so that they can write them in one
// transaction; create those tables with [Store.Migrate].
//
// Appends wait for the same connection: keep transactions short, and never
// call the Store from inside one, nor hold rows open while doing so; that
// deadlocks. For reads, use [Store.ReadDB].
func (s *Store) DB() *sql.DB { return s.w }

// ReadDB returns the store's pool of read connections. They are
// query-only (PRAGMA query_only) and read beside the writer without blocking
// it.
func (s *Store) ReadDB() *sql.DB { return s.r }

// Close stops the store's subscriptions (they yield [es.ErrClosed]) and
// closes its connections. Later calls return [es.ErrClosed]. Close is
// idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		err = errors.Join(s.stmts.close(), s.r.Close(), s.w.Close())
		if err != nil {
			err = fmt.Errorf("sqlitestore: close %s: %w", s.path, err)
		}
	})
	return err
}

func (s *Store) isClosed() bool { return s.closed.Load() }

// notify wakes the subscriptions waiting for new events.
func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changes returns the channel the next append will close.
func (s *Store) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// fail maps an error from the driver to one that names the operation and the
// file and matches this package's and es's sentinels; it returns nil for nil.
// Driver errors never leak: their text is kept, their types are not.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, es.ErrClosed) || strings.Contains(err.Error(), "sql: database is closed") {
		return fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	where := op + " in " + s.path
	if op == "open" {
		where = "open " + s.path
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("sqlitestore: %s: %w", where, err)
	}
	var kind error
	var hint string
	switch se.Code() & 0xff {
	case sqliteBusy, sqliteLocked:
		kind, hint = ErrLocked, fmt.Sprintf("another connection or process held the lock for longer than the busy timeout of %s", s.busy)
	case sqliteReadOnly, sqlitePerm:
		kind, hint = ErrReadOnly, "the file or its directory is not writable (SQLite also writes -wal and -shm files beside it)"
	case sqliteCantOpen:
		kind, hint = ErrReadOnly, "cannot open or create the file: check that it and its directory are readable and writable (SQLite also creates -wal and -shm files beside it)"
	case sqliteNotADB, sqliteCorrupt:
		kind, hint = ErrNotDatabase, ""
	case sqliteInterrupt:
		return fmt.Errorf("sqlitestore: %s: interrupted: %w", where, context.Canceled)
	}
	msg := se.Error()
	if kind == nil {
		return fmt.Errorf("sqlitestore: %s: %s", where, msg)
	}
	if hint != "" {
		return fmt.Errorf("sqlitestore: %s: %w: %s (%s)", where, kind, hint, msg)
	}
	return fmt.Errorf("sqlitestore: %s: %w (%s)", where, kind, msg)
}

// SQLite primary result codes (https://www.sqlite.org/rescode.html).
const (
	sqlitePerm      = 3
	sqliteBusy      = 5
	sqliteLocked    = 6
	sqliteReadOnly  = 8
	sqliteInterrupt = 9
	sqliteCorrupt   = 11
	sqliteCantOpen  = 14
	sqliteNotADB    = 26
)
