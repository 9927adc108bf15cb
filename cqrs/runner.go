package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// ErrCheckpointMoved is returned by a [Sink]'s Apply when the projection's
// stored checkpoint is already at or past the batch's first event: another
// runner applied it. The batch's effects are not kept. A [Runner] that gets
// it reads the checkpoint again and resumes from there.
var ErrCheckpointMoved = errors.New("cqrs: checkpoint moved by another runner")

// ErrLeaseLost is what a [Locker]'s lost context is cancelled with when the
// lease can no longer be proven held.
var ErrLeaseLost = errors.New("cqrs: projection lease lost")

// EventError is an error a [Sink] returns from Apply when it knows which
// event's effects failed, such as a sink that sends the handler's writes
// after the handler returned. The [Runner] treats it as that event's handler
// failing: retried, then parked.
type EventError struct {
	Event es.Event
	Err   error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event %d of stream %q (%s, position %s): %v", e.Event.Version, e.Event.StreamID, e.Event.Type, e.Event.Position, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// FailureAction says what a [Runner] does with an event whose handler keeps
// failing after every retry.
type FailureAction int

const (
	// StopOnFailure parks the event and stops the projection: Run returns a
	// *ParkedError and the checkpoint stays before the event, so the next
	// Run retries it. The default.
	StopOnFailure FailureAction = iota
	// SkipOnFailure parks the event, moves the checkpoint past it without
	// its effects, and carries on.
	SkipOnFailure
)

// String returns "stop" or "skip".
func (a FailureAction) String() string {
	if a == SkipOnFailure {
		return "skip"
	}
	return "stop"
}

// State is what a [Runner] is doing.
type State string

// The states a [Runner] reports.
const (
	StateIdle    State = "idle"    // Run not called yet
	StateWaiting State = "waiting" // waiting for the projection's lease
	StateRunning State = "running" // consuming the log
	StateParked  State = "parked"  // stopped at an event that keeps failing
	StateStopped State = "stopped" // Run returned
	// StateRebuilding is reported by sinks, not runners: a blue/green
	// rebuild of the projection is under way (or paused, to be resumed).
	StateRebuilding State = "rebuilding"
)

// OnParkParams describes a parked event.
type OnParkParams struct {
	// Projection is the projection's name.
	Projection string
	// Event is the event whose handler kept failing.
	Event es.Event
	// Err is the handler's last error.
	Err error
	// Attempts is how many times the handler was called for it.
	Attempts int
	// Skipped reports whether the projection moved past the event
	// ([SkipOnFailure]) rather than stopping at it.
	Skipped bool
}

// EventParker is an optional capability of a [Sink]: recording parked
// events beside the read model. When the event is skipped, the Runner calls
// Park from inside an Apply of that single event (with ctx carrying the
// sink's write handle), so that the record and the checkpoint that passes
// the event are kept together; when the projection stops, Park is called on
// its own.
type EventParker interface {
	Park(ctx context.Context, p OnParkParams) error
}

// Locker grants one runner at a time the right to run a projection.
type Locker interface {
	// Lock blocks until the caller holds projection's lease, or ctx is done.
	// The returned context is done when ctx is or when the lease is lost;
	// release gives the lease up and must be called exactly once.
	Lock(ctx context.Context, projection string) (held context.Context, release func(), err error)
}

// StatusRecorder is an optional capability of a [Sink]: keeping each
// runner's status where tools outside the app can read it (the esgen CLI).
// The Runner records its status when its state changes and every
// ControlInterval while it holds the projection.
type StatusRecorder interface {
	RecordStatus(ctx context.Context, s RunnerStatus) error
}

// RequestAction is an operation on a projection asked for from outside the
// app.
type RequestAction string

// The operations a [Controller] carries.
const (
	// Reset empties the read model (through the projection's [Resetter])
	// and starts again from the beginning of the log, in one transaction.
	ActionReset RequestAction = "reset"
	// Replay moves the checkpoint back to From (the start of the log when
	// zero) without emptying the read model: for idempotent projections.
	ActionReplay RequestAction = "replay"
)

// Request is an operation on a projection waiting to be carried out.
type Request struct {
	ID     int64
	Action RequestAction
	From   es.Position
}

// Controller is an optional capability of a [Sink]: a queue of requests
// (written by tools such as `esgen projections reset`) that the runner
// holding the projection carries out between batches, since only the app
// can run its projection's code.
type Controller interface {
	// NextRequest returns the oldest pending request for projection.
	NextRequest(ctx context.Context, projection string) (req Request, ok bool, err error)
	// Rewind carries req out: sets projection's checkpoint to req.From, runs
	// clear (when not nil) with the sink's write handle on its context, and
	// marks req done, all or nothing.
	Rewind(ctx context.Context, projection string, req Request, clear func(ctx context.Context) error) error
	// FailRequest marks req failed with err.
	FailRequest(ctx context.Context, projection string, req Request, err error) error
}

// Resetter is an optional capability of a [Projection]: emptying its read
// model, for [ActionReset]. Reset writes through the sink's handle on ctx
// (pgsink.Tx(ctx)), so that it commits with the checkpoint's reset.
type Resetter interface {
	Reset(ctx context.Context) error
}

// ParkedError is returned by [Runner.Run] when an event kept failing and
// the projection is configured to stop ([StopOnFailure]).
type ParkedError struct {
	Projection string
	Event      es.Event
	Err        error
}

func (e *ParkedError) Error() string {
	return fmt.Sprintf("projection %q stopped at event %d of stream %q (%s, position %s): %v",
		e.Projection, e.Event.Version, e.Event.StreamID, e.Event.Type, e.Event.Position, e.Err)
}

func (e *ParkedError) Unwrap() error { return e.Err }

// RunnerConfig configures a [Runner]. The zero value of each field means
// its default.
type RunnerConfig struct {
	// BatchSize is the most events applied in one Sink.Apply (default 500).
	BatchSize int
	// MaxWait is how long an incomplete batch waits for more events before
	// it is applied (default 100ms).
	MaxWait time.Duration
	// MaxAttempts is how many times a batch whose handler fails is tried
	// before the failing event is parked (default 5). Errors not raised by
	// the handler (the sink or the store being unreachable) are retried
	// without limit, since no event is to blame.
	MaxAttempts int
	// Backoff is the first retry delay (default 100ms); each retry doubles
	// it, with jitter, up to MaxBackoff (default 5s).
	Backoff, MaxBackoff time.Duration
	// OnFailure says whether a parked event stops the projection (the
	// default) or is skipped.
	OnFailure FailureAction
	// OnPark is called for every parked event, after the sink recorded it.
	OnPark func(ctx context.Context, p OnParkParams)
	// StopGrace is how long the batch in flight may take to commit after
	// Run's context is done (default 5s; negative: roll it back at once).
	StopGrace time.Duration
	// ScanAll subscribes to the whole log and filters by EventTypes in the
	// runner, so that the checkpoint also moves past events the projection
	// does not consume (at most every CheckpointInterval when only those
	// arrive). Without it the subscription carries the type filter and the
	// checkpoint stays at the last consumed event: a projection of rare
	// types then reads the log again from there after a restart and shows
	// a lag it does not have. Use it with stores that filter on the client
	// anyway (pgstore, memstore); leave it off for stores that filter on the
	// server (KurrentDB), where it costs bandwidth.
	ScanAll bool
	// CheckpointInterval bounds how often ScanAll commits a checkpoint for
	// non-matching events only (default 1s).
	CheckpointInterval time.Duration
	// ControlInterval is how often a running runner records its status
	// ([StatusRecorder]) and looks for requests ([Controller]), when its
	// sink offers them (default 1s).
	ControlInterval time.Duration
	// Locker, when set, makes Run hold the projection's lease while it
	// runs, so that copies of the app never run the projection at once.
	Locker Locker
	// Logger receives retries, parked events and lease changes (default
	// slog.Default()).
	Logger *slog.Logger
}

func (c *RunnerConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.MaxWait == 0 {
		c.MaxWait = 100 * time.Millisecond
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff == 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.StopGrace == 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.ControlInterval == 0 {
		c.ControlInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem with c, joined.
func (c *RunnerConfig) Validate() error {
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size must be positive, got %d", c.BatchSize))
	}
	if c.MaxWait < 0 || c.Backoff < 0 || c.MaxBackoff < 0 || c.CheckpointInterval < 0 || c.ControlInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative (except StopGrace)"))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts must be positive, got %d", c.MaxAttempts))
	}
	if c.OnFailure != StopOnFailure && c.OnFailure != SkipOnFailure {
		errs = append(errs, fmt.Errorf("unknown failure action %d", c.OnFailure))
	}
	return errors.Join(errs...)
}

