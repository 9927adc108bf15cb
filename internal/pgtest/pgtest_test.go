package pgtest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func databaseExists(t *testing.T, admin *pgx.Conn, name string) bool {
	t.Helper()
	var exists bool
	err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatalf("look up database %s: %v", name, err)
	}
	return exists
}

func TestURL_TwoDatabasesAreDistinctAndIsolated(t *testing.T) {
	t.Parallel()
	url1, url2 := pgtest.URL(t), pgtest.URL(t)
	if url1 == url2 {
		t.Fatalf("two URL calls returned the same URL %q", url1)
	}
	c1, c2 := connect(t, url1), connect(t, url2)
	db1 := queryString(t, c1, "SELECT current_database()")
	db2 := queryString(t, c2, "SELECT current_database()")
	if db1 == db2 {
		t.Fatalf("both URLs connect to database %q", db1)
	}
	for _, db := range []string{db1, db2} {
		if !strings.HasPrefix(db, "esgen_test_") {
			t.Errorf("database %q lacks the esgen_test_ prefix", db)
		}
	}

	if _, err := c1.Exec(t.Context(), "CREATE TABLE widgets (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	regclass := "SELECT coalesce(to_regclass('public.widgets')::text, '<absent>')"
	if got := queryString(t, c1, regclass); got != "widgets" {
		t.Errorf("in %s, widgets = %q, want the table", db1, got)
	}
	if got := queryString(t, c2, regclass); got != "<absent>" {
		t.Errorf("in %s, widgets = %q, want it absent: databases are not isolated", db2, got)
	}
}

func TestURL_NewDatabaseIsEmpty(t *testing.T) {
	t.Parallel()
	conn := connect(t, pgtest.URL(t))
	var n int
	err := conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("new database has %d relations in public, want 0", n)
	}
}

func TestPool_RunsQueries(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	var one int
	if err := pool.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("SELECT 1: %v", err)
	}
	if one != 1 {
		t.Errorf("SELECT 1 = %d", one)
	}
	var db string
	if err := pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(db, "esgen_test_") {
		t.Errorf("pool is connected to %q, want a test database", db)
	}
}

func TestURL_DatabaseDroppedAfterCleanupEvenWithOpenSessions(t *testing.T) {
	t.Parallel()
	admin := connect(t, pgtest.AdminURL(t))

	var name string
	var leftOpen *pgx.Conn
	t.Run("uses a database", func(t *testing.T) {
		pool := pgtest.Pool(t)
		if err := pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !databaseExists(t, admin, name) {
			t.Fatalf("database %s is not visible from AdminURL while in use", name)
		}
		// A session the test forgot to close must not stop the drop.
		conn, err := pgx.Connect(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		leftOpen = conn
	})
	if leftOpen != nil {
		defer leftOpen.Close(context.Background())
	}
	if name == "" {
		t.Fatal("subtest did not report its database")
	}
	if databaseExists(t, admin, name) {
		t.Errorf("database %s still exists after its test's cleanup", name)
	}
	leftDB := leftOpen.Config().Database
	if databaseExists(t, admin, leftDB) {
		t.Errorf("database %s with a session left open still exists after cleanup", leftDB)
	}
}

func TestURL_ParallelTestsGetUniqueDatabases(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for i := range 16 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				conn := connect(t, pgtest.URL(t))
				db := queryString(t, conn, "SELECT current_database()")
				mu.Lock()
				defer mu.Unlock()
				if seen[db] {
					t.Errorf("database %s handed out twice", db)
				}
				seen[db] = true
			})
		}
	})
	if len(seen) != 16 {
		t.Errorf("got %d distinct databases, want 16", len(seen))
	}
}

