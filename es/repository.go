package es

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
)

// Aggregate is what a [Repository] needs to know about an aggregate. The
// XxxAggregate types that esgen generates implement it, with S the state
// message, C the aggregate's command interface and E its event interface.
type Aggregate[S, C, E proto.Message] interface {
	Name() string
	StreamName(id string) string
	NewState() S
	SnapshotEvery() int
	StateFingerprint() string
	CommandTypes() []string
	EventTypes() []string
	CommandID(cmd C) (string, error)
	Creates(cmd C) bool
	Decide(ctx context.Context, state S, cmd C) ([]E, error)
	Evolve(state S, event E) error
	EncodeEvent(event E) (EventData, error)
	DecodeEvent(rec Event) (E, error)
}

// ErrAlreadyExists is returned when a creating command targets an aggregate
// whose stream already has events.
var ErrAlreadyExists = errors.New("es: aggregate already exists")

// Result is the outcome of a command handled by a [Repository].
type Result[E any] struct {
	// Stream is the aggregate's stream.
	Stream string
	// Version is the stream's version after the command.
	Version int64
	// Position is the global position of the last event recorded; zero when
	// the command recorded no event.
	Position Position
	// Events are the events the command recorded.
	Events []E
	// Duplicate reports that the command's ID had been handled before: the
	// events are those recorded then, and nothing was appended now.
	Duplicate bool
}

// UnknownEvents says what loading does with an event whose type the
// aggregate does not declare (after upcasting).
type UnknownEvents int

const (
	// FailOnUnknown makes loading fail with an error naming the stream,
	// version and type. The default.
	FailOnUnknown UnknownEvents = iota
	// SkipUnknown skips such events with a warning, for forward
	// compatibility with events written by a newer version of the app.
	SkipUnknown
)

// RepositoryOption configures a [Repository].
type RepositoryOption func(*repoConfig)

type repoConfig struct {
	snapshots     SnapshotStore
	snapshotEvery int // -1: the aggregate's own policy
	maxAttempts   int
	backoff       time.Duration
	maxBackoff    time.Duration
	upcasters     *Upcasters
	unknown       UnknownEvents
	logger        *slog.Logger
}

// WithSnapshots stores and loads snapshots in ss.
func WithSnapshots(ss SnapshotStore) RepositoryOption {
	return func(c *repoConfig) { c.snapshots = ss }
}

// WithSnapshotEvery overrides the aggregate's snapshot_every: a snapshot is
// saved each time a command takes the stream across a multiple of n events.
// 0 turns snapshots off.
func WithSnapshotEvery(n int) RepositoryOption { return func(c *repoConfig) { c.snapshotEvery = n } }

// WithMaxAttempts sets how many times a command is decided when appends
// conflict with concurrent writers (default 3).
func WithMaxAttempts(n int) RepositoryOption { return func(c *repoConfig) { c.maxAttempts = n } }

// WithRetryBackoff sets the base and the cap of the jittered exponential
// wait between attempts (default 2ms and 100ms).
func WithRetryBackoff(base, max time.Duration) RepositoryOption {
	return func(c *repoConfig) { c.backoff, c.maxBackoff = base, max }
}

// WithUpcasters upcasts stored events before they are decoded. The chains
// must end in the aggregate's event types.
func WithUpcasters(u *Upcasters) RepositoryOption { return func(c *repoConfig) { c.upcasters = u } }

// WithUnknownEvents sets what loading does with undeclared event types.
func WithUnknownEvents(p UnknownEvents) RepositoryOption {
	return func(c *repoConfig) { c.unknown = p }
}

// WithRepositoryLogger sets the logger for snapshot failures and skipped
// events (default slog.Default()).
func WithRepositoryLogger(l *slog.Logger) RepositoryOption {
	return func(c *repoConfig) { c.logger = l }
}

