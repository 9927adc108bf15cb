package essink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

// ErrUnavailable is returned (wrapped) by the Sink's calls while its circuit
// breaker is open: Elasticsearch failed often enough that the sink stopped
// calling it for a while. The error also matches circuitbreaker.ErrOpen.
// A projection runner should treat it as "pause and try again later".
var ErrUnavailable = errors.New("essink: elasticsearch unavailable")

// The indexes the Sink keeps its own documents in, unless options name
// others: checkpoints ([WithCheckpointIndex]), runners' status reports
// ([WithStatusIndex]) and parked events ([WithParkedIndex]).
const (
	DefaultCheckpointIndex = "esgen_checkpoints"
	DefaultStatusIndex     = "esgen_projection_status"
	DefaultParkedIndex     = "esgen_parked"
)

var _ cqrs.Sink = (*Sink)(nil)

// Sink is a [cqrs.Sink] that keeps read models in Elasticsearch. A
// projection's Handle stages document writes with [Index] and [Delete]; Apply
// sends the whole batch as one bulk request with external versions taken from
// the log, then stores the checkpoint.
//
// A Sink is safe for concurrent use, including Apply for several projections
// at once; they share one circuit breaker, as they share one cluster.
type Sink struct {
	client  *elasticsearch.Client
	cfg     config
	breaker circuitbreaker.CircuitBreaker[any]
}

type config struct {
	checkpointIndex string
	statusIndex     string
	parkedIndex     string
	version         VersionFunc
	packer          PositionPacker
	backoffBase     time.Duration
	backoffMax      time.Duration
	maxAttempts     int
	breakerFailures uint
	breakerDelay    time.Duration
	refresh         string
	logger          *slog.Logger
}

// Option configures a [Sink].
type Option func(*config)

// WithCheckpointIndex names the index that holds checkpoints, one document
// per projection (default [DefaultCheckpointIndex]).
func WithCheckpointIndex(name string) Option { return func(c *config) { c.checkpointIndex = name } }

// WithStatusIndex names the index that holds the runners' status reports,
// one document per projection (default [DefaultStatusIndex]).
func WithStatusIndex(name string) Option { return func(c *config) { c.statusIndex = name } }

// WithParkedIndex names the index that records parked events, one document
// per projection and event (default [DefaultParkedIndex]).
func WithParkedIndex(name string) Option { return func(c *config) { c.parkedIndex = name } }

// WithVersion sets how events map to external document versions (default:
// the event's packed log position, see [PositionPacker]).
func WithVersion(f VersionFunc) Option { return func(c *config) { c.version = f } }

// WithPrepareBits sets the width of Prepare in packed positions (default
// [DefaultPrepareBits]). It applies to checkpoint versions, and to document
// versions unless [WithVersion] replaces them. Changing it on a live
// projection changes every version: rebuild into new indexes.
func WithPrepareBits(n uint) Option {
	return func(c *config) { c.packer = PositionPacker{PrepareBits: n} }
}

// WithBackoff sets the delay before the first retry (base, default 100ms)
// and the most it grows to (max, default 10s). Each retry doubles the delay
// and picks at random in its upper half.
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, max }
}

// WithMaxAttempts bounds the requests one call makes (default 8) before it
// returns the last error.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithBreaker opens the circuit breaker after failures consecutive failed
// requests (default 5) and keeps it open for delay (default 30s); then one
// probe request is let through, and its outcome closes or reopens it.
func WithBreaker(failures uint, delay time.Duration) Option {
	return func(c *config) { c.breakerFailures, c.breakerDelay = failures, delay }
}

// WithRefresh sets the refresh parameter of bulk and checkpoint writes: ""
// (default: leave it to the index's refresh interval), "true" or "wait_for"
// (writes are searchable when Apply returns, at a cost).
func WithRefresh(policy string) Option { return func(c *config) { c.refresh = policy } }