func TestAdminURL_MaintenanceDatabaseOnTheSameServer(t *testing.T) {
	t.Parallel()
	dbConn := connect(t, pgtest.URL(t))
	admin := connect(t, pgtest.AdminURL(t))
	if got := queryString(t, admin, "SELECT current_database()"); got != "postgres" {
		t.Errorf("AdminURL connects to %q, want postgres", got)
	}
	db := queryString(t, dbConn, "SELECT current_database()")
	if !databaseExists(t, admin, db) {
		t.Errorf("test database %s not seen from AdminURL: different servers", db)
	}
	// pg_locks is what AdminURL is for: the test database's session shows up.
	var n int
	if err := admin.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("pg_stat_activity shows %d sessions on %s, want at least 1", n, db)
	}
	if os.Getenv("DATABASE_URL") == "" {
		if got := queryString(t, admin, "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user"); got != "true" {
			t.Errorf("AdminURL user is not a superuser (rolsuper = %s)", got)
		}
	}
}

func TestCluster_ListensOnlyOnSocketWithTestSettings(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL is set: the harness did not start this server")
	}
	t.Parallel()
	admin := connect(t, pgtest.AdminURL(t))
	want := map[string]string{
		"listen_addresses":   "",
		"max_connections":    "300",
		"shared_buffers":     "128MB",
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
	}
	if os.Getenv("PGTEST_DURABLE") == "1" {
		want["fsync"], want["synchronous_commit"], want["full_page_writes"] = "on", "on", "on"
	}
	for name, value := range want {
		if got := queryString(t, admin, "SELECT current_setting($1)", name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
	sockDir := queryString(t, admin, "SELECT current_setting('unix_socket_directories')")
	if fi, err := os.Stat(sockDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory %s is not private (0700): %v %v", sockDir, fi.Mode(), err)
	}
}

func TestFindBinDir_OnThisMachine(t *testing.T) {
	dir, err := pgtest.FindBinDir(pgtest.DefaultSearchPlaces())
	if err != nil {
		if os.Getenv("DATABASE_URL") != "" {
			t.Skipf("no server binaries, and DATABASE_URL is set: %v", err)
		}
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PostgreSQL") {
		t.Errorf("%s/postgres --version = %q, %v", dir, out, err)
	}
}

func writeExecutable(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func fakeServerDir(t *testing.T, dir string, programs ...string) string {
	t.Helper()
	if len(programs) == 0 {
		programs = []string{"initdb", "pg_ctl", "postgres"}
	}
	for _, p := range programs {
		writeExecutable(t, filepath.Join(dir, p), "exit 0")
	}
	return dir
}

func TestFindBinDir_SearchOrder(t *testing.T) {
	root := t.TempDir()
	path := func(dirs ...string) string { return strings.Join(dirs, string(os.PathListSeparator)) }

	onPath := fakeServerDir(t, filepath.Join(root, "onpath"))
	partial := fakeServerDir(t, filepath.Join(root, "partial"), "initdb", "pg_ctl") // no postgres
	notExec := filepath.Join(root, "notexec")
	fakeServerDir(t, notExec)
	if err := os.Chmod(filepath.Join(notExec, "postgres"), 0o644); err != nil {
		t.Fatal(err)
	}
	fromPgConfig := fakeServerDir(t, filepath.Join(root, "pgconfig-bindir"))
	pgConfigDir := filepath.Join(root, "pgconfig")
	writeExecutable(t, filepath.Join(pgConfigDir, "pg_config"), `[ "$1" = --bindir ] && echo `+fromPgConfig)

	debian := filepath.Join(root, "debian")
	for _, v := range []string{"9.6", "13", "15"} {
		fakeServerDir(t, filepath.Join(debian, v, "bin"))
	}
	fakeServerDir(t, filepath.Join(debian, "16", "bin"), "initdb") // incomplete: skipped
	fakeServerDir(t, filepath.Join(debian, "extension", "bin"))    // not a version: ignored

	tests := []struct {
		name    string
		places  pgtest.SearchPlaces
		want    string
		wantErr bool
	}{
		{"PATH first", pgtest.NewSearchPlaces(path(partial, onPath, pgConfigDir), debian), onPath, false},
		{"pg_config when PATH lacks them", pgtest.NewSearchPlaces(path(partial, notExec, pgConfigDir), debian), fromPgConfig, false},
		{"highest complete Debian version last", pgtest.NewSearchPlaces(path(partial), debian), filepath.Join(debian, "15", "bin"), false},
		{"nothing anywhere", pgtest.NewSearchPlaces(path(partial), filepath.Join(root, "missing")), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pgtest.FindBinDir(tt.places)
			if tt.wantErr {
				if !errors.Is(err, pgtest.ErrNoBinaries) {
					t.Fatalf("err = %v, want ErrNoBinaries", err)
				}
				for _, hint := range []string{"apt-get install -y postgresql", "DATABASE_URL", partial} {
					if !strings.Contains(err.Error(), hint) {
						t.Errorf("error %q does not mention %q", err, hint)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("FindBinDir = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"postgres://u:p@db.example:5433/app?sslmode=require", "postgres://u:p@db.example:5433/esgen_test_x?sslmode=require"},
		{"postgresql://u@h/app?dbname=other&sslmode=disable", "postgresql://u@h/esgen_test_x?sslmode=disable"},
		{"postgres:///?host=%2Ftmp%2Fs", "postgres:///esgen_test_x?host=%2Ftmp%2Fs"},
		{"host=h user=u dbname=app", "host=h user=u dbname=app dbname=esgen_test_x"},
	}
	for _, tt := range tests {
		if got := pgtest.WithDatabase(tt.raw, "esgen_test_x"); got != tt.want {
			t.Errorf("WithDatabase(%q) = %q, want %q", tt.raw, got, tt.want)
		}
		// The keyword/value form relies on the last dbname winning.
		cfg, err := pgx.ParseConfig(pgtest.WithDatabase(tt.raw, "esgen_test_x"))
		if err != nil {
			t.Errorf("parse %q: %v", tt.raw, err)
		} else if cfg.Database != "esgen_test_x" {
			t.Errorf("WithDatabase(%q) connects to %q", tt.raw, cfg.Database)
		}
	}
}

// crashEnv makes TestCluster_CrashingTestBinaryLeavesNothingBehind's child
// process run the crashing test.
const crashEnv = "PGTEST_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	if os.Getenv(crashEnv) != "1" {
		t.Skip("only run as the child of TestCluster_CrashingTestBinaryLeavesNothingBehind")
	}
	admin := connect(t, pgtest.AdminURL(t))
	fmt.Printf("CLUSTER_DIR=%s\n", queryString(t, admin, "SELECT current_setting('unix_socket_directories')"))
	go panic("test panics on its own goroutine: Main's deferred cleanup cannot run")
	time.Sleep(time.Minute)
}

func TestCluster_CrashingTestBinaryLeavesNothingBehind(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL is set: the harness starts no cluster")
	}
	if testing.Short() {
		t.Skip("starts a second cluster")
	}
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"=1", "DATABASE_URL=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "CLUSTER_DIR="); ok {
			dir = d
		}
	}
	err = cmd.Wait()
	if dir == "" {
		t.Fatalf("child printed no cluster directory (exit %v); stderr:\n%s", err, stderr.String())
	}
	if err == nil {
		t.Fatal("child exited cleanly; it should have panicked")
	}
	if _, statErr := os.Stat(dir); statErr != nil {
		t.Fatalf("cluster directory %s already gone right after the crash (%v): the test proves nothing", dir, statErr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		if errors.Is(statErr, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster directory %s still exists 30s after the test binary crashed", dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The server is gone too: nothing answers on its socket.
	if conn, err := pgx.Connect(t.Context(), "postgres:///postgres?host="+dir+"&user=postgres&connect_timeout=2"); err == nil {
		conn.Close(context.Background())
		t.Errorf("a server still answers on %s after cleanup", dir)
	}
}
