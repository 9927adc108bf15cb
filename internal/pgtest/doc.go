// Package pgtest gives tests a real, throwaway PostgreSQL database.
//
// It owns the lifecycle of test databases and, when no server is given, of one
// private PostgreSQL cluster per test binary. It does not own schemas: each
// caller gets an empty database and runs its own migrations in it.
//
// Use it from a package's tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.Pool(t) // a new, empty database, dropped when t ends
//		...
//	}
//
// Where the server comes from:
//
//   - DATABASE_URL set: that server is used. Each [URL] call creates a database
//     named esgen_test_<random> on it and connects as the URL's user, who must
//     be allowed to create databases. [AdminURL] is the same URL pointed at the
//     "postgres" database.
//   - DATABASE_URL unset: on first use the harness initdb's a cluster in a
//     private temporary directory and starts it listening only on a Unix socket
//     in that directory, so concurrent test binaries (go test ./...) never share
//     or collide. The server binaries (initdb, pg_ctl, postgres) are looked for
//     on PATH, then in `pg_config --bindir`, then in the highest version of
//     /usr/lib/postgresql/*/bin (where Debian and Ubuntu put them). As root, the
//     cluster runs as the "postgres" OS user, because PostgreSQL refuses to run
//     as root. [Main] stops the cluster and removes its directory after the
//     tests; if the test binary dies without reaching that point (a panicking
//     test, a -timeout, a signal) a small watchdog process does it instead.
//
// The cluster trades durability for speed (fsync, synchronous_commit and
// full_page_writes off). Set PGTEST_DURABLE=1 to keep the server defaults, as
// benchmarks that measure commit cost must.
//
// All functions are safe for concurrent use, including from parallel tests.
package pgtest