// Repository loads aggregates from a Store and handles their commands:
// load (snapshot, then the events after it), decide, append expecting the
// loaded version, and on a conflict load and decide again. It is safe for
// concurrent use.
type Repository[S, C, E proto.Message] struct {
	store   Store
	agg     Aggregate[S, C, E]
	cfg     repoConfig
	known   map[string]bool
	every   int
	snapErr atomic.Int64
	// loader is set when the store reads snapshot and events in one round
	// trip, and is also the snapshot store (or there is none).
	loader StreamLoader
}

// NewRepository returns a repository for agg's aggregates in store. It
// checks the options and that the upcaster chains end in agg's event types.
func NewRepository[S, C, E proto.Message](store Store, agg Aggregate[S, C, E], opts ...RepositoryOption) (*Repository[S, C, E], error) {
	cfg := repoConfig{snapshotEvery: -1, maxAttempts: 3, backoff: 2 * time.Millisecond, maxBackoff: 100 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("store is nil"))
	}
	if cfg.maxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts must be at least 1, got %d", cfg.maxAttempts))
	}
	if cfg.backoff < 0 || cfg.maxBackoff < cfg.backoff {
		errs = append(errs, fmt.Errorf("retry backoff must satisfy 0 <= base <= max, got %s and %s", cfg.backoff, cfg.maxBackoff))
	}
	if cfg.snapshotEvery < -1 {
		errs = append(errs, fmt.Errorf("snapshot interval must be 0 (off) or positive, got %d", cfg.snapshotEvery))
	}
	if err := cfg.upcasters.Validate(agg.EventTypes()); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("repository of %s: %w", agg.Name(), err)
	}
	r := &Repository[S, C, E]{store: store, agg: agg, cfg: cfg, known: map[string]bool{}, every: cfg.snapshotEvery}
	for _, t := range agg.EventTypes() {
		r.known[t] = true
	}
	if r.every < 0 {
		r.every = agg.SnapshotEvery()
	}
	if cfg.snapshots == nil {
		r.every = 0
	}
	if loader, ok := store.(StreamLoader); ok && (cfg.snapshots == nil || any(cfg.snapshots) == any(store)) {
		r.loader = loader
	}
	return r, nil
}

// SnapshotFailures returns how many snapshot loads and saves have failed.
// Such failures never fail a command; they are logged and counted here.
func (r *Repository[S, C, E]) SnapshotFailures() int64 { return r.snapErr.Load() }

// Load returns the current state of the aggregate with the given ID and
// its version; version 0 and a new state when it has no events.
func (r *Repository[S, C, E]) Load(ctx context.Context, id string) (S, int64, error) {
	return r.load(ctx, r.agg.StreamName(id))
}

func (r *Repository[S, C, E]) load(ctx context.Context, stream string) (S, int64, error) {
	if r.loader != nil {
		return r.loadInOne(ctx, r.loader, stream)
	}
	state, version, stale, err := r.fromSnapshot(ctx, stream)
	if err != nil {
		return state, 0, err
	}
	for rec, err := range r.store.ReadStream(ctx, stream, version+1, Forward, 0) {
		if errors.Is(err, ErrStreamNotFound) {
			return r.agg.NewState(), 0, nil // deleted since the snapshot, or never written
		}
		if err != nil {
			return state, 0, fmt.Errorf("load %s: %w", stream, err)
		}
		if err := r.apply(state, rec); err != nil {
			return state, 0, err
		}
		version = rec.Version
	}
	r.replaceStale(ctx, stream, state, version, stale)
	return state, version, nil
}

