package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// clusterPort only names the socket file (.s.PGSQL.5432): the server listens
	// on no TCP port, and the socket directory is private to the test binary.
	clusterPort = 5432
	// clusterSuperuser is the superuser initdb creates, whoever runs it.
	clusterSuperuser = "postgres"
	// maxSocketDirLen keeps <dir>/.s.PGSQL.5432 under the ~107-byte limit on
	// Unix socket paths.
	maxSocketDirLen = 90

	initdbTimeout = 2 * time.Minute
	// startWait is pg_ctl's own -t; the command timeout around it is longer so
	// pg_ctl can report why the server did not come up.
	startWait    = 60
	startTimeout = 90 * time.Second
	stopTimeout  = 60 * time.Second
)

// cluster is a PostgreSQL cluster started for this test binary: data, socket
// and log all live in base, a fresh temporary directory nobody else uses.
type cluster struct {
	binDir   string
	base     string  // private directory: the socket lives here directly
	dataDir  string  // base/data
	logFile  string  // base/postgres.log
	account  *osUser // nil: the current OS user
	watchdog *exec.Cmd
}

// startCluster initdb's and starts a new cluster, or returns an error saying
// what failed and how to fix it. Nothing is left behind on failure.
func startCluster() (_ *cluster, err error) {
	binDir, err := findBinDir(defaultSearchPlaces())
	if err != nil {
		return nil, err
	}
	account, err := serverAccount()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp(tempRoot(account != nil), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	c := &cluster{
		binDir:  binDir,
		base:    base,
		dataDir: filepath.Join(base, "data"),
		logFile: filepath.Join(base, "postgres.log"),
		account: account,
	}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := account.chown(base); err != nil {
		return nil, fmt.Errorf("give cluster directory %s to OS user %q: %w", base, account.name, err)
	}

	// -N: the cluster is thrown away, so initdb need not fsync what it writes.
	// --locale=C avoids depending on which OS locales happen to be installed.
	if err := c.run(initdbTimeout, "initdb", "-D", c.dataDir, "-U", clusterSuperuser,
		"-A", "trust", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		return nil, err
	}
	if err := c.appendConfig(); err != nil {
		return nil, err
	}
	if err := c.run(startTimeout, "pg_ctl", "start", "-w", "-t", strconv.Itoa(startWait),
		"-D", c.dataDir, "-l", c.logFile); err != nil {
		return nil, fmt.Errorf("%w\nserver log %s:\n%s", err, c.logFile, indent(c.logTail()))
	}
	c.startWatchdog()
	return c, nil
}

// tempRoot picks where the cluster directory goes: the usual temporary
// directory unless its path is too long for a socket or, as root, the server
// account could not reach into it.
func tempRoot(asOtherUser bool) string {
	dir := os.TempDir()
	if len(dir) > maxSocketDirLen-len("/pgtest-1234567890") || (asOtherUser && !worldSearchable(dir)) {
		return "/tmp"
	}
	return dir
}

// appendConfig adds the harness's settings to postgresql.conf, where later
// lines win over initdb's.
func (c *cluster) appendConfig() error {
	settings := []string{
		"listen_addresses = ''",
		"unix_socket_directories = " + quoteConf(c.base),
		"port = " + strconv.Itoa(clusterPort),
		"max_connections = 300",
		"shared_buffers = 128MB",
	}
	if os.Getenv("PGTEST_DURABLE") != "1" {
		settings = append(settings,
			"fsync = off",
			"synchronous_commit = off",
			"full_page_writes = off",
		)
	}
	conf := filepath.Join(c.dataDir, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure cluster: %w", err)
	}
	_, err = f.WriteString("\n# added by esgen internal/pgtest\n" + strings.Join(settings, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("configure cluster: write %s: %w", conf, err)
	}
	return nil
}

func quoteConf(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// command prepares one of the server programs, run as the server account.
func (c *cluster) command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, program), args...)
	// The test's working directory may not be readable by the server account.
	cmd.Dir = c.base
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	setSysProcAttr(cmd, c.account, false)
	return cmd
}

// run runs a server program to completion; its error names the command and
// carries all it printed.
func (c *cluster) run(timeout time.Duration, program string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.command(ctx, program, args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %s)", err, timeout)
	}
	who := ""
	if c.account != nil {
		who = " (as OS user " + c.account.name + ")"
	}
	return fmt.Errorf("pgtest: %s%s: %w\noutput:\n%s", cmd.String(), who, err, indent(out))
}

// startWatchdog starts a process that, once this test binary has exited
// without calling stop (a panicking test, a -timeout, a signal), stops the
// cluster and removes its directory. Deferred calls cannot cover those cases:
// a test panicking on its own goroutine ends the process without running them.
// The watchdog is best effort, so a failure to start it is not an error.
func (c *cluster) startWatchdog() {
	if !watchdogSupported {
		return
	}
	const script = `while kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]; do sleep 1; done
"$2" stop -D "$3" -m immediate -w -t 30 >/dev/null 2>&1
rm -rf "$4"`
	cmd := exec.Command("/bin/sh", "-c", script, "pgtest-watchdog",
		strconv.Itoa(os.Getpid()), filepath.Join(c.binDir, "pg_ctl"), c.dataDir, c.base)
	cmd.Dir = c.base
	// Its own session: a Ctrl-C for the test binary must not stop the cleanup.
	// No stdio: go test waits for the binary's output pipes to close.
	setSysProcAttr(cmd, c.account, true)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: start cleanup watchdog (the cluster in %s may outlive a crashed test binary): %v\n", c.base, err)
		return
	}
	c.watchdog = cmd
}

// stop stops the server at once (its data is thrown away) and removes the
// cluster directory. It returns every problem, joined.
func (c *cluster) stop() error {
	var errs []error
	if c.watchdog != nil {
		killSession(c.watchdog)
		c.watchdog = nil
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); err == nil {
		if err := c.run(stopTimeout, "pg_ctl", "stop", "-D", c.dataDir, "-m", "immediate", "-w"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.base); err != nil {
		errs = append(errs, fmt.Errorf("pgtest: remove cluster directory: %w", err))
	}
	return errors.Join(errs...)
}

// url returns a connection string for database db as the superuser, over the
// cluster's socket.
func (c *cluster) url(db string) string {
	q := url.Values{
		"host":    {c.base},
		"port":    {strconv.Itoa(clusterPort)},
		"user":    {clusterSuperuser},
		"sslmode": {"disable"},
	}
	return (&url.URL{Scheme: "postgres", Path: "/" + db, RawQuery: q.Encode()}).String()
}

// logTail returns the end of the server log, where the reason a start failed is.
func (c *cluster) logTail() []byte {
	const max = 4 << 10
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return []byte("(no server log: " + err.Error() + ")")
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return b
}

func indent(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "    (nothing)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
