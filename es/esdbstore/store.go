package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/esgen-dev/esgen/es"
)

// DefaultLimits are the append limits of a Store unless configured
// otherwise: es.DefaultLimits' event count, and 1 MiB of data and metadata,
// which fits the server's default MaxAppendSize of 1 MiB of data.
var DefaultLimits = es.Limits{MaxEvents: es.DefaultLimits.MaxEvents, MaxBytes: 1 << 20}

// Defaults of the options.
const (
	DefaultPageSize      = 512
	DefaultRetryMinDelay = 100 * time.Millisecond
	DefaultRetryMaxDelay = 5 * time.Second
	maxDeletedRevision   = 1<<63 - 1 // KurrentDB's $tb of a stream deleted with reuse
)

// Option configures a [Store]. Options are applied in order.
type Option func(*Store)

// WithLimits sets the limits on one append. Zero fields mean the fields of
// [DefaultLimits]. Raise MaxBytes only together with the server's
// MaxAppendSize.
func WithLimits(l es.Limits) Option {
	return func(s *Store) {
		if l.MaxEvents > 0 {
			s.limits.MaxEvents = l.MaxEvents
		}
		if l.MaxBytes > 0 {
			s.limits.MaxBytes = l.MaxBytes
		}
	}
}

// WithLogger sets the logger for subscription drops and retries, and, for a
// Store made by [Open], the client's own messages. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// WithPageSize sets how many events a read asks the server for at a time.
// Default [DefaultPageSize].
func WithPageSize(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.pageSize = n
		}
	}
}

// WithRetryDelay sets the backoff of a subscription that resubscribes after
// the server dropped it: from minDelay, doubling up to maxDelay. Defaults
// [DefaultRetryMinDelay] and [DefaultRetryMaxDelay].
func WithRetryDelay(minDelay, maxDelay time.Duration) Option {
	return func(s *Store) {
		if minDelay > 0 {
			s.retryMin = minDelay
		}
		if maxDelay >= s.retryMin {
			s.retryMax = maxDelay
		}
	}
}

// Store is an [es.Store] on a KurrentDB or EventStoreDB server. It is safe
// for concurrent use. Create it with [New] or [Open].
type Store struct {
	client   *esdb.Client
	owned    bool
	limits   es.Limits
	log      *slog.Logger
	pageSize int
	retryMin time.Duration
	retryMax time.Duration

	closed atomic.Bool
	// stopping is cancelled by Close, ending the calls in progress.
	stopping context.Context
	stop     context.CancelFunc
	// calls is held shared while a call on the client starts, and by
	// Close to wait for them; see start.
	calls sync.RWMutex
}

var _ es.Store = (*Store)(nil)

// New returns a Store on client. The Store does not own the client: Close
// leaves it open.
func New(client *esdb.Client, opts ...Option) *Store {
	s := &Store{
		client:   client,
		limits:   DefaultLimits,
		log:      slog.Default(),
		pageSize: DefaultPageSize,
		retryMin: DefaultRetryMinDelay,
		retryMax: DefaultRetryMaxDelay,
	}
	for _, opt := range opts {
		opt(s)
	}
	s.stopping, s.stop = context.WithCancel(context.Background())
	return s
}

// Open returns a Store on a new client for the connection string, such as
// "esdb://localhost:2113?tls=false". The schemes of KurrentDB's newer
// clients (kurrentdb://, kurrent://, kdb://, and their +discover forms) are
// accepted as their esdb equivalents. Open does not connect: the client connects on
// first use. The Store owns the client and Close closes it.
func Open(connString string, opts ...Option) (*Store, error) {
	conf, err := esdb.ParseConnectionString(esdbScheme(connString))
	if err != nil {
		return nil, fmt.Errorf("esdbstore: parse connection string: %w", err)
	}
	s := New(nil, opts...)
	log := s.log
	conf.Logger = func(level esdb.LogLevel, format string, args ...any) {
		// The client logs every failed call and dropped subscription as an
		// error; the Store reports those to its callers (and logs the
		// renewals of subscriptions itself), so they are debug here.
		lvl := slog.LevelDebug
		if level == esdb.LogWarn {
			lvl = slog.LevelWarn
		}
		log.Log(context.Background(), lvl, "esdb client: "+fmt.Sprintf(format, args...))
	}
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("esdbstore: %w", err)
	}
	s.client, s.owned = client, true
	return s, nil
}

