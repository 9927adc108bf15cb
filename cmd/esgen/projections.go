package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
)

// projectionsFlags are the flags every `esgen projections` command shares.
type projectionsFlags struct {
	databaseURL string
	schema      string
	json        bool
}

// newProjectionsCmd is `esgen projections`: status of an app's projections
// and requests to its runners, against the app's Postgres database.
func newProjectionsCmd() *cobra.Command {
	f := &projectionsFlags{}
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Show and operate an app's projections in its Postgres database",
		Long: `projections reads the checkpoints and the status that an app's projection
runners (cqrs.Runner with a pgsink.Sink) keep in its Postgres database, and
asks them for work.

esgen cannot run the app's projection code: reset and replay write a request
to the database, and the runner that holds the projection carries it out
between two batches (within about a second while it runs). With --wait the
command waits for that and then shows the rebuild's progress until the
projection is back at the head of the log.`,
		Example: `  esgen projections list --database-url postgres://localhost/shop
  esgen projections status order-summary --json
  esgen projections reset order-summary --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.databaseURL, "database-url", "", "the app's Postgres database (default $DATABASE_URL)")
	pf.StringVar(&f.schema, "schema", "esgen", "the Postgres schema of the event store and projection tables")
	pf.BoolVar(&f.json, "json", false, "print JSON instead of text")
	cmd.AddCommand(
		newProjectionsListCmd(f),
		newProjectionsStatusCmd(f),
		newProjectionsRequestCmd(f, cqrs.ActionReset),
		newProjectionsRequestCmd(f, cqrs.ActionReplay),
		newProjectionsRequestCmd(f, pgsink.ActionRebuild),
	)
	return cmd
}

// open connects to the database and returns a sink for inspecting it.
func (f *projectionsFlags) open(ctx context.Context) (*pgsink.Sink, func(), error) {
	url := f.databaseURL
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	if url == "" {
		return nil, nil, usagef("no database: pass --database-url or set DATABASE_URL")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("connect to the database: %w", err)
	}
	sink, err := pgsink.New(pool, pgsink.WithSchema(f.schema))
	if err != nil {
		pool.Close()
		return nil, nil, usageError{err}
	}
	return sink, pool.Close, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newProjectionsListCmd(f *projectionsFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the projections with their state and lag",
		Example: `  esgen projections list --json`,
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			sink, closeDB, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer closeDB()
			names, err := sink.Names(ctx)
			if err != nil {
				return err
			}
			infos := make([]pgsink.Info, 0, len(names))
			for _, n := range names {
				info, err := sink.Inspect(ctx, n)
				if err != nil {
					return err
				}
				infos = append(infos, info)
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), infos)
			}
			if len(infos) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no projections have run against this database yet")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tCHECKPOINT\tLAG\tLAG TIME\tPARKED")
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", i.Name, stateText(i), i.Checkpoint, i.LagEvents, lagText(i.LagSeconds), i.Parked)
			}
			return tw.Flush()
		},
	}
}

func stateText(i pgsink.Info) string {
	if len(i.Pending) > 0 {
		return i.State + " (" + i.Pending[0].Action + " requested)"
	}
	return i.State
}

func lagText(s float64) string {
	if s <= 0 {
		return "0s"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func newProjectionsStatusCmd(f *projectionsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show the checkpoint, head, lag, state and last error of projections",
		Example: `  esgen projections status order-summary
  esgen projections status --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			sink, closeDB, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer closeDB()
			names := args
			if len(names) == 0 {
				if names, err = sink.Names(ctx); err != nil {
					return err
				}
			}
			var infos []pgsink.Info
			for _, n := range names {
				info, err := sink.Inspect(ctx, n)
				if err != nil {
					return err
				}
				infos = append(infos, info)
			}
			if f.json {
				if len(args) == 1 {
					return writeJSON(cmd.OutOrStdout(), infos[0])
				}
				return writeJSON(cmd.OutOrStdout(), infos)
			}
			for k, i := range infos {
				if k > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				printInfo(cmd.OutOrStdout(), i)
			}
			return nil
		},
	}
}

func printInfo(w io.Writer, i pgsink.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "projection\t%s\n", i.Name)
	fmt.Fprintf(tw, "state\t%s\n", i.State)
	if i.RebuildCheckpoint != "" {
		fmt.Fprintf(tw, "rebuild\tnext version at %s\n", i.RebuildCheckpoint)
	}
	fmt.Fprintf(tw, "checkpoint\t%s\n", i.Checkpoint)
	fmt.Fprintf(tw, "head\t%s\n", i.Head)
	fmt.Fprintf(tw, "lag\t%d events, %s\n", i.LagEvents, lagText(i.LagSeconds))
	fmt.Fprintf(tw, "parked events\t%d\n", i.Parked)
	if i.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", i.LastError)
	}
	if i.Owner != "" && i.ReportedAt != nil {
		fmt.Fprintf(tw, "reported by\t%s, %s ago\n", i.Owner, time.Since(*i.ReportedAt).Round(time.Second))
	}
	for _, p := range i.Pending {
		fmt.Fprintf(tw, "pending\t%s (request %d, %s ago)\n", p.Action, p.ID, time.Since(p.RequestedAt).Round(time.Second))
	}
	_ = tw.Flush()
}

