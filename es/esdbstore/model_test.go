package esdbstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// model is a model of one KurrentDB node's Streams service, written from the
// server's source (the expected-version and idempotence checks of
// IndexWriter.CheckCommit, soft deletes as $tb metadata, tombstones, the
// gRPC errors and trailers), so that tests can drive the adapter through the
// real client and gRPC where no server runs. It is a model: where it and
// KurrentDB disagree, KurrentDB is right, and the conformance run against a
// real server (KURRENTDB_URL) has the last word.
type model struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	log     []*mrec
	streams map[string]*mstream
	ids     map[uuid.UUID]*mrec
	changed chan struct{}
	nextPos uint64

	// dropAfter, when positive, makes the server drop a subscription
	// once it has sent that many more events.
	dropAfter atomic.Int64
	drops     atomic.Int64
}

type mrec struct {
	id          uuid.UUID
	stream      string
	rev         uint64
	typ         string
	contentType string
	data, meta  []byte
	created     time.Time
	pos         uint64
}

type mstream struct {
	recs       []*mrec // by revision
	tb         int64   // $tb; math.MaxInt64 after a soft delete
	tombstoned bool
	hasMeta    bool
}

func (st *mstream) last() int64 {
	if st == nil {
		return -1
	}
	return int64(len(st.recs)) - 1
}

// KurrentDB's expected version constants.
const (
	mAny          = -2
	mNoStream     = -1
	mStreamExists = -4
)

// startModel serves a fresh model on a loopback port and returns a Store on
// it.
func startModel(t testing.TB, opts ...Option) (*model, *Store) {
	t.Helper()
	m := &model{streams: map[string]*mstream{}, ids: map[uuid.UUID]*mrec{}, changed: make(chan struct{}), nextPos: 128}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterStreamsServer(srv, m)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	s, err := Open("esdb://"+lis.Addr().String()+"?tls=false", append([]Option{WithRetryDelay(5*time.Millisecond, 50*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		srv.Stop()
		wg.Wait()
	})
	return m, s
}

// write appends recs to the log, under m.mu.
func (m *model) write(name string, evs []*api.AppendReq_ProposedMessage) *mrec {
	st := m.streams[name]
	if st == nil {
		st = &mstream{}
		m.streams[name] = st
	}
	var last *mrec
	for _, e := range evs {
		id, _ := esdb.ParseUUIDFromInt64(e.Id.GetStructured().MostSignificantBits, e.Id.GetStructured().LeastSignificantBits)
		r := &mrec{
			id: id, stream: name, rev: uint64(len(st.recs)), typ: e.Metadata["type"], contentType: e.Metadata["content-type"],
			data: e.Data, meta: e.CustomMetadata, created: time.Now(), pos: m.nextPos,
		}
		m.nextPos += 100 + uint64(len(e.Data))
		st.recs = append(st.recs, r)
		m.log = append(m.log, r)
		m.ids[id] = r
		last = r
		if base, ok := strings.CutPrefix(name, "$$"); ok && r.typ == "$metadata" {
			var md map[string]any
			_ = json.Unmarshal(r.data, &md)
			bst := m.streams[base]
			if bst == nil {
				bst = &mstream{}
				m.streams[base] = bst
			}
			bst.hasMeta = true
			bst.tb = 0
			if tb, ok := md["$tb"].(float64); ok {
				bst.tb = int64(tb)
				if tb >= math.MaxInt64 {
					bst.tb = math.MaxInt64
				}
			}
		}
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return last
}

func systemEvent(typ string, data []byte) *api.AppendReq_ProposedMessage {
	most, least := esdb.UUIDAsInt64(uuid.New())
	return &api.AppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}},
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     data,
	}
}

func (m *model) writeTB(name string, tb int64) {
	m.write("$$"+name, []*api.AppendReq_ProposedMessage{systemEvent("$metadata", fmt.Appendf(nil, `{"$tb":%d}`, tb))})
}

type decision int

const (
	decOK decision = iota
	decWrongVersion
	decDeleted
	decIdempotent
	decCorrupted
)

// check follows IndexWriter.CheckCommit, under m.mu.
func (m *model) check(name string, exp int64, ids []uuid.UUID) (decision, int64, *mrec) {
	st := m.streams[name]
	cur := st.last()
	if st != nil && st.tombstoned {
		return decDeleted, cur, nil
	}
	soft := st != nil && st.tb == math.MaxInt64
	if exp == mStreamExists {
		if soft {
			return decDeleted, cur, nil
		}
		if cur < 0 && (st == nil || !st.hasMeta) {
			return decWrongVersion, cur, nil
		}
	}
	if exp == mAny || exp == mStreamExists {
		var last *mrec
		for i, id := range ids {
			r := m.ids[id]
			if r == nil || r.stream != name {
				if i == 0 {
					return decOK, cur, nil
				}
				return decCorrupted, cur, nil
			}
			last = r
		}
		if last == nil {
			return decOK, cur, nil
		}
		return decIdempotent, cur, last
	}
	if exp < cur {
		n := exp
		var last *mrec
		for i, id := range ids {
			n++
			if n <= cur && st.recs[n].id == id {
				last = st.recs[n]
				continue
			}
			if i > 0 {
				return decCorrupted, cur, nil
			}
			if exp == mNoStream && soft {
				return decOK, cur, nil
			}
			return decWrongVersion, cur, nil
		}
		if last == nil {
			return decWrongVersion, cur, nil
		}
		return decIdempotent, cur, last
	}
	if exp > cur {
		return decWrongVersion, cur, nil
	}
	return decOK, cur, nil
}

