package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/internal/migration"
)

// Migration is one step of a component's schema in the store's file.
//
// Every component that keeps tables in the file (the event log is the
// component "es"; snapshots, checkpoints and read models add their own)
// numbers its steps 1, 2, 3... without gaps. Steps are append-only: never edit
// or renumber a released step, add the next one instead.
type Migration struct {
	// Version is the step's number within its component.
	Version int
	// Name says what the step does. It is recorded in the file.
	Name string
	// SQL holds the step's statements, separated by semicolons.
	SQL string
}

// LoadMigrations reads a component's migrations from the files of dir in
// fsys named NNNN_name.sql (such as 0001_events.sql), ordered by number; the
// numbers must run 1, 2, 3... It is meant for migrations embedded with
// [embed.FS].
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	files, err := migration.Load(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	ms := make([]Migration, len(files))
	for i, f := range files {
		ms[i] = Migration(f)
	}
	return ms, checkMigrations("", ms)
}

func checkMigrations(component string, ms []Migration) error {
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("sqlitestore: migrations of %q: step %d has version %d; want versions 1, 2, 3... in order", component, i+1, m.Version)
		}
	}
	return nil
}

// metaSchema creates the table that records which migrations the file has.
// It is created together with the application ID that marks the file as
// esgen's (see identify).
const metaSchema = `CREATE TABLE IF NOT EXISTS esgen_migrations (
    component  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL,
    PRIMARY KEY (component, version)
) STRICT`

const (
	querySchemaVersion = `SELECT COALESCE(MAX(version), 0) FROM esgen_migrations WHERE component = ?`
	insertMigration    = `INSERT INTO esgen_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`
)

// Migrate brings component's tables in the store's file up to the last of
// migrations: it applies the steps the file does not have yet, in order, in
// one transaction with the records of what it applied, so another process
// sees the schema either before or after. It is idempotent and safe to run
// from several processes at once.
//
// It returns an error matching [ErrNewerSchema] when the file already has a
// later step than migrations holds: the file was written by a newer release.
func (s *Store) Migrate(ctx context.Context, component string, migrations []Migration) error {
	if component == "" {
		return errors.New("sqlitestore: migrate: empty component name")
	}
	if err := checkMigrations(component, migrations); err != nil {
		return err
	}
	if s.isClosed() {
		return fmt.Errorf("sqlitestore: migrate %q: %w", component, es.ErrClosed)
	}
	op := "migrate " + strconv.Quote(component)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	ctx = detach(ctx)
	// The common case, a file already up to date, needs no write lock, so
	// that opening a store does not wait for another process's writes.
	var have int
	if err := s.w.QueryRowContext(ctx, querySchemaVersion, component).Scan(&have); err != nil {
		return s.fail(ctx, op, err)
	}
	if have == len(migrations) {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, querySchemaVersion, component).Scan(&have); err != nil {
		return s.fail(ctx, op, err)
	}
	if have > len(migrations) {
		return fmt.Errorf("sqlitestore: %s in %s: the file has schema version %d of %q, this release knows versions up to %d; upgrade esgen: %w",
			op, s.path, have, component, len(migrations), ErrNewerSchema)
	}
	if have == len(migrations) {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, m := range migrations[have:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return s.fail(ctx, fmt.Sprintf("%s: step %d (%s)", op, m.Version, m.Name), err)
		}
		if _, err := tx.ExecContext(ctx, insertMigration, component, m.Version, m.Name, now); err != nil {
			return s.fail(ctx, op, err)
		}
	}
	return s.fail(ctx, op, tx.Commit())
}

// SchemaVersion returns the number of the last migration of component the
// file has, 0 for none.
func (s *Store) SchemaVersion(ctx context.Context, component string) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, querySchemaVersion, component).Scan(&v)
	return v, s.fail(ctx, "read schema version of "+strconv.Quote(component), err)
}
