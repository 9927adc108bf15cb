package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
	"github.com/esgen-dev/esgen/es/sqlitestore"
)

func open(t *testing.T, path string, opts ...sqlitestore.Option) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	estest.Run(t, estest.Harness{
		New: func(t *testing.T) es.Store {
			return open(t, filepath.Join(t.TempDir(), "events.db"), sqlitestore.WithRelaxedSync())
		},
	})
}

func TestOpen_DataSurvivesCloseAndOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	evs := estest.Events("test.v1.Happened", 3)
	evs[1].Metadata = es.Metadata{CorrelationID: "c-1", Extra: map[string]string{"k": "v"}}
	res, err := s.Append(t.Context(), "order-1", es.NoStream, evs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(t.Context()); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("Head after Close: %v; want es.ErrClosed", err)
	}

	s = open(t, path)
	got, err := estest.Collect(s.ReadStream(t.Context(), "order-1", es.StreamStart, es.Forward, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d events after reopening; want 3", len(got))
	}
	for i, e := range got {
		if e.ID != evs[i].ID || string(e.Data) != string(evs[i].Data) || e.Version != int64(i+1) {
			t.Fatalf("event %d after reopening = %+v; want %+v", i, e, evs[i])
		}
	}
	if got[1].Metadata.CorrelationID != "c-1" || got[1].Metadata.Extra["k"] != "v" {
		t.Fatalf("metadata after reopening = %+v", got[1].Metadata)
	}
	head, err := s.Head(t.Context())
	if err != nil || head != res.Position {
		t.Fatalf("Head after reopening = %s, %v; want %s", head, err, res.Position)
	}
	// Versions continue, and a retry of the first append is still
	// recognised.
	if r, err := s.Append(t.Context(), "order-1", es.NoStream, evs...); err != nil || r != res {
		t.Fatalf("retried append after reopening = %+v, %v; want %+v", r, err, res)
	}
	if v, err := s.SchemaVersion(t.Context(), sqlitestore.Component); err != nil || v < 1 {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
}

func TestOpen_RefusesTextFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := strings.Repeat("not a database, just some text\n", 200)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrNotDatabase) {
		t.Fatalf("Open(text file) = %v; want ErrNotDatabase", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
	wantUnchanged(t, path, content)
}

func TestOpen_RefusesForeignSQLiteDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrForeignDatabase) {
		t.Fatalf("Open(foreign database) = %v; want ErrForeignDatabase", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "customers") {
		t.Fatalf("error %q does not name the file and its tables", err)
	}
	wantUnchanged(t, path, string(before))
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("Open left %s beside the foreign database", path+suffix)
		}
	}
}

func TestOpen_RefusesOtherApplicationID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA application_id = 1234`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrForeignDatabase) {
		t.Fatalf("Open(other application ID) = %v; want ErrForeignDatabase", err)
	}
}

func TestOpen_AcceptsEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	if _, err := s.Append(t.Context(), "s", es.NoStream, estest.Events("test.v1.E", 1)...); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_RefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	// A later release adds a step this one does not know.
	if _, err := s.DB().Exec(`INSERT INTO esgen_migrations (component, version, name, applied_at) VALUES ('es', 99, 'future', 'now')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrNewerSchema) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(newer schema) = %v; want ErrNewerSchema naming the file", err)
	}
}

func TestOpen_MissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "events.db")
	_, err := sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(missing directory) = %v; want an error naming the path and the missing directory", err)
	}
}

func TestOpen_Directory(t *testing.T) {
	dir := t.TempDir()
	_, err := sqlitestore.Open(t.Context(), dir)
	t.Logf("Open: %v", err)
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("Open(directory) = %v; want an error saying it is a directory", err)
	}
}

func TestOpen_ReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may write to read-only directories")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	path := filepath.Join(dir, "events.db")
	_, err := sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrReadOnly) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(read-only directory) = %v; want ErrReadOnly naming the file", err)
	}
}

func TestOpen_ReadOnlyFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may write to read-only files")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	s := open(t, path)
	s.Close()
	// Without write access to the directory SQLite cannot create the WAL
	// files, and without it to the file it cannot write.
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := sqlitestore.Open(t.Context(), path)
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrReadOnly) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(read-only file) = %v; want ErrReadOnly naming the file", err)
	}
}

// lockFile opens path with a connection of its own and takes the write lock
// (exclusive, for a file not in WAL mode) until the returned function runs.
func lockFile(t *testing.T, path string) (unlock func()) {
	t.Helper()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		conn.Close()
		other.Close()
	}
}