func (m *model) Append(srv api.Streams_AppendServer) error {
	req, err := srv.Recv()
	if err != nil {
		return err
	}
	o := req.GetOptions()
	name := string(o.StreamIdentifier.StreamName)
	exp := int64(mAny)
	switch {
	case o.GetNoStream() != nil:
		exp = mNoStream
	case o.GetStreamExists() != nil:
		exp = mStreamExists
	case o.GetAny() != nil:
	default:
		exp = int64(o.GetRevision())
	}
	var evs []*api.AppendReq_ProposedMessage
	var ids []uuid.UUID
	for {
		r, err := srv.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		e := r.GetProposedMessage()
		id, _ := esdb.ParseUUIDFromInt64(e.Id.GetStructured().MostSignificantBits, e.Id.GetStructured().LeastSignificantBits)
		evs, ids = append(evs, e), append(ids, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dec, cur, last := m.check(name, exp, ids)
	switch dec {
	case decDeleted:
		return streamDeleted(srv.Context(), name)
	case decCorrupted:
		_ = grpc.SetTrailer(srv.Context(), metadata.Pairs("exception", "invalid-transaction"))
		return status.Error(codes.InvalidArgument, "Invalid Transaction")
	case decWrongVersion:
		w := &api.AppendResp_WrongExpectedVersion{}
		if cur < 0 {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(cur)}
		}
		switch exp {
		case mAny:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		case mNoStream:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		case mStreamExists:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		default:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(exp)}
		}
		return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}})
	case decOK:
		if m.streams[name] != nil && m.streams[name].tb == math.MaxInt64 {
			// Appending undeletes: the events before it stay hidden.
			m.writeTB(name, cur+1)
		}
		if len(evs) == 0 {
			return srv.SendAndClose(success(nil, cur))
		}
		last = m.write(name, evs)
	}
	return srv.SendAndClose(success(last, cur))
}

func success(last *mrec, cur int64) *api.AppendResp {
	s := &api.AppendResp_Success{}
	if last == nil {
		if cur < 0 {
			s.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			s.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(cur)}
		}
		s.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		s.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.rev}
		s.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: last.pos, PreparePosition: last.pos}}
	}
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: s}}
}

func streamDeleted(ctx context.Context, name string) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

func wrongVersion(ctx context.Context, op, name string, exp, cur int64) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "wrong-expected-version"))
	return status.Errorf(codes.FailedPrecondition, "%s failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", op, name, exp, cur)
}

func deleteExpected(any, noStream, exists *shared.Empty, rev uint64) int64 {
	switch {
	case noStream != nil:
		return mNoStream
	case exists != nil:
		return mStreamExists
	case any != nil:
		return mAny
	}
	return int64(rev)
}

func (m *model) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	o := req.Options
	name := string(o.StreamIdentifier.StreamName)
	exp := deleteExpected(o.GetAny(), o.GetNoStream(), o.GetStreamExists(), o.GetRevision())
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.streams[name]
	cur := st.last()
	switch {
	case st != nil && st.tombstoned:
		return nil, streamDeleted(ctx, name)
	case cur < 0 && (st == nil || !st.hasMeta):
		// The server refuses to soft delete a stream that never existed.
		return nil, wrongVersion(ctx, "Delete", name, exp, -1)
	}
	switch dec, cur, _ := m.check(name, exp, nil); dec {
	case decWrongVersion:
		return nil, wrongVersion(ctx, "Delete", name, exp, cur)
	case decDeleted:
		return nil, streamDeleted(ctx, name)
	}
	m.writeTB(name, math.MaxInt64)
	pos := m.log[len(m.log)-1].pos
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}