// RunnerOption sets a field of [RunnerConfig].
type RunnerOption func(*RunnerConfig)

// WithRunnerConfig replaces the whole configuration (options after it still
// apply).
func WithRunnerConfig(c RunnerConfig) RunnerOption { return func(d *RunnerConfig) { *d = c } }

// WithBatch sets the batch size and the longest wait for a full batch.
func WithBatch(size int, maxWait time.Duration) RunnerOption {
	return func(c *RunnerConfig) { c.BatchSize, c.MaxWait = size, maxWait }
}

// WithRetry sets the attempts per failing event and the backoff bounds.
func WithRetry(attempts int, first, max time.Duration) RunnerOption {
	return func(c *RunnerConfig) { c.MaxAttempts, c.Backoff, c.MaxBackoff = attempts, first, max }
}

// WithOnFailure sets what happens to an event that keeps failing.
func WithOnFailure(a FailureAction) RunnerOption { return func(c *RunnerConfig) { c.OnFailure = a } }

// WithOnPark sets a callback for parked events.
func WithOnPark(f func(context.Context, OnParkParams)) RunnerOption {
	return func(c *RunnerConfig) { c.OnPark = f }
}

// WithLocker makes the runner hold a lease while it runs.
func WithLocker(l Locker) RunnerOption { return func(c *RunnerConfig) { c.Locker = l } }

