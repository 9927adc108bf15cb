package sqlitestore_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/sqlitestore"
)

func saveSnap(t *testing.T, s *sqlitestore.Store, stream string, version int64, fingerprint string) {
	t.Helper()
	err := s.SaveSnapshot(t.Context(), es.Snapshot{Stream: stream, Version: version, Fingerprint: fingerprint, Data: []byte(fingerprint)})
	if err != nil {
		t.Fatal(err)
	}
}

// snapVersion returns the version of stream's snapshot, 0 when it has none.
func snapVersion(t *testing.T, s *sqlitestore.Store, stream string) int64 {
	t.Helper()
	snap, err := s.LoadSnapshot(t.Context(), stream)
	if errors.Is(err, es.ErrSnapshotNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return snap.Version
}

func versions(evs []es.Event) []int64 {
	var vs []int64
	for _, e := range evs {
		vs = append(vs, e.Version)
	}
	return vs
}

func TestSnapshot_RoundTrip(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	mustAppend(t, s, "order-1", estest.Events("test.v1.E", 3)...)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	want := es.Snapshot{Stream: "order-1", Version: 2, Fingerprint: "fp1", Data: []byte{0, 1, 2}, RecordedAt: at}
	if err := s.SaveSnapshot(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadSnapshot(t.Context(), "order-1")
	if err != nil || got.Stream != want.Stream || got.Version != 2 || got.Fingerprint != "fp1" ||
		!bytes.Equal(got.Data, want.Data) || !got.RecordedAt.Equal(at) {
		t.Fatalf("LoadSnapshot = %+v, %v; want %+v", got, err, want)
	}

	loaded, err := s.LoadStream(t.Context(), "order-1", true)
	if err != nil || !loaded.HasSnapshot || loaded.Snapshot.Version != 2 || !bytes.Equal(loaded.Snapshot.Data, want.Data) {
		t.Fatalf("LoadStream with snapshot = %+v, %v; want the snapshot at 2", loaded, err)
	}
	if vs := versions(loaded.Events); len(vs) != 1 || vs[0] != 3 || loaded.Events[0].StreamID != "order-1" {
		t.Fatalf("LoadStream events after the snapshot = %v; want [3]", vs)
	}
	loaded, err = s.LoadStream(t.Context(), "order-1", false)
	if err != nil || loaded.HasSnapshot || len(loaded.Events) != 3 {
		t.Fatalf("LoadStream without snapshot = %+v, %v; want the 3 events and no snapshot", loaded, err)
	}

	// A snapshot at the last version: nothing after it.
	saveSnap(t, s, "order-1", 3, "fp1")
	if loaded, err := s.LoadStream(t.Context(), "order-1", true); err != nil || loaded.Snapshot.Version != 3 || len(loaded.Events) != 0 {
		t.Fatalf("LoadStream with a snapshot at the head = %+v, %v", loaded, err)
	}
}

func TestSnapshot_OlderNeverReplacesNewer(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	mustAppend(t, s, "a", estest.Events("test.v1.E", 10)...)
	saveSnap(t, s, "a", 8, "old")
	saveSnap(t, s, "a", 5, "old")
	if v := snapVersion(t, s, "a"); v != 8 {
		t.Fatalf("snapshot at %d after saving 8 then 5; want 8", v)
	}
	// The same version under a new schema replaces it.
	saveSnap(t, s, "a", 8, "new")
	if snap, err := s.LoadSnapshot(t.Context(), "a"); err != nil || snap.Fingerprint != "new" || string(snap.Data) != "new" {
		t.Fatalf("snapshot = %+v, %v; want the one saved last at version 8", snap, err)
	}
	saveSnap(t, s, "a", 10, "new")
	if v := snapVersion(t, s, "a"); v != 10 {
		t.Fatalf("snapshot at %d; want 10", v)
	}
	// A snapshot past the stream's last event is not stored.
	saveSnap(t, s, "a", 11, "future")
	if v := snapVersion(t, s, "a"); v != 10 {
		t.Fatalf("snapshot at %d after saving one past the stream's end; want 10", v)
	}
	if err := s.SaveSnapshot(t.Context(), es.Snapshot{Stream: "a", Version: 0}); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("SaveSnapshot at version 0 = %v; want es.ErrInvalidArgument", err)
	}
}

func TestSnapshot_NotFound(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	mustAppend(t, s, "a", estest.Events("test.v1.E", 2)...)
	for _, stream := range []string{"a", "never-written"} {
		if _, err := s.LoadSnapshot(t.Context(), stream); !errors.Is(err, es.ErrSnapshotNotFound) {
			t.Fatalf("LoadSnapshot(%q) = %v; want es.ErrSnapshotNotFound", stream, err)
		}
	}
	// A stream that was never written has no row to hang a snapshot on.
	saveSnap(t, s, "never-written", 1, "fp")
	if v := snapVersion(t, s, "never-written"); v != 0 {
		t.Fatalf("snapshot of a stream without events stored at %d", v)
	}
	loaded, err := s.LoadStream(t.Context(), "never-written", true)
	if err != nil || loaded.HasSnapshot || len(loaded.Events) != 0 {
		t.Fatalf("LoadStream of a missing stream = %+v, %v; want nothing and no error", loaded, err)
	}
	if _, err := s.LoadStream(t.Context(), "", true); !errors.Is(err, es.ErrInvalidArgument) {
		t.Fatalf("LoadStream of an empty stream ID = %v; want es.ErrInvalidArgument", err)
	}
}

// A snapshot of a deleted life is never returned, also when a save of it
// arrives after the delete (a command that was in flight) and after the
// stream is written again.
func TestSnapshot_DroppedByDeleteAndNeverBackAfterReuse(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	mustAppend(t, s, "a", estest.Events("test.v1.Old", 5)...)
	saveSnap(t, s, "a", 5, "old")
	if err := s.DeleteStream(t.Context(), "a", es.Any, es.AllowReuse()); err != nil {
		t.Fatal(err)
	}
	if v := snapVersion(t, s, "a"); v != 0 {
		t.Fatalf("snapshot at %d survived the delete", v)
	}
	if loaded, err := s.LoadStream(t.Context(), "a", true); err != nil || loaded.HasSnapshot || len(loaded.Events) != 0 {
		t.Fatalf("LoadStream of a deleted stream = %+v, %v; want nothing", loaded, err)
	}
	saveSnap(t, s, "a", 5, "late") // in flight during the delete
	if v := snapVersion(t, s, "a"); v != 0 {
		t.Fatalf("a late save of the deleted life stored a snapshot at %d", v)
	}

	// The next life continues the versions: 6 and 7.
	mustAppend(t, s, "a", estest.Events("test.v1.New", 2)...)
	saveSnap(t, s, "a", 5, "late")
	loaded, err := s.LoadStream(t.Context(), "a", true)
	if err != nil || loaded.HasSnapshot {
		t.Fatalf("LoadStream after reuse = %+v, %v; want no snapshot from the old life", loaded, err)
	}
	if vs := versions(loaded.Events); len(vs) != 2 || vs[0] != 6 || vs[1] != 7 || loaded.Events[0].Type != "test.v1.New" {
		t.Fatalf("LoadStream after reuse read versions %v; want the new life, [6 7]", vs)
	}
	saveSnap(t, s, "a", 6, "new")
	if loaded, err := s.LoadStream(t.Context(), "a", true); err != nil || loaded.Snapshot.Version != 6 || len(loaded.Events) != 1 {
		t.Fatalf("LoadStream with a snapshot of the new life = %+v, %v", loaded, err)
	}

	// Retiring the stream drops it too.
	if err := s.DeleteStream(t.Context(), "a", es.Any); err != nil {
		t.Fatal(err)
	}
	if v := snapVersion(t, s, "a"); v != 0 {
		t.Fatalf("snapshot at %d survived a delete without reuse", v)
	}
}

// Truncating the events a snapshot covers keeps the snapshot: that is what
// the snapshot is for.
func TestSnapshot_KeptByTruncation(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	mustAppend(t, s, "a", estest.Events("test.v1.E", 6)...)
	saveSnap(t, s, "a", 4, "fp")
	if err := s.TruncateBefore(t.Context(), "a", 5); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.LoadStream(t.Context(), "a", true)
	if err != nil || loaded.Snapshot.Version != 4 {
		t.Fatalf("LoadStream after truncation = %+v, %v; want the snapshot at 4", loaded, err)
	}
	if vs := versions(loaded.Events); len(vs) != 2 || vs[0] != 5 {
		t.Fatalf("events after the snapshot = %v; want [5 6]", vs)
	}
	// Without a snapshot, only what is left.
	if loaded, err := s.LoadStream(t.Context(), "a", false); err != nil || len(loaded.Events) != 2 {
		t.Fatalf("LoadStream without snapshot after truncation = %+v, %v", loaded, err)
	}
}

func TestSnapshot_SurvivesCloseAndOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	mustAppend(t, s, "a", estest.Events("test.v1.E", 3)...)
	saveSnap(t, s, "a", 3, "fp")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSnapshot(t.Context(), "a"); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("LoadSnapshot after Close = %v; want es.ErrClosed", err)
	}
	if err := s.SaveSnapshot(t.Context(), es.Snapshot{Stream: "a", Version: 3}); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("SaveSnapshot after Close = %v; want es.ErrClosed", err)
	}
	if _, err := s.LoadStream(t.Context(), "a", true); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("LoadStream after Close = %v; want es.ErrClosed", err)
	}
	s = open(t, path)
	if v := snapVersion(t, s, "a"); v != 3 {
		t.Fatalf("snapshot at %d after reopening; want 3", v)
	}
}

// LoadStream reads the snapshot and the events after it in one read
// transaction: while a writer appends and moves the snapshot, every load
// covers each version exactly once, with no gap between snapshot and
// events.
func TestLoadStream_ConsistentWithConcurrentSaves(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"), sqlitestore.WithRelaxedSync())
	mustAppend(t, s, "a", estest.Events("test.v1.E", 1)...)
	const last = 100
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := int64(2); v <= last; v++ {
			if _, err := s.Append(t.Context(), "a", es.Exact(v-1), estest.Events("test.v1.E", 1)...); err != nil {
				t.Error(err)
				return
			}
			if v%3 == 0 {
				if err := s.SaveSnapshot(t.Context(), es.Snapshot{Stream: "a", Version: v, Fingerprint: "fp"}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for {
				loaded, err := s.LoadStream(t.Context(), "a", true)
				if err != nil {
					t.Error(err)
					return
				}
				next := int64(1)
				if loaded.HasSnapshot {
					next = loaded.Snapshot.Version + 1
				}
				for _, e := range loaded.Events {
					if e.Version != next {
						t.Errorf("load read version %d after %d", e.Version, next-1)
						return
					}
					next++
				}
				if next-1 == last {
					return
				}
			}
		})
	}
	wg.Wait()
}
