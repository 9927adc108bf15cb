package pgsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

// Suffixes of the tables of a blue/green rebuild: the copy being built and
// the replaced one, kept until the grace period ends.
const (
	nextSuffix = "__next"
	oldSuffix  = "__old"
)

type rebuildKey struct{}

func rebuilding(ctx context.Context) bool { v, _ := ctx.Value(rebuildKey{}).(bool); return v }

// Name returns the table a handler must write for read-model table name: name
// itself, or, while [Sink.Rebuild] builds the next version, the copy it is
// building. Use it in SQL passed to [Exec] or run on [Tx]; [Table] does it
// itself.
func Name(ctx context.Context, name string) string {
	if rebuilding(ctx) {
		return name + nextSuffix
	}
	return name
}

// RebuildOptions configures [Sink.Rebuild].
type RebuildOptions struct {
	// Tables are the projection's read-model tables, as the handler names
	// them (through [Name] or [Table]). Required.
	Tables []string
	// Grace is how long the replaced tables (renamed NAME__old) are kept
	// after the swap before they are dropped; Rebuild waits for it. Zero
	// drops them at once; negative keeps them (the next Rebuild drops them).
	Grace time.Duration
	// Runner options for the rebuilding runner (batch size, logger...).
	Runner []cqrs.RunnerOption
	// Progress, when set, is called about once a second with the
	// rebuild's checkpoint and the live projection's.
	Progress func(rebuild, live es.Position)
}

// nextProjection is p writing into the next version's tables, under its own
// checkpoint.
type nextProjection struct{ p cqrs.Projection }

func (n nextProjection) Name() string         { return n.p.Name() + nextSuffix }
func (n nextProjection) EventTypes() []string { return n.p.EventTypes() }
func (n nextProjection) Handle(ctx context.Context, rec es.Event) error {
	return n.p.Handle(context.WithValue(ctx, rebuildKey{}, true), rec)
}

// Rebuild builds the next version of p's read model beside the live one,
// blue/green: it creates each table's copy (NAME__next, LIKE NAME INCLUDING
// ALL), replays the log into the copies under its own checkpoint while the
// live projection keeps running and serving, and, once the copy has caught
// up with the live checkpoint, swaps them in one transaction: it locks the
// live tables, applies the events the live projection committed meanwhile,
// renames NAME to NAME__old and NAME__next to NAME, and gives the live
// projection the rebuilt checkpoint. Readers see the old tables, then the
// new ones, never a mix or an empty model. The old tables are dropped after
// opts.Grace.
//
// Cancel ctx to stop; calling Rebuild again resumes from the copy's
// checkpoint. The live projection's runner, in this process or another,
// need not stop: its batch in flight during the swap either commits before
// it (and is then applied to the copy too) or fails and is retried against
// the new tables.
func (s *Sink) Rebuild(ctx context.Context, store es.Store, p cqrs.Projection, opts RebuildOptions) error {
	name := p.Name()
	what := fmt.Sprintf("rebuild projection %q", name)
	if len(opts.Tables) == 0 {
		return fmt.Errorf("pgsink: %s: no tables given", what)
	}
	ident := func(t string) string { return pgx.Identifier(strings.Split(t, ".")).Sanitize() }
	for _, t := range opts.Tables {
		// A copy left by an interrupted rebuild is resumed; old tables of
		// a previous swap are past their grace period by now.
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+ident(t+oldSuffix)+`;
CREATE TABLE IF NOT EXISTS `+ident(t+nextSuffix)+` (LIKE `+ident(t)+` INCLUDING ALL)`); err != nil {
			return s.mapErr(what+": create "+t+nextSuffix, err)
		}
	}
	next := nextProjection{p}
	r, err := cqrs.NewRunner(store, s, next, opts.Runner...)
	if err != nil {
		return err
	}
	live := func(ctx context.Context) (es.Position, error) { return s.Checkpoint(ctx, name) }
	if err := r.RunUntil(ctx, live, opts.Progress); err != nil {
		return fmt.Errorf("pgsink: %s: %w", what, err)
	}
	for attempt := 0; ; attempt++ {
		err := s.swap(ctx, store, next, opts.Tables)
		if err == nil {
			break
		}
		var pgErr *pgconn.PgError
		if attempt < 5 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			continue // a deadlock with the live runner's batch: the loser retries
		}
		return s.mapErr(what+": swap", err)
	}
	if opts.Grace < 0 {
		return nil
	}
	if opts.Grace > 0 {
		t := time.NewTimer(opts.Grace)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil // the next Rebuild drops them
		case <-t.C:
		}
	}
	for _, t := range opts.Tables {
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+ident(t+oldSuffix)); err != nil {
			return s.mapErr(what+": drop "+t+oldSuffix, err)
		}
	}
	return nil
}

