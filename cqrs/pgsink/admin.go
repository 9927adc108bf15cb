package pgsink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/pgstore"
)

// ErrUnknownProjection is returned for a projection name that has neither a
// checkpoint nor a reported status.
var ErrUnknownProjection = errors.New("unknown projection")

// ErrNoTables is returned by the inspection calls when the schema has no
// pgsink tables (or not the current ones).
var ErrNoTables = errors.New("no esgen projection tables")

// Info is what tools show about a projection: the common
// [cqrs.ProjectionInfo], whose Parked counts the recorded parked events, and
// the requests not yet carried out.
type Info struct {
	cqrs.ProjectionInfo
	Pending []Pending `json:"pending,omitempty"`

	checkpoint es.Position
}

// Pending is a request not yet carried out.
type Pending struct {
	ID          int64     `json:"id"`
	Action      string    `json:"action"`
	RequestedAt time.Time `json:"requested_at"`
}

// RequestState is the outcome of a request.
type RequestState struct {
	ID         int64      `json:"id"`
	Projection string     `json:"projection"`
	Action     string     `json:"action"`
	State      string     `json:"state"` // pending, running (a rebuild), done or failed
	Error      string     `json:"error,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// checkTables returns ErrNoTables, explained, when the schema lacks them.
func (s *Sink) checkTables(ctx context.Context) error {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL`,
		s.q()+".projection_checkpoints", s.q()+".projection_status", s.q()+".events").Scan(&ok)
	if err != nil {
		return s.mapErr("look for the projection tables", err)
	}
	if !ok {
		return fmt.Errorf("pgsink: schema %q: %w (is this the app's database? the app creates them when it starts its projections, through pgsink.Migrate)", s.cfg.schema, ErrNoTables)
	}
	return nil
}

// Names returns the names of the projections with a checkpoint or a
// reported status, sorted.
func (s *Sink) Names(ctx context.Context) ([]string, error) {
	if err := s.checkTables(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT projection FROM `+s.q()+`.projection_checkpoints
UNION SELECT projection FROM `+s.q()+`.projection_status ORDER BY 1`)
	if err != nil {
		return nil, s.mapErr("list projections", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, s.mapErr("list projections", err)
}

// Inspect returns what is known about projection name, or an error
// matching ErrUnknownProjection.
func (s *Sink) Inspect(ctx context.Context, name string) (Info, error) {
	names, err := s.Names(ctx)
	if err != nil {
		return Info{}, err
	}
	if !slices.Contains(names, name) {
		return Info{}, unknown(name, names)
	}
	info := Info{ProjectionInfo: cqrs.ProjectionInfo{Name: name, State: string(cqrs.StateStopped)}}
	var c, p, handled *int64
	var reportedState, lastError, own *string
	err = s.pool.QueryRow(ctx, `SELECT c.commit_pos, c.prepare_pos, c.updated_at,
    st.state, st.event_types, st.handled, st.parked, st.last_error, st.last_error_at, st.owner, st.updated_at,
    (SELECT count(*) FROM `+s.q()+`.projection_parked pk WHERE pk.projection = $1)
FROM (SELECT $1::text AS projection) n
LEFT JOIN `+s.q()+`.projection_checkpoints c USING (projection)
LEFT JOIN `+s.q()+`.projection_status st USING (projection)`, name).Scan(
		&c, &p, &info.CheckpointAt, &reportedState, &info.EventTypes, &handled, new(*int64),
		&lastError, &info.ErrorAt, &own, &info.ReportedAt, &info.Parked)
	if err != nil {
		return Info{}, s.mapErr(fmt.Sprintf("inspect projection %q", name), err)
	}
	if handled != nil {
		info.Handled, info.LastError, info.Owner = *handled, *lastError, *own
	}
	if c != nil {
		info.checkpoint = es.Position{Commit: uint64(*c), Prepare: uint64(*p)}
	}
	info.Checkpoint = info.checkpoint.String()
	if reportedState != nil {
		info.State = *reportedState
		if info.ReportedAt != nil {
			info.State = cqrs.ShownState(info.State, *info.ReportedAt)
		}
	}
	// A rebuild keeps the next version's checkpoint under NAME__next from
	// its start until the swap; a cancelled one keeps it to resume.
	var nc, np int64
	switch err := s.pool.QueryRow(ctx, `SELECT commit_pos, prepare_pos FROM `+s.q()+`.projection_checkpoints WHERE projection = $1`,
		name+nextSuffix).Scan(&nc, &np); {
	case err == nil:
		info.State = string(cqrs.StateRebuilding)
		info.RebuildCheckpoint = es.Position{Commit: uint64(nc), Prepare: uint64(np)}.String()
	case !errors.Is(err, pgx.ErrNoRows):
		return Info{}, s.mapErr(fmt.Sprintf("inspect the rebuild of projection %q", name), err)
	}
	store, err := pgstore.New(s.pool, pgstore.WithSchema(s.cfg.schema), pgstore.WithNotify(false), pgstore.WithLogger(s.cfg.logger))
	if err != nil {
		return Info{}, err
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		return Info{}, err
	}
	info.Head = head.String()
	lag, oldest, err := store.Lag(ctx, info.checkpoint, info.EventTypes)
	if err != nil {
		return Info{}, fmt.Errorf("pgsink: count the lag of projection %q: %w", name, err)
	}
	info.LagEvents = lag
	if !oldest.IsZero() {
		info.LagSeconds = time.Since(oldest).Seconds()
	}
	rows, err := s.pool.Query(ctx, `SELECT id, action, requested_at FROM `+s.q()+`.projection_requests
WHERE projection = $1 AND state IN ('pending', 'running') ORDER BY id`, name)
	if err != nil {
		return Info{}, s.mapErr(fmt.Sprintf("read requests of projection %q", name), err)
	}
	info.Pending, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Pending])
	if err != nil {
		return Info{}, s.mapErr(fmt.Sprintf("read requests of projection %q", name), err)
	}
	return info, nil
}

func unknown(name string, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("%w %q: no projection has run against this database yet", ErrUnknownProjection, name)
	}
	return fmt.Errorf("%w %q (known: %s)", ErrUnknownProjection, name, joinQuoted(names))
}

func joinQuoted(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", n)
	}
	return out
}

// Request asks the runner holding projection name to carry out action,
// and returns the request's ID. by names who asked, for the record.
func (s *Sink) Request(ctx context.Context, name string, action cqrs.RequestAction, from es.Position, by string) (int64, error) {
	if action != cqrs.ActionReset && action != cqrs.ActionReplay && action != ActionRebuild {
		return 0, fmt.Errorf("pgsink: unknown action %q", action)
	}
	names, err := s.Names(ctx)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(names, name) {
		return 0, unknown(name, names)
	}
	var id int64
	err = s.pool.QueryRow(ctx, `INSERT INTO `+s.q()+`.projection_requests (projection, action, from_commit, from_prepare, requested_by)
VALUES ($1, $2, $3, $4, $5) RETURNING id`, name, string(action), int64(from.Commit), int64(from.Prepare), by).Scan(&id)
	return id, s.mapErr(fmt.Sprintf("request %s of projection %q", action, name), err)
}

// RequestStatus returns the state of request id.
func (s *Sink) RequestStatus(ctx context.Context, id int64) (RequestState, error) {
	r := RequestState{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT projection, action, state, error, finished_at FROM `+s.q()+`.projection_requests WHERE id = $1`, id).
		Scan(&r.Projection, &r.Action, &r.State, &r.Error, &r.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("pgsink: no request %d", id)
	}
	return r, s.mapErr(fmt.Sprintf("read request %d", id), err)
}