func TestOpen_LockedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	unlock := lockFile(t, path)
	defer unlock()
	_, err := sqlitestore.Open(t.Context(), path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
	t.Logf("Open: %v", err)
	if !errors.Is(err, sqlitestore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(locked database) = %v; want ErrLocked naming the file", err)
	}
}

func TestAppend_LockedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
	unlock := lockFile(t, path)
	// A file that is already esgen's and up to date opens without the
	// write lock; it is the writes that wait for it.
	s2 := open(t, path, sqlitestore.WithBusyTimeout(100*time.Millisecond))
	_, err := s2.Append(t.Context(), "s", es.Any, estest.Events("test.v1.E", 1)...)
	t.Logf("Append: %v", err)
	if !errors.Is(err, sqlitestore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Append to a locked database = %v; want ErrLocked naming the file", err)
	}
	// Reads go on beside the lock (WAL mode).
	if _, err := s.Head(t.Context()); err != nil {
		t.Fatalf("Head while another connection writes: %v", err)
	}
	unlock()
	if _, err := s.Append(t.Context(), "s", es.Any, estest.Events("test.v1.E", 1)...); err != nil {
		t.Fatalf("Append after the lock was released: %v", err)
	}
}

func TestSubscribe_SeesAppendsOfAnotherStoreOnTheSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	writer := open(t, path)
	reader := open(t, path, sqlitestore.WithPollInterval(20*time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	first := estest.Events("test.v1.E", 2)
	mustAppend(t, writer, "a", first...)

	got := make(chan es.Event)
	errc := make(chan error, 1)
	go func() {
		for e, err := range reader.Subscribe(ctx, es.Position{}, es.Filter{}) {
			if err != nil {
				errc <- err
				return
			}
			select {
			case got <- e:
			case <-ctx.Done():
			}
		}
	}()
	want := append(first, estest.Events("test.v1.E", 3)...)
	for i, w := range want {
		if i == len(first) {
			// Caught up; these arrive only through the poll, since the
			// reader's Store did not write them.
			mustAppend(t, writer, "a", want[len(first):]...)
		}
		select {
		case e := <-got:
			if e.ID != w.ID || e.Version != int64(i+1) {
				t.Fatalf("subscription event %d = version %d %s; want version %d %s", i, e.Version, e.ID, i+1, w.ID)
			}
		case err := <-errc:
			t.Fatalf("subscription failed: %v", err)
		case <-ctx.Done():
			t.Fatalf("subscription delivered %d of %d events", i, len(want))
		}
	}
}

func TestAppend_TwoStoresOnOneFileShareTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	stores := []*sqlitestore.Store{open(t, path), open(t, path)}
	const writers, per = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				// Alternate stores, so that their writer connections
				// contend for SQLite's lock.
				s := stores[(w+i)%2]
				if _, err := s.Append(t.Context(), "shared", es.Any, estest.Events("test.v1.E", 2)...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, s := range stores {
		got, err := estest.Collect(s.ReadStream(t.Context(), "shared", es.StreamStart, es.Forward, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != writers*per*2 {
			t.Fatalf("store %d reads %d events; want %d", i, len(got), writers*per*2)
		}
		for j, e := range got {
			if e.Version != int64(j+1) || (j > 0 && !got[j-1].Position.Before(e.Position)) {
				t.Fatalf("store %d: event %d is version %d at %s; want contiguous versions in position order", i, j, e.Version, e.Position)
			}
		}
	}
}

func TestSubscribe_EndsWhenStoreCloses(t *testing.T) {
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for _, err := range s.Subscribe(t.Context(), es.Position{}, es.Filter{}) {
			if err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, es.ErrClosed) {
			t.Fatalf("subscription ended with %v; want es.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not end after Close")
	}
}

func TestTruncateBefore_ErasesRowsAndKeepsPositionsUnique(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	mustAppend(t, s, "a", estest.Events("test.v1.E", 3)...)
	if err := s.TruncateBefore(t.Context(), "a", 4); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.ReadDB().QueryRow(`SELECT count(*) FROM es_events`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows left after truncating every event (%v); want 0", n, err)
	}
	// The newest positions were deleted; they must not be handed out again,
	// or a reader that saw them would miss the new event.
	res := mustAppend(t, s, "b", estest.Events("test.v1.E", 1)...)
	if res.Position.Commit != 4 {
		t.Fatalf("position after truncating positions 1..3 = %s; want 4/4", res.Position)
	}
}

func TestTruncateBefore_LeavesNoTraceInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := open(t, path)
	secret := "personal data of user 42, to be erased"
	evs := estest.Events("test.v1.E", 2)
	evs[0].Data = []byte(secret)
	mustAppend(t, s, "user-42", evs...)
	if err := s.TruncateBefore(t.Context(), "user-42", 2); err != nil {
		t.Fatal(err)
	}
	// Move everything from the write-ahead log into the file and empty the
	// log, then look at the raw bytes.
	if _, err := s.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Fatalf("%s still holds the truncated event's data", p)
		}
	}
	// The event that was kept is intact.
	if got := readStreamData(t, s, "user-42"); len(got) != 1 || got[0] != string(evs[1].Data) {
		t.Fatalf("stream after truncation = %q", got)
	}
}

