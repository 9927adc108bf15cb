package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// maintenanceDB is the database every server has, used for admin work.
	maintenanceDB = "postgres"
	// dbPrefix marks databases made by this harness, so strays on a shared
	// DATABASE_URL server are easy to find.
	dbPrefix = "esgen_test_"

	adminTimeout = 30 * time.Second
)

// server is where test databases are made: a DATABASE_URL server or this
// binary's own cluster.
type server struct {
	// urlFor returns a connection string for database db as the admin user.
	urlFor func(db string) string
	// cluster is the cluster this binary started, or nil under DATABASE_URL.
	cluster *cluster
}

// The harness's state is per test binary by nature: one server, set up at most
// once, stopped by Main.
var (
	mu         sync.Mutex
	mainCalled bool
	setupDone  bool
	stopped    bool
	current    *server
	setupErr   error
)

// Main runs the package's tests and then stops the cluster the harness started,
// if any, and removes its files. It exits the process with m.Run's code. Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	mu.Lock()
	mainCalled = true
	mu.Unlock()
	os.Exit(run(m))
}

// Run is Main for a test binary whose TestMain belongs to another harness,
// such as testscript.Main, which takes anything with a Run method: it runs
// m, stops the cluster, and returns m's code instead of exiting.
//
//	type withPostgres struct{ m *testing.M }
//	func (w withPostgres) Run() int { return pgtest.Run(w.m) }
//	func TestMain(m *testing.M) { testscript.Main(withPostgres{m}, commands) }
func Run(m interface{ Run() int }) int {
	mu.Lock()
	mainCalled = true
	mu.Unlock()
	return run(m)
}

// run returns m.Run's code; the deferred shutdown also runs if m.Run panics on
// this goroutine. (A test panicking on its own goroutine ends the process
// without unwinding here; the cluster's watchdog cleans up then.)
func run(m interface{ Run() int }) int {
	defer shutdown()
	return m.Run()
}

func shutdown() {
	mu.Lock()
	defer mu.Unlock()
	stopped = true
	if current == nil || current.cluster == nil {
		return
	}
	if err := current.cluster.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
	}
	current = nil
}

// getServer sets the server up on first use and returns it.
func getServer() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if stopped {
		return nil, fmt.Errorf("pgtest: used after Main stopped the server")
	}
	if setupDone {
		return current, setupErr
	}
	setupDone = true
	current, setupErr = setup()
	return current, setupErr
}

func setup() (*server, error) {
	if raw, ok := os.LookupEnv("DATABASE_URL"); ok && raw != "" {
		if _, err := pgconn.ParseConfig(raw); err != nil {
			return nil, fmt.Errorf("pgtest: DATABASE_URL is not a valid connection string: %w", err)
		}
		return &server{urlFor: func(db string) string { return withDatabase(raw, db) }}, nil
	}
	if !mainCalled {
		// Without Main nobody would stop the cluster (the watchdog only acts
		// once the process is gone).
		return nil, fmt.Errorf("pgtest: call pgtest.Main from TestMain so the cluster is stopped after the tests: " +
			"func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	c, err := startCluster()
	if err != nil {
		if errors.Is(err, errNoBinaries) {
			return nil, err
		}
		return nil, fmt.Errorf("%w\npgtest: could not start a throwaway PostgreSQL cluster; fix the above, "+
			"or set DATABASE_URL to use an existing server", err)
	}
	return &server{urlFor: c.url, cluster: c}, nil
}

// withDatabase returns the connection string raw pointed at database db.
// Names made here are plain identifiers, so no quoting is needed.
func withDatabase(raw, db string) string {
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err == nil {
			u.Path, u.RawPath = "/"+db, ""
			q := u.Query()
			if q.Has("dbname") || q.Has("database") {
				q.Del("dbname")
				q.Del("database")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	// Keyword/value form: a later setting wins over an earlier one.
	return raw + " dbname=" + db
}

// URL returns a connection string for a new, empty database that belongs to this
// test only (created from template0, named esgen_test_<random>). The database is
// dropped in t.Cleanup, after closing any connections still open to it. URL calls
// t.Fatal, saying how to fix it, if no PostgreSQL can be had.
func URL(t testing.TB) string {
	t.Helper()
	s, err := getServer()
	if err != nil {
		t.Fatal(err)
	}
	name := dbPrefix + randomSuffix(t)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := adminExec(ctx, s, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if err := dropDatabase(ctx, s, name); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.urlFor(name)
}

// Pool returns a pool connected to a new database from [URL]. The pool is
// closed in t.Cleanup, before the database is dropped.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("pgtest: connect pool: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: ping pool: %v", err)
	}
	return pool
}

// AdminURL returns a connection string to the server's maintenance database
// ("postgres") on the same server as [URL]: as the superuser for the harness's
// own cluster, as DATABASE_URL's user otherwise. It is for looking at
// server-wide state (pg_locks, pg_stat_activity, pg_database); tests must not
// change that database.
func AdminURL(t testing.TB) string {
	t.Helper()
	s, err := getServer()
	if err != nil {
		t.Fatal(err)
	}
	return s.urlFor(maintenanceDB)
}

func randomSuffix(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random database name: %v", err)
	}
	return hex.EncodeToString(b)
}

func adminExec(ctx context.Context, s *server, sql string) error {
	conn, err := pgx.Connect(ctx, s.urlFor(maintenanceDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// dropDatabase ends every session on db, then drops it. WITH (FORCE)
// (PostgreSQL 13+) also ends a session that connects between the two.
func dropDatabase(ctx context.Context, s *server, db string) error {
	conn, err := pgx.Connect(ctx, s.urlFor(maintenanceDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
		db); err != nil {
		return fmt.Errorf("terminate sessions: %w", err)
	}
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}