// loadInOne loads through a store that reads the snapshot and the events
// after it in one round trip. A snapshot of another schema costs a second
// read of the whole stream.
func (r *Repository[S, C, E]) loadInOne(ctx context.Context, loader StreamLoader, stream string) (S, int64, error) {
	loaded, err := loader.LoadStream(ctx, stream, r.cfg.snapshots != nil)
	if err != nil {
		return r.agg.NewState(), 0, fmt.Errorf("load %s: %w", stream, err)
	}
	state, version, stale := r.agg.NewState(), int64(0), false
	if loaded.HasSnapshot {
		if state, version, stale, err = r.seed(stream, loaded.Snapshot); err != nil {
			return state, 0, err
		}
		if stale {
			if loaded, err = loader.LoadStream(ctx, stream, false); err != nil {
				return state, 0, fmt.Errorf("load %s: %w", stream, err)
			}
		}
	}
	for _, rec := range loaded.Events {
		if err := r.apply(state, rec); err != nil {
			return state, 0, err
		}
		version = rec.Version
	}
	r.replaceStale(ctx, stream, state, version, stale)
	return state, version, nil
}

// fromSnapshot starts from the stream's snapshot when there is a usable
// one. stale reports a snapshot of another schema, to be replaced.
func (r *Repository[S, C, E]) fromSnapshot(ctx context.Context, stream string) (state S, version int64, stale bool, err error) {
	state = r.agg.NewState()
	if r.cfg.snapshots == nil {
		return state, 0, false, nil
	}
	snap, err := r.cfg.snapshots.LoadSnapshot(ctx, stream)
	switch {
	case errors.Is(err, ErrSnapshotNotFound):
		return state, 0, false, nil
	case err != nil:
		if ctx.Err() != nil {
			return state, 0, false, fmt.Errorf("load snapshot of %s: %w", stream, ctx.Err())
		}
		r.snapErr.Add(1)
		r.cfg.logger.Warn("es: load snapshot failed; replaying the whole stream", "stream", stream, "error", err)
		return state, 0, false, nil
	}
	return r.seed(stream, snap)
}

// seed returns the state a snapshot holds and its version. A snapshot taken
// under another state schema is never decoded: seed returns a new state,
// version 0 and stale, so that the caller replays the stream and replaces
// the snapshot.
func (r *Repository[S, C, E]) seed(stream string, snap Snapshot) (state S, version int64, stale bool, err error) {
	state = r.agg.NewState()
	if snap.Fingerprint != r.agg.StateFingerprint() {
		r.cfg.logger.Info("es: ignoring a snapshot taken under another state schema", "stream", stream,
			"version", snap.Version, "snapshot_fingerprint", snap.Fingerprint, "fingerprint", r.agg.StateFingerprint())
		return state, 0, true, nil
	}
	if err := proto.Unmarshal(snap.Data, state); err != nil {
		return state, 0, false, fmt.Errorf("corrupt snapshot of stream %q at version %d (%s): %w", stream, snap.Version, r.agg.Name(), err)
	}
	return state, snap.Version, false, nil
}

// replaceStale saves a snapshot in place of one taken under another schema,
// once the stream is long enough to be snapshotted.
func (r *Repository[S, C, E]) replaceStale(ctx context.Context, stream string, state S, version int64, stale bool) {
	if stale && r.every > 0 && version >= int64(r.every) {
		r.saveSnapshot(ctx, stream, state, version)
	}
}

// apply upcasts, decodes and evolves one stored event.
func (r *Repository[S, C, E]) apply(state S, rec Event) error {
	rec, err := r.cfg.upcasters.Upcast(rec)
	if err != nil {
		return err
	}
	if !r.known[rec.Type] {
		if r.cfg.unknown == SkipUnknown {
			r.cfg.logger.Warn("es: skipping an event type the aggregate does not declare",
				"stream", rec.StreamID, "version", rec.Version, "type", rec.Type, "aggregate", r.agg.Name())
			return nil
		}
		return fmt.Errorf("event %d of stream %q has type %q, which aggregate %s does not declare (upcast it, or load with es.SkipUnknown)",
			rec.Version, rec.StreamID, rec.Type, r.agg.Name())
	}
	event, err := r.agg.DecodeEvent(rec)
	if err != nil {
		return err
	}
	if err := r.agg.Evolve(state, event); err != nil {
		return fmt.Errorf("evolve event %d (%s) of stream %q: %w", rec.Version, rec.Type, rec.StreamID, err)
	}
	return nil
}

