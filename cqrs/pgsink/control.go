package pgsink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

var (
	_ cqrs.StatusRecorder = (*Sink)(nil)
	_ cqrs.Controller     = (*Sink)(nil)
)

func (s *Sink) q() string { return pgx.Identifier{s.cfg.schema}.Sanitize() }

// RecordStatus implements [cqrs.StatusRecorder].
func (s *Sink) RecordStatus(ctx context.Context, st cqrs.RunnerStatus) error {
	var errAt *time.Time
	if !st.LastErrorAt.IsZero() {
		errAt = &st.LastErrorAt
	}
	types := st.EventTypes
	if types == nil {
		types = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.q()+`.projection_status AS s
    (projection, state, event_types, handled, parked, last_error, last_error_at, owner, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (projection) DO UPDATE SET state = EXCLUDED.state, event_types = EXCLUDED.event_types,
    handled = EXCLUDED.handled, parked = EXCLUDED.parked, last_error = EXCLUDED.last_error,
    last_error_at = EXCLUDED.last_error_at, owner = EXCLUDED.owner, updated_at = now()`,
		st.Projection, string(st.State), types, st.Handled, st.Parked, st.LastError, errAt, st.Owner)
	return s.mapErr(fmt.Sprintf("record status of projection %q", st.Projection), err)
}

// NextRequest implements [cqrs.Controller].
func (s *Sink) NextRequest(ctx context.Context, projection string) (cqrs.Request, bool, error) {
	var r cqrs.Request
	var action string
	var c, p int64
	err := s.pool.QueryRow(ctx, `SELECT id, action, from_commit, from_prepare FROM `+s.q()+`.projection_requests
WHERE projection = $1 AND state = 'pending' AND action IN ('reset', 'replay') ORDER BY id LIMIT 1`, projection).Scan(&r.ID, &action, &c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, s.mapErr(fmt.Sprintf("read requests of projection %q", projection), err)
	}
	r.Action, r.From = cqrs.RequestAction(action), es.Position{Commit: uint64(c), Prepare: uint64(p)}
	return r, true, nil
}

// Rewind implements [cqrs.Controller] in one transaction: clear, the
// checkpoint moved to req.From (deleted when zero), the request marked done.
func (s *Sink) Rewind(ctx context.Context, projection string, req cqrs.Request, clear func(ctx context.Context) error) error {
	what := fmt.Sprintf("%s projection %q (request %d)", req.Action, projection, req.ID)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE `+s.q()+`.projection_requests SET state = 'done', finished_at = now()
WHERE id = $1 AND state = 'pending'`, req.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("request %d is no longer pending", req.ID)
		}
		if clear != nil {
			w := &writer{tx: tx}
			if err := clear(context.WithValue(ctx, writerKey{}, w)); err != nil {
				return err
			}
			if err := w.flush(ctx); err != nil {
				return err
			}
		}
		if req.From.IsZero() {
			_, err = tx.Exec(ctx, s.sql.reset, projection)
		} else {
			_, err = tx.Exec(ctx, `UPDATE `+s.q()+`.projection_checkpoints SET commit_pos = $2, prepare_pos = $3, updated_at = now()
WHERE projection = $1`, projection, int64(req.From.Commit), int64(req.From.Prepare))
		}
		return err
	})
	return s.mapErr(what, err)
}

// FailRequest implements [cqrs.Controller].
func (s *Sink) FailRequest(ctx context.Context, projection string, req cqrs.Request, cause error) error {
	_, err := s.pool.Exec(ctx, `UPDATE `+s.q()+`.projection_requests SET state = 'failed', error = $2, finished_at = now()
WHERE id = $1 AND state = 'pending'`, req.ID, cause.Error())
	return s.mapErr(fmt.Sprintf("fail request %d of projection %q", req.ID, projection), err)
}