func newProjectionsRequestCmd(f *projectionsFlags, action cqrs.RequestAction) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
		from    string
	)
	short := map[cqrs.RequestAction]string{
		cqrs.ActionReset:     "Empty a projection's read model and rebuild it from the start of the log",
		cqrs.ActionReplay:    "Apply the log again from a position (default: the start) without emptying the read model",
		pgsink.ActionRebuild: "Rebuild a projection's read model blue/green beside the live one, then swap",
	}[action]
	cmd := &cobra.Command{
		Use:   string(action) + " NAME",
		Short: short,
		Long: short + `.

The request is written to the database; the app's runner that holds the
projection carries it out between two batches.` + map[cqrs.RequestAction]string{
			cqrs.ActionReset: ` The projection must implement
cqrs.Resetter (Reset empties its tables), or the request fails.`,
			cqrs.ActionReplay: ` Only for projections whose handlers are
idempotent: the events after --from are applied a second time.`,
			pgsink.ActionRebuild: ` The app must serve rebuilds
(pgsink.Sink.ServeRebuilds); the live read model keeps serving until the
rebuilt one replaces it in one transaction.`,
		}[action],
		Example: "  esgen projections " + string(action) + " order-summary --wait",
		Args:    exactArgs(1, "one projection name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var pos es.Position
			if from != "" {
				if action != cqrs.ActionReplay {
					return usagef("--from applies to replay only")
				}
				c, p, ok := strings.Cut(from, "/")
				cn, err1 := strconv.ParseUint(c, 10, 64)
				pn, err2 := strconv.ParseUint(p, 10, 64)
				if !ok || err1 != nil || err2 != nil {
					return usagef("--from %q: want a position COMMIT/PREPARE, as status shows it", from)
				}
				pos = es.Position{Commit: cn, Prepare: pn}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			sink, closeDB, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer closeDB()
			id, err := sink.Request(ctx, args[0], action, pos, requester())
			if err != nil {
				return err
			}
			if !wait {
				if f.json {
					return writeJSON(cmd.OutOrStdout(), pgsink.RequestState{ID: id, Projection: args[0], Action: string(action), State: "pending"})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "requested %s of projection %q (request %d); the app's runner carries it out while it runs\n", action, args[0], id)
				return nil
			}
			st, err := waitForRequest(ctx, sink, id, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if st.State == "failed" {
				if f.json {
					_ = writeJSON(cmd.OutOrStdout(), st)
				}
				return fmt.Errorf("%s of projection %q failed: %s", action, args[0], st.Error)
			}
			info, err := waitCaughtUp(ctx, sink, args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(cmd.OutOrStdout(), struct {
					Request    pgsink.RequestState `json:"request"`
					Projection pgsink.Info         `json:"projection"`
				}{st, info})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s of projection %q done; at the head (%s)\n", action, args[0], info.Checkpoint)
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the request is carried out and the projection is back at the head, showing progress")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: never)")
	if action == cqrs.ActionReplay {
		cmd.Flags().StringVar(&from, "from", "", "replay the events after this position (COMMIT/PREPARE); default: all")
	}
	return cmd
}

func requester() string {
	name := "esgen"
	if u, err := user.Current(); err == nil {
		name += " (" + u.Username + ")"
	}
	return name
}

// pollEvery is how often --wait looks at the database.
var pollEvery = 500 * time.Millisecond

// waitForRequest waits until request id is done or failed; while a rebuild
// runs it shows the progress of the copy being built (NAME__next) on w.
func waitForRequest(ctx context.Context, sink *pgsink.Sink, id int64, w io.Writer) (pgsink.RequestState, error) {
	var bar *progress
	var total int64 = -1
	defer func() {
		if bar != nil {
			bar.done()
		}
	}()
	for {
		st, err := sink.RequestStatus(ctx, id)
		if err != nil || (st.State != "pending" && st.State != "running") {
			return st, err
		}
		if st.State == "running" {
			if info, err := sink.Inspect(ctx, st.Projection+"__next"); err == nil {
				if bar == nil {
					bar = newProgress(w)
				}
				total = max(total, info.LagEvents)
				bar.show(total-info.LagEvents, total)
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("request %d is still %s (is the app running its projections?): %w", id, st.State, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// waitCaughtUp shows the rebuild's progress on w until the projection has
// no lag.
func waitCaughtUp(ctx context.Context, sink *pgsink.Sink, name string, w io.Writer) (pgsink.Info, error) {
	bar := newProgress(w)
	defer bar.done()
	var total int64 = -1
	for {
		info, err := sink.Inspect(ctx, name)
		if err != nil {
			return info, err
		}
		if total < info.LagEvents {
			total = info.LagEvents
		}
		bar.show(total-info.LagEvents, total)
		if info.LagEvents == 0 {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("projection %q still %d events behind: %w", name, info.LagEvents, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// progress draws a one-line bar with rate and ETA on a terminal, and a line
// every few seconds elsewhere.
type progress struct {
	w         io.Writer
	tty       bool
	start     time.Time
	lastPrint time.Time
	drawn     bool
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			tty = fi.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progress{w: w, tty: tty, start: time.Now()}
}

func (p *progress) show(done, total int64) {
	if total <= 0 {
		return
	}
	if !p.tty && time.Since(p.lastPrint) < 5*time.Second && done < total {
		return
	}
	p.lastPrint = time.Now()
	const width = 30
	filled := int(float64(width) * float64(done) / float64(total))
	elapsed := time.Since(p.start).Seconds()
	rate := float64(done) / max(elapsed, 0.001)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	line := fmt.Sprintf("[%s%s] %3.0f%% %d/%d events  %.0f events/s  ETA %s",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*float64(done)/float64(total), done, total, rate, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
