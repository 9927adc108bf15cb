package memstore

import (
	"context"
	"fmt"

	"github.com/esgen-dev/esgen/es"
)

var (
	_ es.EventFinder   = (*Store)(nil)
	_ es.SnapshotStore = (*Store)(nil)
)

// FindEvent implements [es.EventFinder]. Truncated events are not found.
func (s *Store) FindEvent(ctx context.Context, id es.ID) (es.Event, error) {
	if err := ctx.Err(); err != nil {
		return es.Event{}, fmt.Errorf("find event %s: %w", id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.ids[id]
	if !ok {
		return es.Event{}, fmt.Errorf("find event %s: %w", id, es.ErrEventNotFound)
	}
	return copyEvent(e), nil
}

// LoadSnapshot implements [es.SnapshotStore]. Deleting a stream drops its
// snapshot.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, fmt.Errorf("load snapshot of %q: %w", stream, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap, ok := s.snaps[stream]
	if !ok {
		return es.Snapshot{}, fmt.Errorf("load snapshot of %q: %w", stream, es.ErrSnapshotNotFound)
	}
	snap.Data = append([]byte(nil), snap.Data...)
	return snap, nil
}

// SaveSnapshot implements [es.SnapshotStore].
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save snapshot of %q: %w", snap.Stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snaps == nil {
		s.snaps = map[string]es.Snapshot{}
	}
	if old, ok := s.snaps[snap.Stream]; ok && old.Version > snap.Version {
		return nil
	}
	snap.Data = append([]byte(nil), snap.Data...)
	s.snaps[snap.Stream] = snap
	return nil
}