// WithLogger sets where retries and breaker changes are logged (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// New returns a Sink writing through client. Configure the client with
// DisableRetry (or few retries): the sink retries itself, with backoff, and
// its breaker should see every failure.
func New(client *elasticsearch.Client, opts ...Option) (*Sink, error) {
	cfg := config{
		checkpointIndex: DefaultCheckpointIndex,
		statusIndex:     DefaultStatusIndex,
		parkedIndex:     DefaultParkedIndex,
		packer:          PositionPacker{PrepareBits: DefaultPrepareBits},
		backoffBase:     100 * time.Millisecond,
		backoffMax:      10 * time.Second,
		maxAttempts:     8,
		breakerFailures: 5,
		breakerDelay:    30 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.version == nil {
		cfg.version = cfg.packer.Version
	}
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("client is nil"))
	}
	if cfg.checkpointIndex == "" || cfg.statusIndex == "" || cfg.parkedIndex == "" {
		errs = append(errs, fmt.Errorf("checkpoint index %q, status index %q, parked index %q: none may be empty",
			cfg.checkpointIndex, cfg.statusIndex, cfg.parkedIndex))
	}
	if cfg.packer.PrepareBits < 1 || cfg.packer.PrepareBits > 62 {
		errs = append(errs, fmt.Errorf("prepare bits %d not in 1..62", cfg.packer.PrepareBits))
	}
	if cfg.backoffBase <= 0 || cfg.backoffMax < cfg.backoffBase {
		errs = append(errs, fmt.Errorf("backoff base %v and max %v: need 0 < base <= max", cfg.backoffBase, cfg.backoffMax))
	}
	if cfg.maxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d < 1", cfg.maxAttempts))
	}
	if cfg.breakerFailures < 1 || cfg.breakerDelay <= 0 {
		errs = append(errs, fmt.Errorf("breaker failures %d and delay %v: need both > 0", cfg.breakerFailures, cfg.breakerDelay))
	}
	switch cfg.refresh {
	case "", "true", "false", "wait_for":
	default:
		errs = append(errs, fmt.Errorf("refresh %q: want \"\", true, false or wait_for", cfg.refresh))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("essink: new sink: %w", err)
	}
	s := &Sink{client: client, cfg: cfg}
	s.breaker = circuitbreaker.Builder[any]().
		WithFailureThreshold(cfg.breakerFailures).
		WithSuccessThreshold(1).
		WithDelay(cfg.breakerDelay).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			cfg.logger.Warn("essink: circuit breaker", "from", e.OldState.String(), "to", e.NewState.String())
		}).
		Build()
	return s, nil
}

// BreakerState reports the circuit breaker's state: "closed", "open" or
// "half-open", for status pages.
func (s *Sink) BreakerState() string { return s.breaker.State().String() }