func readStreamData(t *testing.T, s es.Store, stream string) []string {
	t.Helper()
	evs, err := estest.Collect(s.ReadStream(t.Context(), stream, es.StreamStart, es.Forward, 0))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Data))
	}
	return out
}

func TestMigrate_OwnComponent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	steps := []sqlitestore.Migration{
		{Version: 1, Name: "checkpoints", SQL: `CREATE TABLE checkpoints (name TEXT PRIMARY KEY, pos INTEGER NOT NULL)`},
		{Version: 2, Name: "lag", SQL: `ALTER TABLE checkpoints ADD COLUMN lag INTEGER`},
	}
	for range 2 {
		if err := s.Migrate(t.Context(), "cqrs", steps); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.SchemaVersion(t.Context(), "cqrs"); err != nil || v != 2 {
		t.Fatalf("SchemaVersion(cqrs) = %d, %v; want 2", v, err)
	}
	if err := s.Migrate(t.Context(), "cqrs", steps[:1]); !errors.Is(err, sqlitestore.ErrNewerSchema) {
		t.Fatalf("Migrate with fewer steps than the file has = %v; want ErrNewerSchema", err)
	}
	bad := []sqlitestore.Migration{{Version: 2, SQL: "SELECT 1"}}
	if err := s.Migrate(t.Context(), "x", bad); err == nil {
		t.Fatal("Migrate accepted migrations that do not start at 1")
	}
	failing := []sqlitestore.Migration{
		{Version: 1, Name: "ok", SQL: `CREATE TABLE x1 (a INTEGER)`},
		{Version: 2, Name: "broken", SQL: `CREATE TABLE x1 (a INTEGER)`},
	}
	if err := s.Migrate(t.Context(), "x", failing); err == nil {
		t.Fatal("Migrate of a broken step succeeded")
	}
	// The whole upgrade rolled back, including the step that worked.
	if v, err := s.SchemaVersion(t.Context(), "x"); err != nil || v != 0 {
		t.Fatalf("SchemaVersion(x) after a failed upgrade = %d, %v; want 0", v, err)
	}
}

func TestFindEvent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.db"))
	evs := estest.Events("test.v1.E", 2)
	evs[1].Metadata = es.Metadata{CausationID: "cmd-1"}
	mustAppend(t, s, "a", evs...)
	e, err := s.FindEvent(t.Context(), evs[1].ID)
	if err != nil || e.ID != evs[1].ID || e.StreamID != "a" || e.Version != 2 || e.Metadata.CausationID != "cmd-1" {
		t.Fatalf("FindEvent = %+v, %v", e, err)
	}
	if _, err := s.FindEvent(t.Context(), es.NewID()); !errors.Is(err, es.ErrEventNotFound) {
		t.Fatalf("FindEvent(unknown) = %v; want es.ErrEventNotFound", err)
	}
	if err := s.TruncateBefore(t.Context(), "a", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindEvent(t.Context(), evs[0].ID); !errors.Is(err, es.ErrEventNotFound) {
		t.Fatalf("FindEvent(truncated) = %v; want es.ErrEventNotFound", err)
	}
}

func TestOpen_PathWithSpecialCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my events?#%20.db")
	s := open(t, path)
	mustAppend(t, s, "a", estest.Events("test.v1.E", 1)...)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("store file not at %s: %v", path, err)
	}
}

func mustAppend(t *testing.T, s es.Store, stream string, evs ...es.EventData) es.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, es.Any, evs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantUnchanged(t *testing.T, path, content string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Fatalf("Open changed %s", path)
	}
}