// Handle handles cmd: it loads the aggregate cmd targets, decides, and
// appends the decided events expecting the loaded version. When a
// concurrent writer got there first it loads and decides again, up to the
// configured attempts, then returns the *ConcurrencyError. A creating
// command on an existing aggregate returns an error matching
// [ErrAlreadyExists]; the Decider's errors are returned wrapped, matchable
// with errors.Is.
//
// The events carry the context's metadata ([ContextWithMetadata]); with a
// command ID in the context ([ContextWithCommandID]) they are also caused by
// it and the command is idempotent: handled again, it returns the original
// result with Duplicate set and appends nothing.
func (r *Repository[S, C, E]) Handle(ctx context.Context, cmd C) (Result[E], error) {
	id, err := r.agg.CommandID(cmd)
	if err != nil {
		return Result[E]{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	stream := r.agg.StreamName(id)
	cmdType := string(cmd.ProtoReflect().Descriptor().FullName())
	meta := MetadataFromContext(ctx)
	cmdID := CommandIDFromContext(ctx)
	if cmdID != "" {
		meta.CausationID = cmdID
		if res, ok, err := r.handled(ctx, stream, cmdID); ok || err != nil {
			return res, err
		}
	}
	creates := r.agg.Creates(cmd)
	for attempt := 1; ; attempt++ {
		state, version, err := r.load(ctx, stream)
		if err != nil {
			return Result[E]{}, fmt.Errorf("handle %s: %w", cmdType, err)
		}
		if creates && version > 0 {
			return Result[E]{}, fmt.Errorf("handle %s: %s %q (stream %q at version %d): %w", cmdType, r.agg.Name(), id, stream, version, ErrAlreadyExists)
		}
		events, err := r.agg.Decide(ctx, state, cmd)
		if err != nil {
			return Result[E]{}, fmt.Errorf("handle %s for %s: %w", cmdType, stream, err)
		}
		if len(events) == 0 {
			return Result[E]{Stream: stream, Version: version}, nil
		}
		data := make([]EventData, len(events))
		for i, e := range events {
			if data[i], err = r.agg.EncodeEvent(e); err != nil {
				return Result[E]{}, fmt.Errorf("handle %s for %s: %w", cmdType, stream, err)
			}
			data[i].Metadata = meta
			if cmdID != "" {
				data[i].ID = CommandEventID(stream, cmdID, i)
			}
		}
		res, err := r.store.Append(ctx, stream, Exact(version), data...)
		if errors.Is(err, ErrConcurrency) {
			if cmdID != "" {
				// A concurrent copy of this command may be what won.
				if res, ok, err := r.handled(ctx, stream, cmdID); ok || err != nil {
					return res, err
				}
			}
			if creates {
				return Result[E]{}, fmt.Errorf("handle %s: %s %q: %w", cmdType, r.agg.Name(), id, ErrAlreadyExists)
			}
			if attempt >= r.cfg.maxAttempts {
				return Result[E]{}, fmt.Errorf("handle %s for %s: gave up after %d attempts: %w", cmdType, stream, attempt, err)
			}
			if err := r.wait(ctx, attempt); err != nil {
				return Result[E]{}, fmt.Errorf("handle %s for %s: %w", cmdType, stream, err)
			}
			continue
		}
		if errors.Is(err, ErrDuplicateEventID) && cmdID != "" {
			return Result[E]{}, fmt.Errorf("handle %s for %s: command %q was already handled with a different outcome: %w", cmdType, stream, cmdID, err)
		}
		if err != nil {
			return Result[E]{}, fmt.Errorf("handle %s for %s: %w", cmdType, stream, err)
		}
		if r.every > 0 && res.Version/int64(r.every) > version/int64(r.every) {
			r.snapshotAfter(ctx, stream, state, events, res.Version)
		}
		return Result[E]{Stream: stream, Version: res.Version, Position: res.Position, Events: events}, nil
	}
}

// handled looks for the events of an earlier run of command cmdID. It
// needs a store that can find events by ID; with others, the deterministic
// event IDs still make the append idempotent.
func (r *Repository[S, C, E]) handled(ctx context.Context, stream, cmdID string) (Result[E], bool, error) {
	finder, ok := r.store.(EventFinder)
	if !ok {
		return Result[E]{}, false, nil
	}
	first, err := finder.FindEvent(ctx, CommandEventID(stream, cmdID, 0))
	if errors.Is(err, ErrEventNotFound) {
		return Result[E]{}, false, nil
	}
	if err != nil {
		return Result[E]{}, false, fmt.Errorf("look up command %q in %s: %w", cmdID, stream, err)
	}
	res := Result[E]{Stream: stream, Duplicate: true}
	i := 0
	for rec, err := range r.store.ReadStream(ctx, stream, first.Version, Forward, 0) {
		if err != nil {
			return Result[E]{}, false, fmt.Errorf("read the events of command %q in %s: %w", cmdID, stream, err)
		}
		if rec.ID != CommandEventID(stream, cmdID, i) {
			break
		}
		if rec, err = r.cfg.upcasters.Upcast(rec); err != nil {
			return Result[E]{}, false, err
		}
		e, err := r.agg.DecodeEvent(rec)
		if err != nil {
			return Result[E]{}, false, err
		}
		res.Events = append(res.Events, e)
		res.Version, res.Position = rec.Version, rec.Position
		i++
	}
	return res, i > 0, nil
}

// CommandEventID returns the ID of the i-th event that command cmdID
// records in stream: a name-based (version 5) UUID, so the same command
// always produces the same event IDs and a re-sent command is recognised.
func CommandEventID(stream, cmdID string, i int) ID {
	h := sha1.New()
	h.Write(commandNamespace[:])
	h.Write([]byte(stream))
	h.Write([]byte{0})
	h.Write([]byte(cmdID))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(i), 10))
	var id ID
	copy(id[:], h.Sum(nil))
	id[6] = (id[6] & 0x0f) | 0x50 // version 5
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 9562 variant
	return id
}

