package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
	"github.com/esgen-dev/esgen/internal/pgtest"
)

// runProjections runs `esgen projections ARGS` as run does, with the
// projections subtree added to the root if it is not registered there.
func runProjections(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	root := newRootCmd()
	registered := false
	for _, c := range root.Commands() {
		registered = registered || c.Name() == "projections"
	}
	if !registered {
		root.AddCommand(newProjectionsCmd())
	}
	var out, errOut bytes.Buffer
	root.SetArgs(append([]string{"projections"}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	var cmd *cobra.Command
	var err error
	cmd, err = root.ExecuteC()
	switch {
	case err == nil:
		code = exitOK
	case errors.As(err, new(usageError)) || strings.HasPrefix(err.Error(), "unknown flag"):
		errOut.WriteString(cmd.CommandPath() + ": " + err.Error() + "\n")
		code = exitUsage
	default:
		errOut.WriteString(cmd.CommandPath() + ": " + err.Error() + "\n")
		code = exitFailed
	}
	return code, out.String(), errOut.String()
}

// countProjection counts events per stream in cli_counts.
type countProjection struct{}

func (countProjection) Name() string         { return "counts" }
func (countProjection) EventTypes() []string { return []string{"test.Counted"} }
func (countProjection) Handle(ctx context.Context, rec es.Event) error {
	return pgsink.Exec(ctx, `INSERT INTO `+pgsink.Name(ctx, "cli_counts")+` AS c VALUES ($1, 1)
ON CONFLICT (stream_id) DO UPDATE SET n = c.n + 1`, rec.StreamID)
}
func (countProjection) Reset(ctx context.Context) error {
	_, err := pgsink.Tx(ctx).Exec(ctx, `TRUNCATE cli_counts`)
	return err
}

// TestProjections_AgainstARunningApp runs an app's projection in the test
// process and drives it with `esgen projections`, on the pgtest harness's
// Postgres (or DATABASE_URL).
func TestProjections_AgainstARunningApp(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.Open(ctx, url, pgstore.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sink, err := pgsink.Open(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE cli_counts (stream_id text PRIMARY KEY, n bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		evs := make([]es.EventData, 100)
		for j := range evs {
			evs[j] = es.EventData{Type: "test.Counted", Data: []byte{}}
		}
		if _, err := store.Append(ctx, "s-"+string(rune('a'+i)), es.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.WaitVisible(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := cqrs.NewRunner(store, sink, countProjection{},
		cqrs.WithRunnerConfig(cqrs.RunnerConfig{ControlInterval: 20 * time.Millisecond, MaxWait: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	pollEvery = 20 * time.Millisecond

	// list and status, text and JSON.
	var info pgsink.Info
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errOut := runProjections(t, "status", "counts", "--json", "--database-url", url)
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if info.State == "running" && info.LagEvents == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never running at the head: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, _ := runProjections(t, "list", "--database-url", url)
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "counts") || !strings.Contains(out, "running") {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	t.Logf("esgen projections list:\n%s", out)
	t.Setenv("DATABASE_URL", url)
	code, out, _ = runProjections(t, "status")
	if code != 0 || !strings.Contains(out, "lag") || !strings.Contains(out, "0 events") {
		t.Fatalf("status from $DATABASE_URL: exit %d:\n%s", code, out)
	}
	t.Logf("esgen projections status:\n%s", out)

	// reset --wait: carried out by the runner, then back at the head.
	code, out, errOut := runProjections(t, "reset", "counts", "--wait", "--timeout", "30s", "--json")
	if code != 0 {
		t.Fatalf("reset --wait: exit %d: %s", code, errOut)
	}
	var res struct {
		Request    pgsink.RequestState
		Projection pgsink.Info
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Request.State != "done" || res.Projection.LagEvents != 0 {
		t.Fatalf("reset --wait --json: %v\n%s", err, out)
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT sum(n) FROM cli_counts`).Scan(&n); err != nil || n != 500 {
		t.Fatalf("after reset the model counts %d events (%v), want 500", n, err)
	}

	// rebuild --wait: served by the app's ServeRebuilds, blue/green.
	if _, err := pool.Exec(ctx, `UPDATE cli_counts SET n = 0`); err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- sink.ServeRebuilds(serveCtx, store, []pgsink.RebuildTarget{{
			Projection: countProjection{},
			Options: pgsink.RebuildOptions{Tables: []string{"cli_counts"},
				Runner: []cqrs.RunnerOption{cqrs.WithRunnerLogger(slog.New(slog.DiscardHandler))}},
		}}, 20*time.Millisecond)
	}()
	code, out, errOut = runProjections(t, "rebuild", "counts", "--wait", "--timeout", "30s")
	stopServe()
	<-served
	if code != 0 || !strings.Contains(out, `rebuild of projection "counts" done`) {
		t.Fatalf("rebuild --wait: exit %d: %s%s", code, out, errOut)
	}
	if err := pool.QueryRow(ctx, `SELECT sum(n) FROM cli_counts`).Scan(&n); err != nil || n != 500 {
		t.Fatalf("after rebuild the model counts %d events (%v), want 500", n, err)
	}

	// replay without waiting: a request is left for the runner.
	code, out, _ = runProjections(t, "replay", "counts")
	if code != 0 || !strings.Contains(out, "requested replay of projection \"counts\"") {
		t.Fatalf("replay: exit %d: %s", code, out)
	}

	// Errors.
	code, _, errOut = runProjections(t, "status", "nope")
	if code != exitFailed || !strings.Contains(errOut, `unknown projection "nope" (known: "counts")`) {
		t.Fatalf("status nope: exit %d: %s", code, errOut)
	}
	code, _, errOut = runProjections(t, "reset")
	if code != exitUsage {
		t.Fatalf("reset without a name: exit %d: %s", code, errOut)
	}
	code, _, errOut = runProjections(t, "list", "--database-url", pgtest.URL(t))
	if code != exitFailed || !strings.Contains(errOut, "no esgen projection tables") {
		t.Fatalf("list on an empty database: exit %d: %s", code, errOut)
	}
	t.Setenv("DATABASE_URL", "")
	code, _, errOut = runProjections(t, "list")
	if code != exitUsage || !strings.Contains(errOut, "--database-url or set DATABASE_URL") {
		t.Fatalf("list without a database: exit %d: %s", code, errOut)
	}
}
