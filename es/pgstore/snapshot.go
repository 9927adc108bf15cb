package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/es"
)

var (
	_ es.SnapshotStore = (*Store)(nil)
	_ es.EventFinder   = (*Store)(nil)
)

// LoadSnapshot implements [es.SnapshotStore].
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, error) {
	snap := es.Snapshot{Stream: stream}
	err := s.pool.QueryRow(ctx, s.sql.loadSnapshot, stream).Scan(&snap.Version, &snap.Fingerprint, &snap.Data, &snap.RecordedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return es.Snapshot{}, fmt.Errorf("load snapshot of %q: %w", stream, es.ErrSnapshotNotFound)
	}
	if err != nil {
		return es.Snapshot{}, s.mapErr(ctx, fmt.Sprintf("load snapshot of %q", stream), err)
	}
	snap.RecordedAt = snap.RecordedAt.UTC()
	return snap, nil
}

// SaveSnapshot implements [es.SnapshotStore] with one upsert that keeps a
// later snapshot already stored.
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if snap.Data == nil {
		snap.Data = []byte{}
	}
	if _, err := s.pool.Exec(ctx, s.sql.saveSnapshot, snap.Stream, snap.Version, snap.Fingerprint, snap.Data, snap.RecordedAt); err != nil {
		return s.mapErr(ctx, fmt.Sprintf("save snapshot of %q at version %d", snap.Stream, snap.Version), err)
	}
	return nil
}

// FindEvent implements [es.EventFinder]. Like stream reads, it sees every
// committed event, whatever the global readers' visibility.
func (s *Store) FindEvent(ctx context.Context, id es.ID) (es.Event, error) {
	what := fmt.Sprintf("find event %s", id)
	events, _, err := s.page(ctx, newDecoder(), 1, s.sql.findEvent, [16]byte(id))
	if err != nil {
		return es.Event{}, s.mapErr(ctx, what, err)
	}
	if len(events) == 0 {
		return es.Event{}, fmt.Errorf("%s: %w", what, es.ErrEventNotFound)
	}
	return events[0], nil
}