// Apply implements [cqrs.Sink]. It calls handle for every event with a
// context on which [Index] and [Delete] stage writes, each versioned by its
// event; sends them in one bulk request (retrying only the items that failed
// with 429 or 5xx); and, once every item is acknowledged, stores the
// position of the last event as the checkpoint.
//
// A write whose version is not above the stored document's (a 409 conflict)
// counts as already applied, so re-applying a batch is harmless. On error
// some writes may have been kept; the checkpoint was not moved. The error
// matches [ErrUnavailable] when the breaker is open, [ErrVersionRange] when an
// event's version does not fit, and wraps a [*cqrs.EventError] naming the
// event whose write Elasticsearch rejected for good (a mapping error, say),
// itself wrapping the [*ItemError]s, so a runner can park that event.
func (s *Sink) Apply(ctx context.Context, projection string, batch []es.Event, handle func(ctx context.Context, rec es.Event) error) error {
	if len(batch) == 0 {
		return nil
	}
	last := batch[len(batch)-1].Position
	cpVersion, err := s.cfg.packer.Pack(last)
	if err != nil {
		return fmt.Errorf("essink: checkpoint of projection %q: %w", projection, err)
	}
	b := &opBatch{}
	hctx := context.WithValue(ctx, batchKey{}, b)
	for _, rec := range batch {
		v, err := s.cfg.version(rec)
		if err != nil {
			return fmt.Errorf("essink: projection %q: version of event %s at %s: %w", projection, rec.ID, rec.Position, err)
		}
		b.event, b.version = rec, v
		if err := handle(hctx, rec); err != nil {
			return fmt.Errorf("essink: projection %q: handle %s event %s at %s: %w", projection, rec.Type, rec.ID, rec.Position, err)
		}
	}
	if len(b.ops) > 0 {
		pending := b.ops
		err := s.call(ctx, fmt.Sprintf("bulk of %d writes for projection %q", len(b.ops), projection), func(ctx context.Context) error {
			failed, err := s.bulk(ctx, pending)
			if err != nil {
				return err
			}
			if len(failed) > 0 {
				pending = pending[:0:0]
				for _, f := range failed {
					pending = append(pending, f.op)
				}
				return retryable{fmt.Errorf("%d of the writes failed, first %s %q in %q: status %d",
					len(failed), failed[0].op.action, failed[0].op.id, failed[0].op.index, failed[0].status)}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.storeCheckpoint(ctx, projection, last, cpVersion)
}

// Checkpoint implements [cqrs.Sink]: it reads projection's checkpoint
// document, returning the zero Position when there is none (or no
// checkpoint index yet).
func (s *Sink) Checkpoint(ctx context.Context, projection string) (es.Position, error) {
	var doc *checkpointDoc
	if err := readDoc(ctx, s, fmt.Sprintf("read checkpoint of projection %q", projection), s.cfg.checkpointIndex, projection, &doc); err != nil || doc == nil {
		return es.Position{}, err
	}
	pos, err := doc.position()
	if err != nil {
		return es.Position{}, fmt.Errorf("essink: checkpoint of projection %q: %w", projection, err)
	}
	return pos, nil
}

type checkpointDoc struct {
	Projection string    `json:"projection"`
	Commit     string    `json:"commit"`
	Prepare    string    `json:"prepare"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func (d checkpointDoc) position() (es.Position, error) {
	c, err := strconv.ParseUint(d.Commit, 10, 64)
	if err != nil {
		return es.Position{}, fmt.Errorf("checkpoint commit %q: %w", d.Commit, err)
	}
	p, err := strconv.ParseUint(d.Prepare, 10, 64)
	if err != nil {
		return es.Position{}, fmt.Errorf("checkpoint prepare %q: %w", d.Prepare, err)
	}
	return es.Position{Commit: c, Prepare: p}, nil
}

// storeCheckpoint writes pos as projection's checkpoint with the external
// version v, so that a late writer of an older checkpoint is refused.
func (s *Sink) storeCheckpoint(ctx context.Context, projection string, pos es.Position, v int64) error {
	// Positions are stored as decimal strings: both halves are uint64, which
	// neither JSON numbers in other readers nor Elasticsearch longs hold.
	body, err := json.Marshal(checkpointDoc{
		Projection: projection,
		Commit:     strconv.FormatUint(pos.Commit, 10),
		Prepare:    strconv.FormatUint(pos.Prepare, 10),
		UpdatedAt:  time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("essink: encode checkpoint of projection %q: %w", projection, err)
	}
	return s.putDoc(ctx, fmt.Sprintf("store checkpoint %s of projection %q", pos, projection), s.cfg.checkpointIndex, projection, body, v)
}

// putDoc writes document id of index, with the external version v (a
// stale write, answered 409, counts as done: a newer one is stored), or
// internally versioned when v is negative.
func (s *Sink) putDoc(ctx context.Context, what, index, id string, body []byte, v int64) error {
	return s.call(ctx, what, func(ctx context.Context) error {
		opts := []func(*esapi.IndexRequest){
			s.client.Index.WithContext(ctx),
			s.client.Index.WithDocumentID(id),
		}
		if v >= 0 {
			opts = append(opts, s.client.Index.WithVersion(int(v)), s.client.Index.WithVersionType("external"))
		}
		if s.cfg.refresh != "" {
			opts = append(opts, s.client.Index.WithRefresh(s.cfg.refresh))
		}
		res, err := s.client.Index(index, bytes.NewReader(body), opts...)
		if err != nil {
			return transportError(ctx, err)
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusConflict && v >= 0 {
			return nil
		}
		return statusError(res.StatusCode, res.Body)
	})
}

// retryable marks an error worth another attempt: the cluster was
// unreachable, overloaded (429) or failing (5xx).
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// StatusError is a request that Elasticsearch answered with an error status.
type StatusError struct {
	Status int
	Type   string // the error type, such as "illegal_argument_exception"
	Reason string
}

func (e *StatusError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("elasticsearch status %d", e.Status)
	}
	return fmt.Sprintf("elasticsearch status %d: %s: %s", e.Status, e.Type, e.Reason)
}

// statusError returns nil for 2xx, a retryable *StatusError for 429 and 5xx,
// and a plain *StatusError for the rest.
func statusError(status int, body io.Reader) error {
	if status >= 200 && status < 300 {
		return nil
	}
	e := &StatusError{Status: status}
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&r) == nil && len(r.Error) > 0 {
		var cause errorCause
		if json.Unmarshal(r.Error, &cause) == nil {
			e.Type, e.Reason = cause.Type, cause.Reason
		} else {
			var s string
			_ = json.Unmarshal(r.Error, &s)
			e.Reason = s
		}
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return retryable{e}
	}
	return e
}

type errorCause struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

func transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return retryable{err}
}

// call runs attempt until it succeeds, fails for good, ctx ends, attempts
// run out or the breaker refuses. Every attempt goes through the breaker.
func (s *Sink) call(ctx context.Context, what string, attempt func(context.Context) error) error {
	var last error
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("essink: %s: %w", what, errors.Join(err, last))
		}
		if !s.breaker.TryAcquirePermit() {
			return s.unavailable(what, last)
		}
		err := attempt(ctx)
		var r retryable
		switch {
		case err == nil:
			s.breaker.RecordSuccess()
			return nil
		case errors.As(err, &r), ctx.Err() != nil:
			s.breaker.RecordFailure()
		default:
			// Elasticsearch answered: it is up, the request was wrong.
			s.breaker.RecordSuccess()
			return fmt.Errorf("essink: %s: %w", what, err)
		}
		last = err
		if s.breaker.IsOpen() {
			return s.unavailable(what, last)
		}
		if n+1 >= s.cfg.maxAttempts {
			return fmt.Errorf("essink: %s: gave up after %d attempts: %w", what, n+1, last)
		}
		d := s.backoff(n)
		s.cfg.logger.Debug("essink: retrying", "what", what, "attempt", n+1, "delay", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

func (s *Sink) unavailable(what string, last error) error {
	if last != nil {
		return fmt.Errorf("essink: %s: %w (%w; retry in %v): last error: %w",
			what, ErrUnavailable, circuitbreaker.ErrOpen, s.breaker.RemainingDelay().Round(time.Millisecond), last)
	}
	return fmt.Errorf("essink: %s: %w (%w; retry in %v)",
		what, ErrUnavailable, circuitbreaker.ErrOpen, s.breaker.RemainingDelay().Round(time.Millisecond))
}

// backoff returns the delay after the n-th failed attempt (n from 0):
// exponential, capped, with jitter in the upper half so that sinks that
// failed together do not retry together.
func (s *Sink) backoff(n int) time.Duration {
	d := s.cfg.backoffMax
	if n < 32 {
		if e := s.cfg.backoffBase << n; e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