// esdbScheme rewrites the kurrentdb://, kurrent:// and kdb:// schemes,
// which client v4 predates, to esdb://.
func esdbScheme(conn string) string {
	for _, scheme := range []string{"kurrentdb", "kurrent", "kdb"} {
		if rest, ok := strings.CutPrefix(conn, scheme+"://"); ok {
			return "esdb://" + rest
		}
		if rest, ok := strings.CutPrefix(conn, scheme+"+discover://"); ok {
			return "esdb+discover://" + rest
		}
	}
	return conn
}

// Client returns the client the Store uses.
func (s *Store) Client() *esdb.Client { return s.client }

// Limits returns the limits the store applies to one append.
func (s *Store) Limits() es.Limits { return s.limits }

// Close ends the Store's subscriptions (they yield [es.ErrClosed]) and, for
// a Store made by [Open], closes the client. Later calls return
// [es.ErrClosed]. Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stop()
	s.calls.Lock()
	defer s.calls.Unlock()
	if s.owned {
		return s.client.Close()
	}
	return nil
}

// start runs f, which starts a call on the client, holding the Store open
// meanwhile: client v4.2.0's Close races with calls that are starting (it
// closes a channel they send on), so Close cancels the calls in progress and
// waits for those that are starting. The context f gets is cancelled by
// Close and by done, which the caller runs when it has read what the call
// returned.
func (s *Store) start(ctx context.Context, f func(context.Context) error) (done func(), err error) {
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopping, cancel)
	done = func() {
		stop()
		cancel()
	}
	s.calls.RLock()
	defer s.calls.RUnlock()
	if s.isClosed() {
		done()
		return nil, es.ErrClosed
	}
	if err := f(cctx); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// call runs f, a call on the client that is over when f returns, as start
// does.
func (s *Store) call(ctx context.Context, f func(context.Context) error) error {
	done, err := s.start(ctx, f)
	if err == nil {
		done()
	}
	return err
}

func (s *Store) isClosed() bool { return s.closed.Load() }

// begin checks what every call checks first.
func (s *Store) begin(ctx context.Context, op string) error {
	if s.isClosed() {
		return fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Append implements [es.Store.Append] with one append call to the server.
// See the package documentation for how the server's idempotence differs.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	if err := es.ValidateAppend(stream, expected, events, s.limits); err != nil {
		return es.AppendResult{}, err
	}
	op := "append to " + strconv.Quote(stream)
	if err := s.begin(ctx, op); err != nil {
		return es.AppendResult{}, err
	}
	if len(events) == 0 {
		return s.check(ctx, op, stream, expected)
	}
	data := make([]esdb.EventData, len(events))
	for i := range events {
		data[i] = eventData(&events[i])
	}
	var res *esdb.WriteResult
	err := s.call(ctx, func(ctx context.Context) (err error) {
		res, err = s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
		return err
	})
	if err != nil {
		return es.AppendResult{}, s.appendFailed(ctx, op, stream, expected, err)
	}
	return es.AppendResult{
		Version:  versionOf(res.NextExpectedVersion),
		Position: es.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition},
	}, nil
}

// appendFailed maps the failure of an append or delete.
func (s *Store) appendFailed(ctx context.Context, op, stream string, expected es.ExpectedVersion, err error) error {
	if ctx.Err() != nil {
		return s.fail(ctx, op, err)
	}
	switch kind, _ := classify(err); kind {
	case failWrongVersion:
		return s.conflict(ctx, stream, expected, err)
	case failStreamDeleted:
		// KurrentDB also answers "deleted" to StreamExists on a stream
		// deleted with reuse; es calls that a conflict with a stream at
		// version 0. Only a tombstoned stream is retired.
		if expected == es.StreamExists {
			if _, state, rerr := s.latest(ctx, stream); rerr == nil && state != stateRetired {
				return &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: 0}
			}
		}
	}
	return s.fail(ctx, op, err)
}

