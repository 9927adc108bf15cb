package essink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

var (
	_ cqrs.StatusRecorder = (*Sink)(nil)
	_ cqrs.EventParker    = (*Sink)(nil)
)

// statusDoc is a runner's report, one document per projection.
type statusDoc struct {
	Projection  string     `json:"projection"`
	State       string     `json:"state"`
	EventTypes  []string   `json:"event_types,omitempty"`
	Checkpoint  string     `json:"checkpoint"`
	Handled     int64      `json:"handled"`
	Parked      int64      `json:"parked"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	Owner       string     `json:"owner"`
	ReportedAt  time.Time  `json:"reported_at"`
}

// RecordStatus implements [cqrs.StatusRecorder]: it stores st as the status
// document of its projection, for [Sink.Inspect].
func (s *Sink) RecordStatus(ctx context.Context, st cqrs.RunnerStatus) error {
	doc := statusDoc{
		Projection: st.Projection, State: string(st.State), EventTypes: st.EventTypes,
		Checkpoint: st.Checkpoint.String(), Handled: st.Handled, Parked: st.Parked,
		LastError: st.LastError, Owner: st.Owner, ReportedAt: time.Now().UTC(),
	}
	if !st.LastErrorAt.IsZero() {
		at := st.LastErrorAt.UTC()
		doc.LastErrorAt = &at
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("essink: encode status of projection %q: %w", st.Projection, err)
	}
	return s.putDoc(ctx, fmt.Sprintf("record status of projection %q", st.Projection), s.cfg.statusIndex, st.Projection, body, -1)
}

// ParkedEvent is the document that records a parked event, with the ID
// PROJECTION@EVENT_ID in the parked index ([WithParkedIndex]).
type ParkedEvent struct {
	Projection string    `json:"projection"`
	EventID    string    `json:"event_id"`
	StreamID   string    `json:"stream_id"`
	Version    int64     `json:"version"`
	Type       string    `json:"type"`
	Position   string    `json:"position"`
	Error      string    `json:"error"`
	Attempts   int       `json:"attempts"`
	Skipped    bool      `json:"skipped"`
	ParkedAt   time.Time `json:"parked_at"`
}

// ParkedID is the ID of the document that records event eventID parked by
// projection.
func ParkedID(projection string, eventID es.ID) string { return projection + "@" + eventID.String() }

// Park implements [cqrs.EventParker]: it records p as a [ParkedEvent]
// document. Called inside Apply (a skipped event), the record is part of
// the batch's bulk request, acknowledged before the checkpoint passes the
// event; otherwise it is written at once. The document is versioned by its
// event, so recording it again is harmless.
func (s *Sink) Park(ctx context.Context, p cqrs.OnParkParams) error {
	doc := ParkedEvent{
		Projection: p.Projection, EventID: p.Event.ID.String(), StreamID: p.Event.StreamID,
		Version: p.Event.Version, Type: p.Event.Type, Position: p.Event.Position.String(),
		Attempts: p.Attempts, Skipped: p.Skipped, ParkedAt: time.Now().UTC(),
	}
	if p.Err != nil {
		doc.Error = p.Err.Error()
	}
	id := ParkedID(p.Projection, p.Event.ID)
	if _, err := batchFrom(ctx); err == nil {
		return Index(ctx, s.cfg.parkedIndex, id, doc)
	}
	v, err := s.cfg.version(p.Event)
	if err != nil {
		return fmt.Errorf("essink: park event %s of projection %q: %w", p.Event.ID, p.Projection, err)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("essink: encode parked event %s of projection %q: %w", p.Event.ID, p.Projection, err)
	}
	return s.putDoc(ctx, fmt.Sprintf("park event %s of projection %q", p.Event.ID, p.Projection), s.cfg.parkedIndex, id, body, v)
}

// Lagger is implemented by stores that count a consumer's lag themselves
// (pgstore). For other stores [Sink.Inspect] reads the log after the
// checkpoint to count it.
type Lagger interface {
	Lag(ctx context.Context, after es.Position, types []string) (events int64, oldest time.Time, err error)
}

// Inspect returns what tools show about projection name: its checkpoint,
// the runner's last report, the head of store's log and the lag; Parked
// counts the events the reporting runner parked since it started. It returns an
// error matching [ErrUnknownProjection] when the projection has neither a
// checkpoint nor a report. indexes, when given, are the aliases of its read
// model, so that a rebuild under way shows.
func (s *Sink) Inspect(ctx context.Context, store es.Store, name string, indexes ...string) (cqrs.ProjectionInfo, error) {
	st := cqrs.ProjectionInfo{Name: name, State: string(cqrs.StateStopped)}
	var report *statusDoc
	err := readDoc(ctx, s, fmt.Sprintf("read status of projection %q", name), s.cfg.statusIndex, name, &report)
	if err != nil {
		return st, err
	}
	var cp *checkpointDoc
	if err := readDoc(ctx, s, fmt.Sprintf("read checkpoint of projection %q", name), s.cfg.checkpointIndex, name, &cp); err != nil {
		return st, err
	}
	if report == nil && cp == nil {
		return st, fmt.Errorf("essink: %w %q: no checkpoint or status report in %q or %q", ErrUnknownProjection, name, s.cfg.checkpointIndex, s.cfg.statusIndex)
	}
	var checkpoint es.Position
	if cp != nil {
		if checkpoint, err = cp.position(); err != nil {
			return st, fmt.Errorf("essink: checkpoint of projection %q: %w", name, err)
		}
		at := cp.UpdatedAt
		st.CheckpointAt = &at
	}
	st.Checkpoint = checkpoint.String()
	if report != nil {
		st.State, st.EventTypes, st.Handled, st.Parked = report.State, report.EventTypes, report.Handled, report.Parked
		st.LastError, st.ErrorAt, st.Owner = report.LastError, report.LastErrorAt, report.Owner
		at := report.ReportedAt
		st.ReportedAt = &at
		st.State = cqrs.ShownState(st.State, at)
	}
	for _, alias := range indexes {
		next, err := s.ResolveAlias(ctx, alias+nextMark)
		if err != nil {
			return st, err
		}
		if len(next) == 1 {
			st.State = string(cqrs.StateRebuilding)
			rebuilt, err := s.Checkpoint(ctx, rebuildName(name, next[0]))
			if err != nil {
				return st, err
			}
			st.RebuildCheckpoint = rebuilt.String()
			break
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		return st, fmt.Errorf("essink: status of projection %q: read the head of the log: %w", name, err)
	}
	st.Head = head.String()
	var oldest time.Time
	if l, ok := store.(Lagger); ok {
		st.LagEvents, oldest, err = l.Lag(ctx, checkpoint, st.EventTypes)
	} else {
		st.LagEvents, oldest, err = countLag(ctx, store, checkpoint, st.EventTypes)
	}
	if err != nil {
		return st, fmt.Errorf("essink: status of projection %q: count the lag: %w", name, err)
	}
	if !oldest.IsZero() {
		st.LagSeconds = time.Since(oldest).Seconds()
	}
	return st, nil
}

// ErrUnknownProjection is returned (wrapped) by [Sink.Inspect] for a
// projection the Sink has no checkpoint or status report of.
var ErrUnknownProjection = errors.New("unknown projection")

// countLag reads the log after after, counting the events of types.
func countLag(ctx context.Context, store es.Store, after es.Position, types []string) (int64, time.Time, error) {
	filter := es.Filter{EventTypes: types}
	var n int64
	var oldest time.Time
	for e, err := range store.ReadAll(ctx, after, 0) {
		if err != nil {
			return 0, time.Time{}, err
		}
		if filter.Match(&e) {
			if n == 0 {
				oldest = e.RecordedAt
			}
			n++
		}
	}
	return n, oldest, nil
}

// readDoc decodes the source of document id of index into *dst, leaving it
// nil when there is no such document or index.
func readDoc[T any](ctx context.Context, s *Sink, what, index, id string, dst **T) error {
	return s.call(ctx, what, func(ctx context.Context) error {
		res, err := s.client.Get(index, id, s.client.Get.WithContext(ctx))
		if err != nil {
			return transportError(ctx, err)
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			*dst = nil
			return nil
		}
		if err := statusError(res.StatusCode, res.Body); err != nil {
			return err
		}
		var doc struct {
			Source *T `json:"_source"`
		}
		if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
			return fmt.Errorf("decode document %q of %q: %w", id, index, err)
		}
		*dst = doc.Source
		return nil
	})
}