// swap makes the copies live in one transaction.
func (s *Sink) swap(ctx context.Context, store es.Store, next nextProjection, tables []string) error {
	name := next.p.Name()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ident := func(t string) string { return pgx.Identifier(strings.Split(t, ".")).Sanitize() }
		// The live tables first: this waits for the live runner's batch in
		// flight to commit (its checkpoint row is not locked yet), and
		// holds its next batch until the swap commits.
		lock := make([]string, 0, 2*len(tables))
		for _, t := range tables {
			lock = append(lock, ident(t), ident(t+nextSuffix))
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(lock, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return err
		}
		pos := func(projection string) (es.Position, error) {
			var c, p int64
			err := tx.QueryRow(ctx, `SELECT commit_pos, prepare_pos FROM `+s.q()+`.projection_checkpoints WHERE projection = $1 FOR UPDATE`, projection).Scan(&c, &p)
			if errors.Is(err, pgx.ErrNoRows) {
				return es.Position{}, nil
			}
			return es.Position{Commit: uint64(c), Prepare: uint64(p)}, err
		}
		live, err := pos(name)
		if err != nil {
			return err
		}
		rebuilt, err := pos(next.Name())
		if err != nil {
			return err
		}
		// Apply, into the copies, what the live projection committed after
		// the rebuild's checkpoint.
		if rebuilt.Before(live) {
			w := &writer{tx: tx}
			hctx := context.WithValue(ctx, writerKey{}, w)
			filter := es.Filter{EventTypes: next.EventTypes()}
			for e, err := range store.ReadAll(ctx, rebuilt, 0) {
				if err != nil {
					return err
				}
				if live.Before(e.Position) {
					break
				}
				w.events, w.current = []es.Event{e}, 0
				if filter.Match(&e) {
					if err := next.Handle(hctx, e); err != nil {
						return fmt.Errorf("catch up event %d of stream %q: %w", e.Version, e.StreamID, err)
					}
				}
				rebuilt = e.Position
			}
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		for _, t := range tables {
			short := t[strings.LastIndex(t, ".")+1:]
			if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(t)+` RENAME TO `+pgx.Identifier{short + oldSuffix}.Sanitize()+`;
ALTER TABLE `+ident(t+nextSuffix)+` RENAME TO `+pgx.Identifier{short}.Sanitize()); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, s.sql.reset, next.Name()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.q()+`.projection_status WHERE projection = $1`, next.Name()); err != nil {
			return err
		}
		if rebuilt.IsZero() {
			_, err = tx.Exec(ctx, s.sql.reset, name)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+s.q()+`.projection_checkpoints (projection, commit_pos, prepare_pos) VALUES ($1, $2, $3)
ON CONFLICT (projection) DO UPDATE SET commit_pos = EXCLUDED.commit_pos, prepare_pos = EXCLUDED.prepare_pos, updated_at = now()`,
			name, int64(rebuilt.Commit), int64(rebuilt.Prepare))
		return err
	})
}

// ActionRebuild asks for a blue/green [Sink.Rebuild] of a projection. It is
// served by [Sink.ServeRebuilds], not by the projection's runner.
const ActionRebuild cqrs.RequestAction = "rebuild"

// RebuildTarget is a projection that [Sink.ServeRebuilds] may rebuild.
type RebuildTarget struct {
	Projection cqrs.Projection
	Options    RebuildOptions
}

// ServeRebuilds carries out rebuild requests (`esgen projections rebuild`)
// for targets until ctx is done, checking every interval (1s when zero).
// Every copy of the app may run it: a rebuild is served under the lease
// NAME__rebuild, so one copy runs it, and if that copy dies another resumes
// it. A request is marked running while it is served, then done or failed.
func (s *Sink) ServeRebuilds(ctx context.Context, store es.Store, targets []RebuildTarget, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	lk := s.Locker()
	lk.RetryInterval = interval
	for {
		for _, t := range targets {
			if err := s.serveRebuild(ctx, store, lk, t); err != nil && ctx.Err() == nil {
				s.cfg.logger.Warn("pgsink: serve rebuild", "projection", t.Projection.Name(), "error", err)
			}
		}
		tm := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil
		case <-tm.C:
		}
	}
}

func (s *Sink) serveRebuild(ctx context.Context, store es.Store, lk *Locker, t RebuildTarget) error {
	name := t.Projection.Name()
	const next = `SELECT id FROM %s.projection_requests WHERE projection = $1 AND action = 'rebuild'
  AND state IN ('pending', 'running') ORDER BY id LIMIT 1`
	var id int64
	err := s.pool.QueryRow(ctx, fmt.Sprintf(next, s.q()), name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return s.mapErr("read rebuild requests", err)
	}
	// Only try, not wait: another copy serving it is fine.
	held, release, ok, err := lk.tryLock(ctx, name+"__rebuild")
	if !ok {
		return err
	}
	defer release()
	// Read again under the lease: the previous holder may have finished it.
	if err := s.pool.QueryRow(held, fmt.Sprintf(next, s.q()), name).Scan(&id); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return s.mapErr("read rebuild requests", err)
	}
	if _, err := s.pool.Exec(held, `UPDATE `+s.q()+`.projection_requests SET state = 'running' WHERE id = $1`, id); err != nil {
		return s.mapErr("mark rebuild running", err)
	}
	s.cfg.logger.Info("pgsink: rebuilding projection", "projection", name, "request", id)
	err = s.Rebuild(held, store, t.Projection, t.Options)
	if held.Err() != nil {
		return nil // stopping, or lost the lease: the request stays running, to be resumed
	}
	state, msg := "done", ""
	if err != nil {
		state, msg = "failed", err.Error()
	}
	_, uerr := s.pool.Exec(ctx, `UPDATE `+s.q()+`.projection_requests SET state = $2, error = $3, finished_at = now() WHERE id = $1`, id, state, msg)
	return errors.Join(err, s.mapErr("finish rebuild request", uerr))
}