// conflict builds the ConcurrencyError for a wrong expected version. The
// server reports the stream's last revision, which after a delete with
// reuse is the deleted events' last; es reports 0 for a deleted stream, so a
// stream the server calls existing is read to tell.
func (s *Store) conflict(ctx context.Context, stream string, expected es.ExpectedVersion, err error) error {
	return concurrencyError(stream, expected, err.Error(), func() (int64, streamState, error) {
		return s.latest(ctx, stream)
	})
}

// concurrencyError builds the ConcurrencyError for the server's wrong
// expected version message msg, calling latest for the stream's newest
// version and state when the message does not settle it.
func concurrencyError(stream string, expected es.ExpectedVersion, msg string, latest func() (int64, streamState, error)) *es.ConcurrencyError {
	actual, ok := actualVersion(msg)
	if !ok || actual > 0 {
		v, state, err := latest()
		switch {
		case err != nil:
			// Keep what the server said.
		case state != stateLive:
			actual = 0
		case !ok && v >= 0:
			actual = v
		}
	}
	return &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
}

// streamState is what a read of a stream's newest event finds.
type streamState int

const (
	stateLive    streamState = iota
	stateAbsent              // never written, or deleted with reuse
	stateRetired             // tombstoned
)

// latest reads the version of stream's newest readable event. It is -1 for
// a live stream whose events are all truncated.
func (s *Store) latest(ctx context.Context, stream string) (int64, streamState, error) {
	var ev *esdb.ResolvedEvent
	err := s.call(ctx, func(ctx context.Context) error {
		rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
		if err != nil {
			return err
		}
		defer rs.Close()
		ev, err = rs.Recv()
		return err
	})
	switch {
	case errors.Is(err, io.EOF):
		return -1, stateLive, nil
	case err != nil:
		state, err := stateOf(err)
		return 0, state, err
	}
	return versionOf(ev.OriginalEvent().EventNumber), stateLive, nil
}

// stateOf tells from the error of a stream read whether the stream is
// absent or retired; other errors are returned.
func stateOf(err error) (streamState, error) {
	switch kind, _ := classify(err); kind {
	case failNotFound:
		return stateAbsent, nil
	case failStreamDeleted:
		return stateRetired, nil
	}
	return stateLive, err
}

// check serves an append of no events: it reads the stream's version and
// checks expected, writing nothing.
func (s *Store) check(ctx context.Context, op, stream string, expected es.ExpectedVersion) (es.AppendResult, error) {
	v, state, err := s.latest(ctx, stream)
	switch {
	case err != nil:
		return es.AppendResult{}, s.fail(ctx, op, err)
	case state == stateRetired:
		return es.AppendResult{}, fmt.Errorf("%s: %w", op, es.ErrStreamDeleted)
	case state == stateAbsent:
		v = 0
	case v < 0:
		// Every event is truncated; $tb is one past the last revision,
		// which makes it the stream's version.
		tb, err := s.truncatedBefore(ctx, stream)
		if err != nil {
			return es.AppendResult{}, s.fail(ctx, op, err)
		}
		v = int64(tb)
	}
	if !expected.Matches(v) {
		return es.AppendResult{}, &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: v}
	}
	return es.AppendResult{Version: v}, nil
}

// metadata reads stream's metadata; a stream without any has the zero
// StreamMetadata.
func (s *Store) metadata(ctx context.Context, stream string) (*esdb.StreamMetadata, error) {
	// The newest metadata event is the one in force: read backward.
	var m *esdb.StreamMetadata
	err := s.call(ctx, func(ctx context.Context) (err error) {
		m, err = s.client.GetStreamMetadata(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}})
		return err
	})
	if err != nil {
		if kind, _ := classify(err); kind == failNotFound {
			return &esdb.StreamMetadata{}, nil
		}
		return nil, err
	}
	return m, nil
}

