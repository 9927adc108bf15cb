package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/internal/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered, append-only schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string // with {{schema}} placeholders
}

// Migrations returns pgstore's migrations in order.
func Migrations() []Migration {
	ms, err := LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		// The files are embedded at build time; a bad name is a build defect.
		panic(err)
	}
	return ms
}

// LoadMigrations reads files named NNNN_name.sql from dir in fsys, in order
// of NNNN. Other esgen packages that keep tables beside the log (snapshots,
// checkpoints, read models) use it with [MigrateSet].
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	files, err := migration.Load(fsys, dir)
	ms := make([]Migration, len(files))
	for i, f := range files {
		ms[i] = Migration(f)
	}
	return ms, err
}

// Migrate creates or upgrades the event store's tables in the configured
// schema (default "esgen"). It is safe to run concurrently from several
// processes and a no-op when the schema is current. Options other than
// [WithSchema] are ignored.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return err
	}
	return MigrateSet(ctx, pool, cfg.schema, "events", Migrations())
}

// MigrateSet applies the migrations of one named set (such as "events") in
// schema, each in its own transaction, recording them in
// <schema>.schema_migrations. A process-wide advisory lock keyed by the
// schema serialises concurrent migrators.
func MigrateSet(ctx context.Context, pool *pgxpool.Pool, schema, set string, ms []Migration) error {
	q := pgx.Identifier{schema}.Sanitize()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s in schema %q: %w", set, schema, err)
	}
	defer conn.Release()
	// Session-level lock: held across the per-migration transactions below.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('esgen.migrate.' || $1, 0))`, schema); err != nil {
		return fmt.Errorf("migrate %s in schema %q: take migration lock: %w", set, schema, err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended('esgen.migrate.' || $1, 0))`, schema)
	}()
	setup := `CREATE SCHEMA IF NOT EXISTS ` + q + `;
CREATE TABLE IF NOT EXISTS ` + q + `.schema_migrations (
    set_name   text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (set_name, version)
)`
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fmt.Errorf("migrate %s in schema %q: %w", set, schema, err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM `+q+`.schema_migrations WHERE set_name = $1`, set)
	if err != nil {
		return fmt.Errorf("migrate %s in schema %q: %w", set, schema, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate %s in schema %q: %w", set, schema, err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate %s in schema %q: %w", set, schema, err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		sql := strings.ReplaceAll(m.SQL, "{{schema}}", q)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (set_name, version, name) VALUES ($1, $2, $3)`, set, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s in schema %q: migration %04d_%s: %w", set, schema, m.Version, m.Name, err)
		}
	}
	return nil
}
