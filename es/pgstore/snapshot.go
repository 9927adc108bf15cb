package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/es"
)

var (
	_ es.SnapshotStore = (*Store)(nil)
	_ es.EventFinder   = (*Store)(nil)
	_ es.StreamLoader  = (*Store)(nil)
)

// LoadStream implements [es.StreamLoader]: the snapshot and the events
// after it in one statement and one round trip.
func (s *Store) LoadStream(ctx context.Context, stream string, withSnapshot bool) (es.LoadedStream, error) {
	what := fmt.Sprintf("load stream %q", stream)
	if err := es.ValidateStreamID(stream); err != nil {
		return es.LoadedStream{}, fmt.Errorf("%s: %w", what, err)
	}
	rows, err := s.pool.Query(ctx, s.sql.loadStream, stream, withSnapshot)
	if err != nil {
		return es.LoadedStream{}, s.mapErr(ctx, what, err)
	}
	defer rows.Close()
	fast := binaryColumns(rows.FieldDescriptions())
	d := newDecoder()
	var out es.LoadedStream
	for rows.Next() {
		var e es.Event
		if err := d.decode(rows, fast, &e); err != nil {
			return es.LoadedStream{}, fmt.Errorf("%s: %w", what, err)
		}
		if e.Type == snapshotRow {
			out.Snapshot = es.Snapshot{Stream: stream, Version: e.Version, Fingerprint: e.StreamID, Data: e.Data, RecordedAt: e.RecordedAt}
			out.HasSnapshot = true
			continue
		}
		out.Events = append(out.Events, e)
	}
	if err := rows.Err(); err != nil {
		return es.LoadedStream{}, s.mapErr(ctx, what, err)
	}
	// UNION ALL keeps the branches in order in practice; the contract
	// should not rest on it.
	if !slices.IsSortedFunc(out.Events, byVersion) {
		slices.SortFunc(out.Events, byVersion)
	}
	return out, nil
}

func byVersion(a, b es.Event) int { return cmp.Compare(a.Version, b.Version) }

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