// truncatedBefore returns stream's $tb, 0 when it has none.
func (s *Store) truncatedBefore(ctx context.Context, stream string) (uint64, error) {
	m, err := s.metadata(ctx, stream)
	if err != nil {
		return 0, err
	}
	if tb := m.TruncateBefore(); tb != nil && *tb != maxDeletedRevision {
		return *tb, nil
	}
	return 0, nil
}

// DeleteStream implements [es.Store.DeleteStream]: a soft delete with
// [es.AllowReuse], a tombstone without. Deleting with reuse a stream that
// never existed returns [es.ErrStreamNotFound]; tombstoning one retires its
// name, as KurrentDB does.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected es.ExpectedVersion, opts ...es.DeleteOption) error {
	o := es.ApplyDeleteOptions(opts)
	if err := es.ValidateStreamID(stream); err != nil {
		return err
	}
	op := "delete stream " + strconv.Quote(stream)
	if !expected.Valid() {
		return fmt.Errorf("%s: %s: %w", op, expected, es.ErrInvalidArgument)
	}
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	err := s.delete(ctx, stream, expectedRevision(expected), o.AllowReuse)
	if err == nil {
		return nil
	}
	if kind, _ := classify(err); kind == failWrongVersion && ctx.Err() == nil {
		// The server refuses a soft delete of a stream that never existed
		// as a wrong expected version against no stream.
		if actual, ok := actualVersion(err.Error()); ok && actual == 0 && o.AllowReuse {
			return fmt.Errorf("%s: %w", op, es.ErrStreamNotFound)
		}
	}
	return s.appendFailed(ctx, op, stream, expected, err)
}

// delete soft-deletes or tombstones stream.
func (s *Store) delete(ctx context.Context, stream string, rev esdb.ExpectedRevision, reuse bool) error {
	return s.call(ctx, func(ctx context.Context) error {
		if !reuse {
			_, err := s.client.TombstoneStream(ctx, stream, esdb.TombstoneStreamOptions{ExpectedRevision: rev})
			return err
		}
		return s.softDelete(ctx, stream, rev)
	})
}

func (s *Store) softDelete(ctx context.Context, stream string, rev esdb.ExpectedRevision) (err error) {
	// Client v4.2.0 dereferences the position of a successful delete
	// without checking that the server sent one, and panics when it did
	// not. The delete has succeeded by then.
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(runtime.Error); !ok {
				panic(r)
			}
			err = nil
		}
	}()
	_, err = s.client.DeleteStream(ctx, stream, esdb.DeleteStreamOptions{ExpectedRevision: rev})
	return err
}

// TruncateBefore implements [es.Store.TruncateBefore] by raising the
// stream's $tb metadata to revision before-1 (keeping the rest of its
// metadata). Stream reads stop returning the events at once; the server
// removes them from disk, and from reads of $all, only when it scavenges.
func (s *Store) TruncateBefore(ctx context.Context, stream string, before int64) error {
	if err := es.ValidateStreamID(stream); err != nil {
		return err
	}
	op := "truncate stream " + strconv.Quote(stream)
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	v, state, err := s.latest(ctx, stream)
	switch {
	case err != nil:
		return s.fail(ctx, op, err)
	case state != stateLive:
		return fmt.Errorf("%s: %w", op, es.ErrStreamNotFound)
	case v < 0 || before <= es.StreamStart:
		// Nothing left to truncate, or nothing asked.
		return nil
	}
	// A $tb past the end would hide the events appended next.
	tb := revisionOf(min(before, v+1))
	m, err := s.metadata(ctx, stream)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if old := m.TruncateBefore(); old != nil && *old >= tb {
		return nil
	}
	m.SetTruncateBefore(tb)
	if err := s.call(ctx, func(ctx context.Context) error {
		_, err := s.client.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{}, *m)
		return err
	}); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}