func (m *model) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	o := req.Options
	name := string(o.StreamIdentifier.StreamName)
	exp := deleteExpected(o.GetAny(), o.GetNoStream(), o.GetStreamExists(), o.GetRevision())
	m.mu.Lock()
	defer m.mu.Unlock()
	dec, cur, _ := m.check(name, exp, []uuid.UUID{uuid.New()})
	switch dec {
	case decDeleted:
		return nil, streamDeleted(ctx, name)
	case decWrongVersion, decCorrupted:
		return nil, wrongVersion(ctx, "Delete", name, exp, cur)
	}
	st := m.streams[name]
	if st == nil {
		st = &mstream{}
		m.streams[name] = st
	}
	r := &mrec{id: uuid.New(), stream: name, rev: math.MaxInt64, typ: "$streamDeleted", created: time.Now(), pos: m.nextPos}
	m.nextPos += 100
	m.log = append(m.log, r)
	st.tombstoned = true
	close(m.changed)
	m.changed = make(chan struct{})
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{CommitPosition: r.pos, PreparePosition: r.pos}}}, nil
}

func readEvent(r *mrec) *api.ReadResp {
	most, least := esdb.UUIDAsInt64(r.id)
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}},
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.rev,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata: map[string]string{
				"type": r.typ, "content-type": r.contentType,
				"created": strconv.FormatInt(r.created.UnixNano()/100, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

func (m *model) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.Options
	if o.GetSubscription() != nil {
		return m.subscribe(o, srv)
	}
	count := int(min(o.GetCount(), math.MaxInt32))
	backward := o.ReadDirection == api.ReadReq_Options_Backwards
	m.mu.Lock()
	var out []*mrec
	if so := o.GetStream(); so != nil {
		name := string(so.StreamIdentifier.StreamName)
		st := m.streams[name]
		if st != nil && st.tombstoned {
			m.mu.Unlock()
			return streamDeleted(srv.Context(), name)
		}
		if st.last() < 0 || st.tb == math.MaxInt64 {
			m.mu.Unlock()
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: so.StreamIdentifier}}})
		}
		if backward {
			end := st.last()
			if so.GetEnd() == nil {
				end = int64(so.GetRevision())
			}
			// The server reads the window of count revisions that ends
			// at end, even when end is past the stream's last.
			for rev := end; rev >= max(0, end-int64(count)+1); rev-- {
				if rev <= st.last() && rev >= st.tb {
					out = append(out, st.recs[rev])
				}
			}
		} else {
			from := int64(0)
			if so.GetStart() == nil {
				from = int64(so.GetRevision())
			}
			for rev := max(from, st.tb); rev <= st.last() && len(out) < count; rev++ {
				out = append(out, st.recs[rev])
			}
		}
	} else {
		ao := o.GetAll()
		if backward {
			before := uint64(math.MaxUint64)
			if p := ao.GetPosition(); p != nil {
				before = p.CommitPosition
			}
			for i := len(m.log) - 1; i >= 0 && len(out) < count; i-- {
				if m.log[i].pos < before {
					out = append(out, m.log[i])
				}
			}
		} else {
			var from uint64
			if p := ao.GetPosition(); p != nil {
				from = p.CommitPosition
			}
			for _, r := range m.log {
				if r.pos >= from && len(out) < count {
					out = append(out, r)
				}
			}
		}
	}
	m.mu.Unlock()
	for _, r := range out {
		if err := srv.Send(readEvent(r)); err != nil {
			return err
		}
	}
	return nil
}

func (m *model) subscribe(o *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	match := func(*mrec) bool { return true }
	if f := o.GetFilter(); f != nil {
		expr, onStream := f.GetStreamIdentifier(), true
		if expr == nil {
			expr, onStream = f.GetEventType(), false
		}
		var re *regexp.Regexp
		if expr.Regex != "" {
			re = regexp.MustCompile(expr.Regex)
		}
		match = func(r *mrec) bool {
			s := r.typ
			if onStream {
				s = r.stream
			}
			if re != nil {
				return re.MatchString(s)
			}
			for _, p := range expr.Prefix {
				if strings.HasPrefix(s, p) {
					return true
				}
			}
			return false
		}
	}
	// after is exclusive: the subscription starts after the position.
	var after uint64
	started := false
	m.mu.Lock()
	switch ao := o.GetAll(); {
	case ao.GetPosition() != nil:
		after, started = ao.GetPosition().CommitPosition, true
	case ao.GetEnd() != nil:
		after, started = m.nextPos, true
	}
	m.mu.Unlock()
	for {
		m.mu.Lock()
		var out []*mrec
		for _, r := range m.log {
			if (!started || r.pos > after) && match(r) {
				out = append(out, r)
			}
		}
		if n := len(m.log); n > 0 {
			after, started = m.log[n-1].pos, true
		}
		changed := m.changed
		m.mu.Unlock()
		for _, r := range out {
			if err := srv.Send(readEvent(r)); err != nil {
				return err
			}
			if left := m.dropAfter.Load(); left > 0 && m.dropAfter.CompareAndSwap(left, left-1) && left == 1 {
				m.drops.Add(1)
				return status.Error(codes.Unavailable, "model: subscription dropped")
			}
		}
		select {
		case <-changed:
		case <-srv.Context().Done():
			return srv.Context().Err()
		}
	}
}
