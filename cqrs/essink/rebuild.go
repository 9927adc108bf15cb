package essink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

// Suffixes of the aliases that mark a rebuild's indexes: ALIAS__next on the
// index being built, until the rebuild is finished, and ALIAS__old on the
// index it replaced, until the grace period ends.
const (
	nextMark = "__next"
	oldMark  = "__old"
)

type rebuildKey struct{}

// Name returns the index a handler must write for the read model behind
// alias: alias itself, or, while [Sink.Rebuild] builds the next version,
// the index it is building. Pass it to [Index] and [Delete].
func Name(ctx context.Context, alias string) string {
	if m, ok := ctx.Value(rebuildKey{}).(map[string]string); ok {
		if ix, ok := m[alias]; ok {
			return ix
		}
	}
	return alias
}

// IndexSpec is one read-model index of a projection, for [Sink.Rebuild].
type IndexSpec struct {
	// Alias is the name that searches and the live projection use. The
	// index behind it is versioned (see [VersionedIndex]). Required.
	Alias string
	// Body is the settings and mappings of the next index, as for
	// [Sink.CreateIndex] (nil for none): a rebuild is where mappings change.
	Body []byte
}

// RebuildOptions configures [Sink.Rebuild].
type RebuildOptions struct {
	// Indexes are the projection's read-model indexes, named by the aliases
	// its handler passes to [Name]. Required.
	Indexes []IndexSpec
	// Grace is how long the replaced indexes are kept after the swap
	// (behind the alias ALIAS__old) before they are dropped; Rebuild waits
	// for it. Zero drops them at once; negative keeps them (the next
	// Rebuild drops them).
	Grace time.Duration
	// Runner options for the rebuilding runner (batch size, logger...).
	// Rebuild adds ScanAll, so that its checkpoint reaches the head of the
	// log whatever the projection's event types.
	Runner []cqrs.RunnerOption
	// Progress, when set, is called about once a second with the
	// rebuild's checkpoint and the position it is catching up to.
	Progress func(rebuild, target es.Position)
}

// rebuildPlan is the state of one index of a rebuild.
type rebuildPlan struct {
	spec IndexSpec
	live string   // the index behind the alias ("" before the first build)
	next string   // the index being built
	old  []string // replaced indexes not dropped yet
}

// nextProjection is p writing into the next indexes, under its own
// checkpoint.
type nextProjection struct {
	p       cqrs.Projection
	name    string
	indexes map[string]string // alias → next index
}

func (n nextProjection) Name() string         { return n.name }
func (n nextProjection) EventTypes() []string { return n.p.EventTypes() }
func (n nextProjection) Handle(ctx context.Context, rec es.Event) error {
	return n.p.Handle(context.WithValue(ctx, rebuildKey{}, n.indexes), rec)
}

