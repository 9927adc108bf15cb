package es

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Upcaster rewrites a stored event of an old type into the next newer type,
// so that code only ever sees current events. Stored events are never
// changed: upcasting happens as they are read.
type Upcaster struct {
	// From is the stored type it reads.
	From string
	// To is the type it returns; it differs from From. To may itself be
	// upcast further.
	To string
	// Upcast returns e rewritten as To: usually new Data, and Type set to To.
	// ID, stream, version, position and metadata should be kept.
	Upcast func(e Event) (Event, error)
}

// Upcasters is a validated set of upcaster chains. The zero value and nil
// upcast nothing. It is safe for concurrent use.
type Upcasters struct {
	byFrom  map[string]Upcaster
	sources map[string][]string // type -> stored types that upcast into it, directly or not
}

// NewUpcasters checks ups and returns them as a set. It rejects an
// upcaster without From, To or Upcast, one whose From equals its To, two
// upcasters from the same type, and cycles, naming the types.
func NewUpcasters(ups ...Upcaster) (*Upcasters, error) {
	u := &Upcasters{byFrom: make(map[string]Upcaster, len(ups)), sources: map[string][]string{}}
	var errs []error
	for i, up := range ups {
		switch {
		case up.From == "" || up.To == "":
			errs = append(errs, fmt.Errorf("upcaster %d: From and To must both be set (got %q -> %q)", i, up.From, up.To))
			continue
		case up.Upcast == nil:
			errs = append(errs, fmt.Errorf("upcaster %s -> %s: Upcast is nil", up.From, up.To))
			continue
		case up.From == up.To:
			errs = append(errs, fmt.Errorf("upcaster %s -> %s: From and To are the same type; give the new shape a new type name", up.From, up.To))
			continue
		}
		if prev, dup := u.byFrom[up.From]; dup {
			errs = append(errs, fmt.Errorf("two upcasters from %s: to %s and to %s", up.From, prev.To, up.To))
			continue
		}
		u.byFrom[up.From] = up
	}
	for _, from := range slices.Sorted(maps.Keys(u.byFrom)) {
		chain := []string{from}
		for t := u.byFrom[from].To; ; t = u.byFrom[t].To {
			if slices.Contains(chain, t) {
				errs = append(errs, fmt.Errorf("upcasters form a cycle: %s -> %s", strings.Join(chain, " -> "), t))
				break
			}
			chain = append(chain, t)
			if _, more := u.byFrom[t]; !more {
				u.sources[t] = append(u.sources[t], chain[:len(chain)-1]...)
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

// Validate checks that every chain ends in one of the current types, so no
// stored event is upcast into a type nothing can decode. The error names
// the chain with the gap.
func (u *Upcasters) Validate(current []string) error {
	if u == nil {
		return nil
	}
	var errs []error
	for _, from := range slices.Sorted(maps.Keys(u.byFrom)) {
		chain := []string{from}
		t := u.byFrom[from].To
		for ; u.byFrom[t].Upcast != nil; t = u.byFrom[t].To {
			chain = append(chain, t)
		}
		if !slices.Contains(current, t) {
			errs = append(errs, fmt.Errorf("upcaster chain %s -> %s ends in %s, which is not a current event type: add an upcaster from %s or declare it",
				strings.Join(chain, " -> "), t, t, t))
		}
	}
	return errors.Join(errs...)
}

// Upcast follows e's chain to a type with no upcaster and returns the
// result. Events of other types are returned as they are.
func (u *Upcasters) Upcast(e Event) (Event, error) {
	if u == nil {
		return e, nil
	}
	for {
		up, ok := u.byFrom[e.Type]
		if !ok {
			return e, nil
		}
		out, err := up.Upcast(e)
		if err != nil {
			return Event{}, fmt.Errorf("upcast event %d of stream %q from %s to %s: %w", e.Version, e.StreamID, up.From, up.To, err)
		}
		if out.Type != up.To {
			return Event{}, fmt.Errorf("upcast event %d of stream %q from %s: the upcaster returned type %q, want %q", e.Version, e.StreamID, up.From, out.Type, up.To)
		}
		e = out
	}
}

// UpcastingStore returns a Store that reads through s and upcasts every
// event it returns, so that stream reads, global reads and subscriptions
// (and so projections) see only current types. A subscription filter on
// event types also matches stored events of older types that upcast into
// them. Writes go to s unchanged.
func UpcastingStore(s Store, u *Upcasters) Store { return &upcastingStore{Store: s, u: u} }

type upcastingStore struct {
	Store
	u *Upcasters
}

func (s *upcastingStore) upcast(seq iter.Seq2[Event, error], keep func(*Event) bool) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for e, err := range seq {
			if err == nil {
				e, err = s.u.Upcast(e)
			}
			if err == nil && keep != nil && !keep(&e) {
				continue
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

func (s *upcastingStore) ReadStream(ctx context.Context, stream string, from int64, dir Direction, limit int) iter.Seq2[Event, error] {
	return s.upcast(s.Store.ReadStream(ctx, stream, from, dir, limit), nil)
}

func (s *upcastingStore) ReadAll(ctx context.Context, after Position, limit int) iter.Seq2[Event, error] {
	return s.upcast(s.Store.ReadAll(ctx, after, limit), nil)
}

func (s *upcastingStore) Subscribe(ctx context.Context, after Position, filter Filter) iter.Seq2[Event, error] {
	if len(filter.EventTypes) == 0 || s.u == nil {
		return s.upcast(s.Store.Subscribe(ctx, after, filter), nil)
	}
	wanted := filter
	stored := slices.Clone(filter.EventTypes)
	for _, t := range filter.EventTypes {
		stored = append(stored, s.u.sources[t]...)
	}
	filter.EventTypes = stored
	return s.upcast(s.Store.Subscribe(ctx, after, filter), wanted.Match)
}