// commandNamespace is the UUID namespace of command event IDs.
var commandNamespace = MustParseID("5b0e6c1a-3f9d-4d8e-9a51-6f2b7c0e4d13")

func (r *Repository[S, C, E]) wait(ctx context.Context, attempt int) error {
	d := min(r.cfg.backoff<<(attempt-1), r.cfg.maxBackoff)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// snapshotAfter evolves the state loaded at one version by the events just
// appended and saves it as the snapshot at the new version.
func (r *Repository[S, C, E]) snapshotAfter(ctx context.Context, stream string, state S, events []E, version int64) {
	for _, e := range events {
		if err := r.agg.Evolve(state, e); err != nil {
			r.snapErr.Add(1)
			r.cfg.logger.Warn("es: snapshot skipped: evolving the appended events failed", "stream", stream, "version", version, "error", err)
			return
		}
	}
	r.saveSnapshot(ctx, stream, state, version)
}

func (r *Repository[S, C, E]) saveSnapshot(ctx context.Context, stream string, state S, version int64) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(state)
	if err == nil {
		err = r.cfg.snapshots.SaveSnapshot(ctx, Snapshot{
			Stream: stream, Version: version, Fingerprint: r.agg.StateFingerprint(),
			Data: data, RecordedAt: time.Now().UTC(),
		})
	}
	if err != nil {
		r.snapErr.Add(1)
		r.cfg.logger.Warn("es: save snapshot failed; the next load replays more events", "stream", stream, "version", version, "error", err)
	}
}

// CommandTypes returns the protobuf full names of the commands the
// repository's aggregate handles, for routing.
func (r *Repository[S, C, E]) CommandTypes() []string { return r.agg.CommandTypes() }