// Rebuild builds the next version of p's read model beside the live one,
// blue/green, and makes it live with an atomic alias swap. For each index of
// opts it creates the next versioned index (ALIAS_vN+1, marked by the alias
// ALIAS__next) with the given settings and mappings, and replays the log
// into it under its own checkpoint, while the live projection keeps
// following the log and searches keep reading the live index. Once the copy
// has caught up with the head of the log as it was when the rebuild started,
// and with the live projection's checkpoint, one _aliases request points
// every alias at its new index (a compare-and-swap: it fails, changing
// nothing, if an alias moved meanwhile). The rebuild then applies the events
// the live projection may have written to the old index during the swap,
// gives the live projection its checkpoint when that is further on, and
// drops the old indexes after opts.Grace.
//
// Events are written with their usual external versions, so the live
// projection, writing through the alias after the swap, and the rebuild,
// finishing, may apply the same events in any order without regressing a
// document. Between the swap and the end of that last catch-up, searches
// may miss the events of the live projection's batch that was in flight
// during the swap: a lag of about one batch, for about one batch's time.
//
// With no alias yet (the first deployment), Rebuild builds ALIAS_v1 from the
// log and creates the alias. An index named like an alias is refused: a
// blue/green rebuild needs the read model behind an alias.
//
// Cancel ctx to stop; calling Rebuild again resumes where it stopped, before
// or after the swap. Run one Rebuild of a projection at a time.
func (s *Sink) Rebuild(ctx context.Context, store es.Store, p cqrs.Projection, opts RebuildOptions) error {
	if p == nil || store == nil {
		return errors.New("essink: rebuild: store and projection are required")
	}
	name := p.Name()
	what := fmt.Sprintf("rebuild projection %q", name)
	plans, err := s.planRebuild(ctx, opts.Indexes)
	if err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	swapped := 0
	for _, pl := range plans {
		if pl.next != "" && pl.next == pl.live {
			swapped++
		}
	}
	if swapped > 0 && swapped < len(plans) {
		return fmt.Errorf("essink: %s: some aliases point at their %s index and some do not; "+
			"the swap changes them all in one request, so they were moved by hand: point them back and rebuild again", what, nextMark)
	}
	if swapped == 0 {
		if err := s.prepareNext(ctx, name, plans); err != nil {
			return fmt.Errorf("essink: %s: %w", what, err)
		}
	}
	r, err := cqrs.NewRunner(store, s, nextOf(p, plans), slices.Concat(opts.Runner, []cqrs.RunnerOption{cqrs.WithScanAll(true)})...)
	if err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	if swapped == 0 {
		if err := s.catchUpAndSwap(ctx, store, r, name, plans, opts.Progress); err != nil {
			return fmt.Errorf("essink: %s: %w", what, err)
		}
	}
	if err := s.finishRebuild(ctx, store, r, name, plans, opts.Progress); err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	if opts.Grace < 0 {
		return nil
	}
	if opts.Grace > 0 {
		t := time.NewTimer(opts.Grace)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil // the next Rebuild drops them
		case <-t.C:
		}
	}
	if err := s.dropOld(ctx, plans); err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	return nil
}

// dropOld drops the replaced indexes of plans.
func (s *Sink) dropOld(ctx context.Context, plans []*rebuildPlan) error {
	for _, pl := range plans {
		for _, ix := range pl.old {
			if err := s.DropIndex(ctx, ix); err != nil {
				return err
			}
		}
		pl.old = nil
	}
	return nil
}

// planRebuild validates specs and reads where each alias and its marks
// point.
func (s *Sink) planRebuild(ctx context.Context, specs []IndexSpec) ([]*rebuildPlan, error) {
	if len(specs) == 0 {
		return nil, errors.New("no indexes given")
	}
	seen := map[string]bool{}
	plans := make([]*rebuildPlan, 0, len(specs))
	for _, spec := range specs {
		switch {
		case spec.Alias == "":
			return nil, errors.New("an index has no alias")
		case seen[spec.Alias]:
			return nil, fmt.Errorf("alias %q given twice", spec.Alias)
		}
		seen[spec.Alias] = true
		if _, err := nextBody(spec.Body, spec.Alias); err != nil {
			return nil, fmt.Errorf("body of %q: %w", spec.Alias, err)
		}
		pl := &rebuildPlan{spec: spec}
		live, err := s.ResolveAlias(ctx, spec.Alias)
		if err != nil {
			return nil, err
		}
		switch len(live) {
		case 0:
			exists, err := s.indexExists(ctx, spec.Alias)
			if err != nil {
				return nil, err
			}
			if exists {
				return nil, fmt.Errorf("%q is an index, not an alias: a blue/green rebuild needs the read model behind an alias "+
					"(reindex %q into %q, delete it and add the alias %q, or rebuild into a new alias)",
					spec.Alias, spec.Alias, VersionedIndex(spec.Alias, 1), spec.Alias)
			}
		case 1:
			pl.live = live[0]
		default:
			return nil, fmt.Errorf("alias %q points at %d indexes (%s); a rebuild replaces one", spec.Alias, len(live), strings.Join(live, ", "))
		}
		next, err := s.ResolveAlias(ctx, spec.Alias+nextMark)
		if err != nil {
			return nil, err
		}
		if len(next) > 1 {
			return nil, fmt.Errorf("alias %q points at %d indexes (%s), want at most one", spec.Alias+nextMark, len(next), strings.Join(next, ", "))
		}
		if len(next) == 1 {
			pl.next = next[0]
		}
		if pl.old, err = s.ResolveAlias(ctx, spec.Alias+oldMark); err != nil {
			return nil, err
		}
		plans = append(plans, pl)
	}
	return plans, nil
}