// WithScanAll sets [RunnerConfig.ScanAll].
func WithScanAll(on bool) RunnerOption { return func(c *RunnerConfig) { c.ScanAll = on } }

// WithStopGrace sets [RunnerConfig.StopGrace].
func WithStopGrace(d time.Duration) RunnerOption { return func(c *RunnerConfig) { c.StopGrace = d } }

// WithRunnerLogger sets the logger.
func WithRunnerLogger(l *slog.Logger) RunnerOption { return func(c *RunnerConfig) { c.Logger = l } }

// RunnerStatus is a snapshot of a [Runner].
type RunnerStatus struct {
	Projection string
	// Owner names the process running it: host:pid.
	Owner string
	// EventTypes are the types the projection consumes.
	EventTypes []string
	State      State
	// Checkpoint is the position of the last committed batch.
	Checkpoint es.Position
	// CheckpointAt is when it was committed (zero before the first batch).
	CheckpointAt time.Time
	// Handled and Parked count events since the runner was made.
	Handled, Parked int64
	// LastError is the latest error, retried or not ("" when none since the
	// last successful batch), and LastErrorAt when it happened.
	LastError   string
	LastErrorAt time.Time
}

// Runner feeds one projection from the store's subscription into its sink,
// in batches, from the sink's checkpoint. Create it with [NewRunner] and
// call Run. A Runner is safe for concurrent use: Status may be called at any
// time; Run runs at most once at a time.
type Runner struct {
	store  es.Store
	sink   Sink
	proj   Projection
	cfg    RunnerConfig
	filter es.Filter

	running atomic.Bool
	mu      sync.Mutex
	status  RunnerStatus
}

