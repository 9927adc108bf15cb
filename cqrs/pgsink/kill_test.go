package pgsink_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
)

// TestReplay_ChildKilledWithSIGKILL runs the replay in a child process and
// kills it with SIGKILL at random moments, twenty times: no deferred code,
// no rollback from the client, only the server's end of the session. The
// final read model must equal a clean run's.
func TestReplay_ChildKilledWithSIGKILL(t *testing.T) {
	if url := os.Getenv("ESGEN_KILL_CHILD_URL"); url != "" {
		replayChild(t, url)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes; skipped with -short")
	}
	e := setup(t)
	head := appendEvents(t, e, 100, 100)
	clean := newModel(t, e, "kclean")
	runToHead(t, runner(t, e, e.sink, clean), head)
	want := clean.rows(t, e)
	killed := newModel(t, e, "kchild")

	url := e.pool.Config().ConnString()
	duringReplay := 0
	for kill := 0; kill < 20; kill++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplay_ChildKilledWithSIGKILL$")
		cmd.Env = append(os.Environ(), "ESGEN_KILL_CHILD_URL="+url)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random moment after the child's next commit, so that
		// every kill lands during the replay whatever the machine's speed.
		before, err := e.sink.Checkpoint(context.Background(), "kchild")
		if err != nil {
			t.Fatal(err)
		}
		if before == head {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			break
		}
		waitFor(t, "the child's next commit", func() bool {
			cp, err := e.sink.Checkpoint(context.Background(), "kchild")
			return err == nil && cp != before
		})
		time.Sleep(time.Duration(rand.IntN(60_000)) * time.Microsecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		cp, err := e.sink.Checkpoint(context.Background(), "kchild")
		if err != nil {
			t.Fatal(err)
		}
		if cp != head && !cp.IsZero() {
			duringReplay++ // killed after some progress, before the end
		}
	}
	t.Logf("%d of 20 kills after some progress and before the head", duringReplay)
	if duringReplay < 10 {
		t.Fatalf("only %d kills happened during the replay", duringReplay)
	}
	runToHead(t, runner(t, e, e.sink, killed), head)
	if got := killed.rows(t, e); !equal(got, want) {
		t.Fatalf("read model after 20 SIGKILLs differs from a clean run: got %d rows %v, want %d rows %v",
			len(got), first(got), len(want), first(want))
	}
}

// replayChild is the child's side: run the "kchild" projection, slowly,
// until killed.
func replayChild(t *testing.T, url string) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	store, err := pgstore.New(pool, pgstore.WithPageSize(500), pgstore.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := pgsink.New(pool, pgsink.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	m := &model{name: "kchild", latest: pgsink.NewTable("kchild_latest", []string{"stream_id"}, "version", "data")}
	m.hook = func(context.Context, es.Event) error {
		time.Sleep(300 * time.Microsecond)
		return nil
	}
	e := env{pool: pool, store: store, sink: sink}
	r := runner(t, e, sink, m)
	_ = r.Run(ctx) // until killed
}