// prepareNext drops the indexes an earlier rebuild replaced, then resumes
// the next indexes an interrupted rebuild left, or creates them.
func (s *Sink) prepareNext(ctx context.Context, projection string, plans []*rebuildPlan) error {
	// Their grace period ended with that rebuild.
	if err := s.dropOld(ctx, plans); err != nil {
		return err
	}
	resume := true
	for _, pl := range plans {
		resume = resume && pl.next != ""
	}
	if resume {
		return nil
	}
	// A rebuild interrupted while creating its indexes: start over.
	for _, pl := range plans {
		if pl.next != "" {
			if err := s.DropIndex(ctx, pl.next); err != nil {
				return err
			}
		}
		pl.next = ""
	}
	return s.createNext(ctx, projection, plans)
}

// catchUpAndSwap runs the rebuild r until it has caught up, then swaps the
// aliases of plans to their next indexes.
func (s *Sink) catchUpAndSwap(ctx context.Context, store es.Store, r *cqrs.Runner, projection string, plans []*rebuildPlan, progress func(rebuild, target es.Position)) error {
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the head of the log: %w", err)
	}
	// Caught up: at the head as of the start, and at the live checkpoint,
	// read only once the head is reached.
	target := func(ctx context.Context) (es.Position, error) {
		if r.Status().Checkpoint.Before(head) {
			return head, nil
		}
		live, err := s.Checkpoint(ctx, projection)
		if err != nil || live.Before(head) {
			return head, err
		}
		return live, nil
	}
	if err := r.RunUntil(ctx, target, progress); err != nil {
		return err
	}
	// One request moves every alias, and marks the replaced indexes.
	var actions []aliasAction
	for _, pl := range plans {
		if pl.live != "" {
			actions = append(actions,
				aliasAction{kind: "remove", index: pl.live, alias: pl.spec.Alias, mustExist: true},
				aliasAction{kind: "add", index: pl.live, alias: pl.spec.Alias + oldMark})
			pl.old = []string{pl.live}
		}
		actions = append(actions, aliasAction{kind: "add", index: pl.next, alias: pl.spec.Alias, writeIndex: true})
	}
	if err := s.updateAliases(ctx, "swap aliases", actions); err != nil {
		return err
	}
	for _, pl := range plans {
		pl.live = pl.next
	}
	return nil
}

// createNext creates the next index of every plan, marked ALIAS__next, at
// the first version above the live index's that is free and has no
// rebuild checkpoint left.
func (s *Sink) createNext(ctx context.Context, projection string, plans []*rebuildPlan) error {
	for i, pl := range plans {
		body, _ := nextBody(pl.spec.Body, pl.spec.Alias) // checked by planRebuild
		for n := liveVersion(pl.spec.Alias, pl.live) + 1; ; n++ {
			ix := VersionedIndex(pl.spec.Alias, n)
			if i == 0 {
				// The rebuild's checkpoint is named after this index: one
				// left by an index of the same name would skip events.
				cp, err := s.Checkpoint(ctx, rebuildName(projection, ix))
				if err != nil {
					return err
				}
				if !cp.IsZero() {
					continue
				}
			}
			err := s.CreateIndex(ctx, ix, body)
			if errors.Is(err, ErrIndexExists) {
				continue // not ours: leave it
			}
			if err != nil {
				return err
			}
			pl.next = ix
			break
		}
	}
	return nil
}