// NewRunner returns a Runner of p from store into sink. It returns an error
// when the configuration is invalid or p has no name.
func NewRunner(store es.Store, sink Sink, p Projection, opts ...RunnerOption) (*Runner, error) {
	var cfg RunnerConfig
	for _, o := range opts {
		o(&cfg)
	}
	var errs []error
	if store == nil || sink == nil || p == nil {
		errs = append(errs, errors.New("store, sink and projection are required"))
	} else if p.Name() == "" {
		errs = append(errs, errors.New("projection has no name"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cqrs: new runner: %w", err)
	}
	cfg.setDefaults()
	r := &Runner{store: store, sink: sink, proj: p, cfg: cfg,
		filter: es.Filter{EventTypes: p.EventTypes()}}
	r.status = RunnerStatus{Projection: p.Name(), Owner: owner, EventTypes: p.EventTypes(), State: StateIdle}
	return r, nil
}

// Status returns a snapshot of the runner's progress.
func (r *Runner) Status() RunnerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Runner) update(f func(s *RunnerStatus)) {
	r.mu.Lock()
	f(&r.status)
	r.mu.Unlock()
}

func (r *Runner) setState(s State) { r.update(func(st *RunnerStatus) { st.State = s }) }

func (r *Runner) noteError(err error) {
	r.update(func(st *RunnerStatus) { st.LastError, st.LastErrorAt = err.Error(), time.Now() })
}

// stopError carries a *ParkedError out of consume when the failure action
// is Stop, to tell it from errors that are retried.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// Run consumes the log until ctx is done (then it returns nil, after the
// batch in flight committed or rolled back, see [RunnerConfig.StopGrace]) or
// an event is parked with [StopOnFailure] (then it returns a *ParkedError).
// Errors of the store or the sink are retried with backoff, not returned.
// With a [Locker], Run first waits for the lease, and goes back to waiting
// if it loses it. Calling Run while it runs returns an error.
func (r *Runner) Run(ctx context.Context) error {
	name := r.proj.Name()
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("cqrs: projection %q: runner already running", name)
	}
	defer r.running.Store(false)
	for {
		err := r.runHeld(ctx)
		if ctx.Err() != nil {
			r.setState(StateStopped)
			return nil
		}
		var se stopError
		if errors.As(err, &se) {
			return se.err
		}
		if err != nil {
			r.setState(StateStopped)
			return err
		}
		// The lease was lost: wait for it again.
	}
}

// RunUntil runs the projection like [Runner.Run] until its checkpoint
// reaches target, then stops it gracefully and returns nil. target is asked
// about every 10ms, so it may move (the checkpoint of a live projection, the
// head of the log); return a fixed position to run to a fixed point.
// progress, when not nil, is called about once a second with the
// checkpoint and the latest target. RunUntil returns the error of target, the
// *ParkedError of an event that stopped the projection, or ctx's error when
// ctx ends first.
func (r *Runner) RunUntil(ctx context.Context, target func(context.Context) (es.Position, error), progress func(checkpoint, target es.Position)) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastProgress time.Time
	for {
		select {
		case err := <-done:
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				err = fmt.Errorf("cqrs: projection %q stopped before reaching its target", r.proj.Name())
			}
			return err
		case <-tick.C:
		}
		to, err := target(runCtx)
		if err != nil {
			cancel()
			<-done
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("cqrs: projection %q: target: %w", r.proj.Name(), err)
		}
		st := r.Status()
		if progress != nil && time.Since(lastProgress) >= time.Second {
			progress(st.Checkpoint, to)
			lastProgress = time.Now()
		}
		if st.State == StateRunning && !st.Checkpoint.Before(to) {
			cancel()
			return <-done
		}
	}
}

