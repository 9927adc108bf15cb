package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esgen-dev/esgen/es"
)

// DeleteStream implements [es.Store.DeleteStream]. It appends a marker event
// at the stream's next version, through the same statement and unique key as
// appends, so a deletion and a concurrent append cannot both succeed on the
// same version; the marker is never returned by reads. The stream's next
// incarnation (with [es.AllowReuse]) continues after the marker's version.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected es.ExpectedVersion, opts ...es.DeleteOption) error {
	what := fmt.Sprintf("delete stream %q", stream)
	if err := es.ValidateStreamID(stream); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !expected.Valid() {
		return fmt.Errorf("%s: %s: %w", what, expected, es.ErrInvalidArgument)
	}
	marker := markerTombstone
	if es.ApplyDeleteOptions(opts).AllowReuse {
		marker = markerDeleted
	}
	b := batch{ids: [][16]byte{es.NewID()}, types: []string{marker}, data: [][]byte{{}}, metadata: []string{""}}
	errNotFound := fmt.Errorf("%s: %w", what, es.ErrStreamNotFound)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var r appendRow
		err := tx.QueryRow(ctx, s.sql.append, stream, int64(expected), b.ids, b.types, b.data, b.metadata).
			Scan(&r.visible, &r.tombstoned, &r.inserted, &r.version, &r.tx, &r.position)
		switch {
		case err != nil:
			return err
		case r.tombstoned:
			return fmt.Errorf("%s: %w", what, es.ErrStreamDeleted)
		case r.visible == 0:
			return errNotFound // rolls back a marker written under Any
		case r.inserted == 0:
			return &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: r.visible}
		}
		_, err = tx.Exec(ctx, s.sql.upsertDeleted, stream, r.version)
		return err
	})
	var pgErr *pgconn.PgError
	var conflict *es.ConcurrencyError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, es.ErrStreamDeleted), errors.Is(err, es.ErrStreamNotFound), errors.As(err, &conflict):
		return err
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		// An append took the version first.
		state, err := s.streamState(ctx, stream)
		if err != nil {
			return s.mapErr(ctx, what, err)
		}
		return &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: state.visible}
	}
	return s.mapErr(ctx, what, err)
}

// TruncateBefore implements [es.Store.TruncateBefore] by deleting the rows.
// The stream's version is recorded first, so that it survives even when
// every event goes.
func (s *Store) TruncateBefore(ctx context.Context, stream string, before int64) error {
	what := fmt.Sprintf("truncate stream %q before version %d", stream, before)
	if err := es.ValidateStreamID(stream); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if before <= 1 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.sql.truncate, stream, before); err != nil {
		return s.mapErr(ctx, what, err)
	}
	return nil
}