// finishRebuild runs the rebuild r to the head of the log, to apply what the
// live projection wrote to the old indexes during the swap, gives the live
// projection the rebuild's checkpoint when it is further on, and removes the
// rebuild's marks.
func (s *Sink) finishRebuild(ctx context.Context, store es.Store, r *cqrs.Runner, projection string, plans []*rebuildPlan, progress func(rebuild, target es.Position)) error {
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the head of the log: %w", err)
	}
	if err := r.RunUntil(ctx, func(context.Context) (es.Position, error) { return head, nil }, progress); err != nil {
		return err
	}
	st := r.Status()
	if !st.Checkpoint.IsZero() {
		v, err := s.cfg.packer.Pack(st.Checkpoint)
		if err != nil {
			return err
		}
		// A live checkpoint further on is kept (the write is refused as stale).
		if err := s.storeCheckpoint(ctx, projection, st.Checkpoint, v); err != nil {
			return err
		}
	}
	actions := make([]aliasAction, 0, len(plans))
	for _, pl := range plans {
		actions = append(actions, aliasAction{kind: "remove", index: pl.next, alias: pl.spec.Alias + nextMark, mustExist: true})
	}
	if err := s.updateAliases(ctx, "remove the "+nextMark+" marks", actions); err != nil {
		return err
	}
	// The rebuild's checkpoint and status report go with it.
	if err := s.deleteDoc(ctx, "delete the rebuild's checkpoint", s.cfg.checkpointIndex, st.Projection); err != nil {
		return err
	}
	return s.deleteDoc(ctx, "delete the rebuild's status", s.cfg.statusIndex, st.Projection)
}

func nextOf(p cqrs.Projection, plans []*rebuildPlan) nextProjection {
	m := make(map[string]string, len(plans))
	for _, pl := range plans {
		m[pl.spec.Alias] = pl.next
	}
	return nextProjection{p: p, name: rebuildName(p.Name(), plans[0].next), indexes: m}
}

// rebuildName is the checkpoint of projection's rebuild into index.
func rebuildName(projection, index string) string { return projection + nextMark + "@" + index }

// liveVersion is n of live's name ALIAS_vN, or 0.
func liveVersion(alias, live string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(live, alias+"_v"))
	if err != nil || !strings.HasPrefix(live, alias+"_v") || n < 0 {
		return 0
	}
	return n
}

// nextBody returns the body of alias's next index: body with the mark
// ALIAS__next added to its aliases.
func nextBody(body []byte, alias string) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, fmt.Errorf("want a JSON object of settings and mappings: %w", err)
		}
	}
	aliases := map[string]json.RawMessage{}
	if raw, ok := fields["aliases"]; ok {
		if err := json.Unmarshal(raw, &aliases); err != nil {
			return nil, fmt.Errorf("aliases: want a JSON object: %w", err)
		}
	}
	if _, ok := aliases[alias]; ok {
		return nil, fmt.Errorf("aliases names %q itself: the rebuild adds it at the swap", alias)
	}
	aliases[alias+nextMark] = json.RawMessage(`{}`)
	var err error
	if fields["aliases"], err = json.Marshal(aliases); err != nil {
		return nil, err
	}
	return json.Marshal(fields)
}

// ResolveAlias returns the indexes alias points at, none when there is no
// such alias. Like the other index helpers it makes one request.
func (s *Sink) ResolveAlias(ctx context.Context, alias string) ([]string, error) {
	res, err := s.client.Indices.GetAlias(s.client.Indices.GetAlias.WithContext(ctx), s.client.Indices.GetAlias.WithName(alias))
	if err != nil {
		return nil, fmt.Errorf("essink: resolve alias %q: %w", alias, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err := statusError(res.StatusCode, res.Body); err != nil {
		return nil, fmt.Errorf("essink: resolve alias %q: %w", alias, err)
	}
	var byIndex map[string]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&byIndex); err != nil {
		return nil, fmt.Errorf("essink: resolve alias %q: decode: %w", alias, err)
	}
	indexes := make([]string, 0, len(byIndex))
	for ix := range byIndex {
		indexes = append(indexes, ix)
	}
	slices.Sort(indexes)
	return indexes, nil
}

// indexExists reports whether name is an index or an alias.
func (s *Sink) indexExists(ctx context.Context, name string) (bool, error) {
	res, err := s.client.Indices.Exists([]string{name}, s.client.Indices.Exists.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("essink: check index %q: %w", name, err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("essink: check index %q: %w", name, statusError(res.StatusCode, res.Body))
}

// deleteDoc removes document id of index, if it is there.
func (s *Sink) deleteDoc(ctx context.Context, what, index, id string) error {
	return s.call(ctx, what, func(ctx context.Context) error {
		res, err := s.client.Delete(index, id, s.client.Delete.WithContext(ctx))
		if err != nil {
			return transportError(ctx, err)
		}
		defer res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			return nil
		}
		return statusError(res.StatusCode, res.Body)
	})
}