// runHeld takes the lease (if any) and consumes until ctx is done, the
// lease is lost (nil), or an event stops the projection.
func (r *Runner) runHeld(ctx context.Context) error {
	name := r.proj.Name()
	work := ctx
	if r.cfg.Locker != nil {
		r.setState(StateWaiting)
		held, release, err := r.cfg.Locker.Lock(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("cqrs: projection %q: take lease: %w", name, err)
		}
		defer release()
		r.cfg.Logger.Info("cqrs: projection lease taken", "projection", name)
		work = held
	}
	r.setState(StateRunning)
	r.report(ctx)
	for attempt := 0; ; attempt++ {
		err := r.consume(ctx, work)
		if work.Err() != nil {
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("cqrs: projection lease lost; stopping until it is taken again", "projection", name)
				r.noteError(ErrLeaseLost)
				r.setState(StateWaiting)
			} else {
				r.setState(StateStopped)
				r.report(ctx)
			}
			return nil
		}
		var se stopError
		if errors.As(err, &se) {
			r.setState(StateParked)
			r.report(ctx)
			return err
		}
		if errors.Is(err, errRewound) {
			attempt = 0
			continue
		}
		if errors.Is(err, ErrCheckpointMoved) {
			r.cfg.Logger.Warn("cqrs: checkpoint moved by another runner; resuming from it", "projection", name)
			attempt = 0
			continue
		}
		r.noteError(err)
		r.cfg.Logger.Warn("cqrs: projection failed; retrying", "projection", name, "error", err)
		if !r.sleep(work, attempt) {
			return nil
		}
	}
}

// errRewound ends consume after a request moved the checkpoint.
var errRewound = errors.New("cqrs: checkpoint rewound by a request")

// report records the status, if the sink keeps it; failures are logged.
func (r *Runner) report(ctx context.Context) {
	rec, ok := r.sink.(StatusRecorder)
	if !ok {
		return
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := rec.RecordStatus(c, r.Status()); err != nil {
		r.cfg.Logger.Warn("cqrs: record projection status", "projection", r.proj.Name(), "error", err)
	}
}

// serveRequest carries out the oldest pending request, if the sink has a
// queue. It returns errRewound when it moved the checkpoint.
func (r *Runner) serveRequest(ctx context.Context) error {
	ctl, ok := r.sink.(Controller)
	if !ok {
		return nil
	}
	name := r.proj.Name()
	req, ok, err := ctl.NextRequest(ctx, name)
	if err != nil || !ok {
		return err
	}
	var clear func(context.Context) error
	switch req.Action {
	case ActionReplay:
	case ActionReset:
		rs, ok := r.proj.(Resetter)
		if !ok {
			ferr := fmt.Errorf("projection %q cannot be reset: it does not implement cqrs.Resetter (replay it instead, if it is idempotent)", name)
			r.cfg.Logger.Warn("cqrs: request refused", "projection", name, "request", req.ID, "error", ferr)
			return ctl.FailRequest(ctx, name, req, ferr)
		}
		clear = rs.Reset
	default:
		return ctl.FailRequest(ctx, name, req, fmt.Errorf("unknown action %q", req.Action))
	}
	if err := ctl.Rewind(ctx, name, req, clear); err != nil {
		if ctx.Err() == nil {
			_ = ctl.FailRequest(ctx, name, req, err)
		}
		return err
	}
	r.cfg.Logger.Info("cqrs: projection rewound", "projection", name, "action", string(req.Action), "to", req.From.String(), "request", req.ID)
	r.update(func(s *RunnerStatus) { s.Checkpoint, s.CheckpointAt = req.From, time.Now() })
	return errRewound
}

// sleep waits the backoff for the attempt'th retry; false if ctx ended.
func (r *Runner) sleep(ctx context.Context, attempt int) bool {
	d := r.cfg.Backoff << min(attempt, 20)
	if d <= 0 || d > r.cfg.MaxBackoff {
		d = r.cfg.MaxBackoff
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type item struct {
	e   es.Event
	err error
}

// consume subscribes from the sink's checkpoint and applies batches until
// work is done or an error ends the subscription. stop is Run's own context,
// which starts the stop grace period; work ends also when the lease is lost.
func (r *Runner) consume(stop, work context.Context) error {
	name := r.proj.Name()
	if err := r.serveRequest(work); err != nil {
		if errors.Is(err, errRewound) {
			return err
		}
		return fmt.Errorf("cqrs: projection %q: serve request: %w", name, err)
	}
	cp, err := r.sink.Checkpoint(work, name)
	if err != nil {
		return fmt.Errorf("cqrs: projection %q: read checkpoint: %w", name, err)
	}
	r.update(func(s *RunnerStatus) { s.Checkpoint = cp })

	subCtx, cancel := context.WithCancel(work)
	filter := r.filter
	if r.cfg.ScanAll {
		filter = es.Filter{}
	}
	ch := make(chan item, r.cfg.BatchSize)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ch)
		for e, err := range r.store.Subscribe(subCtx, cp, filter) {
			select {
			case ch <- item{e, err}:
			case <-subCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		for range ch {
		}
		wg.Wait()
	}()

	batch := make([]es.Event, 0, r.cfg.BatchSize+1)
	var (
		tail    es.Event // latest non-matching event after batch's last (ScanAll)
		hasTail bool
		timer   = time.NewTimer(time.Hour)
		timing  bool
	)
	timer.Stop()
	defer timer.Stop()
	control := time.NewTicker(r.cfg.ControlInterval)
	defer control.Stop()
	lastCommit := time.Now()
	flush := func() error {
		if err := stop.Err(); err != nil {
			// Stopping: the grace period is for a batch in flight, not
			// for starting another.
			return err
		}
		if hasTail {
			batch = append(batch, tail)
			hasTail = false
		}
		if len(batch) == 0 {
			return nil
		}
		err := r.apply(stop, work, batch)
		if err == nil {
			lastCommit = time.Now()
		}
		batch = batch[:0]
		if timing {
			timer.Stop()
			timing = false
		}
		return err
	}
	for {
		select {
		case <-work.Done():
			return work.Err()
		case it, ok := <-ch:
			if !ok {
				return fmt.Errorf("cqrs: projection %q: subscription ended", name)
			}
			if it.err != nil {
				if work.Err() != nil {
					return work.Err()
				}
				return fmt.Errorf("cqrs: projection %q: subscribe: %w", name, it.err)
			}
			if r.filter.Match(&it.e) {
				batch = append(batch, it.e)
				hasTail = false
				if len(batch) == 1 {
					// A tail alone may have set a longer timer.
					timer.Stop()
					timer.Reset(r.cfg.MaxWait)
					timing = true
				}
			} else {
				tail, hasTail = it.e, true
				if !timing {
					timer.Reset(max(r.cfg.MaxWait, r.cfg.CheckpointInterval-time.Since(lastCommit)))
					timing = true
				}
			}
			if len(batch) >= r.cfg.BatchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-timer.C:
			timing = false
			if err := flush(); err != nil {
				return err
			}
		case <-control.C:
			r.report(work)
			if _, ok := r.sink.(Controller); ok {
				if err := flush(); err != nil {
					return err
				}
				if err := r.serveRequest(work); err != nil {
					if errors.Is(err, errRewound) {
						return err
					}
					return fmt.Errorf("cqrs: projection %q: serve request: %w", name, err)
				}
			}
		}
	}
}

// apply applies batch, retrying, parking events that keep failing.
func (r *Runner) apply(stop, work context.Context, batch []es.Event) error {
	for len(batch) > 0 {
		idx, attempts, err := r.tryApply(stop, work, batch)
		if err == nil {
			return nil
		}
		if idx < 0 {
			return err
		}
		if idx > 0 {
			// The events before the culprit may be fine on their own.
			if err := r.apply(stop, work, batch[:idx]); err != nil {
				return err
			}
		}
		if err := r.park(stop, work, batch[idx], attempts, err); err != nil {
			return err
		}
		batch = batch[idx+1:]
	}
	return nil
}

// applyContext is work, but once stop is done it is cancelled only after
// the grace period, so that the batch in flight can commit.
func (r *Runner) applyContext(stop, work context.Context) (context.Context, context.CancelFunc) {
	if r.cfg.StopGrace < 0 {
		return context.WithCancel(work)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(work))
	var graceTimer atomic.Pointer[time.Timer]
	stopStop := context.AfterFunc(stop, func() {
		graceTimer.Store(time.AfterFunc(r.cfg.StopGrace, cancel))
	})
	// Losing the lease (work done while stop is not) cancels at once.
	stopWork := context.AfterFunc(work, func() {
		if stop.Err() == nil {
			cancel()
		}
	})
	return ctx, func() {
		stopStop()
		stopWork()
		if t := graceTimer.Load(); t != nil {
			t.Stop()
		}
		cancel()
	}
}

// tryApply applies batch with retries. On a handler error that persists
// after MaxAttempts it returns the index of the failing event; for other
// errors idx is -1 (and they are retried until work ends, except
// ErrCheckpointMoved, returned at once).
func (r *Runner) tryApply(stop, work context.Context, batch []es.Event) (idx, attempts int, err error) {
	name := r.proj.Name()
	for attempt := 0; ; attempt++ {
		failed := -1
		i := 0
		handle := func(ctx context.Context, rec es.Event) error {
			defer func() { i++ }()
			if !r.filter.Match(&rec) {
				return nil
			}
			if err := r.proj.Handle(ctx, rec); err != nil {
				failed = i
				return err
			}
			return nil
		}
		ctx, cancel := r.applyContext(stop, work)
		err = r.sink.Apply(ctx, name, batch, handle)
		cancel()
		if err == nil {
			last := batch[len(batch)-1].Position
			n := int64(0)
			for k := range batch {
				if r.filter.Match(&batch[k]) {
					n++
				}
			}
			r.update(func(s *RunnerStatus) {
				s.Checkpoint, s.CheckpointAt = last, time.Now()
				s.Handled += n
				s.LastError = ""
			})
			return -1, attempt + 1, nil
		}
		if errors.Is(err, ErrCheckpointMoved) || work.Err() != nil {
			return -1, attempt + 1, err
		}
		r.noteError(err)
		// A sink that names the event (a queued write that failed) knows
		// better than the handler call that happened to be running.
		var ee *EventError
		if errors.As(err, &ee) {
			for k := range batch {
				if batch[k].Position == ee.Event.Position {
					failed = k
					break
				}
			}
		}
		if failed >= 0 && attempt+1 >= r.cfg.MaxAttempts {
			return failed, attempt + 1, err
		}
		r.cfg.Logger.Warn("cqrs: projection batch failed; retrying", "projection", name,
			"attempt", attempt+1, "events", len(batch), "error", err)
		if !r.sleep(work, attempt) {
			return -1, attempt + 1, err
		}
	}
}

// park records a poison event and then stops or skips it.
func (r *Runner) park(stop, work context.Context, e es.Event, attempts int, cause error) error {
	name := r.proj.Name()
	p := OnParkParams{Projection: name, Event: e, Err: cause, Attempts: attempts, Skipped: r.cfg.OnFailure == SkipOnFailure}
	parker, _ := r.sink.(EventParker)
	r.noteError(fmt.Errorf("event %d of stream %q parked: %w", e.Version, e.StreamID, cause))
	r.cfg.Logger.Error("cqrs: event parked", "projection", name, "stream", e.StreamID, "version", e.Version,
		"type", e.Type, "position", e.Position.String(), "action", r.cfg.OnFailure.String(), "error", cause)
	if p.Skipped {
		// Record the event and move the checkpoint past it together.
		for attempt := 0; ; attempt++ {
			ctx, cancel := r.applyContext(stop, work)
			err := r.sink.Apply(ctx, name, []es.Event{e}, func(ctx context.Context, _ es.Event) error {
				if parker != nil {
					return parker.Park(ctx, p)
				}
				return nil
			})
			cancel()
			if err == nil {
				break
			}
			if errors.Is(err, ErrCheckpointMoved) {
				return err
			}
			r.noteError(err)
			if !r.sleep(work, attempt) {
				return err
			}
		}
		r.update(func(s *RunnerStatus) { s.Checkpoint, s.CheckpointAt = e.Position, time.Now(); s.Parked++ })
		if r.cfg.OnPark != nil {
			r.cfg.OnPark(work, p)
		}
		return nil
	}
	if parker != nil {
		if err := parker.Park(work, p); err != nil {
			r.cfg.Logger.Error("cqrs: record parked event", "projection", name, "error", err)
		}
	}
	r.update(func(s *RunnerStatus) { s.Parked++ })
	if r.cfg.OnPark != nil {
		r.cfg.OnPark(work, p)
	}
	return stopError{&ParkedError{Projection: name, Event: e, Err: cause}}
}
