package essink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// ErrIndexExists is returned (wrapped) by [Sink.CreateIndex] when the index
// is there already.
var ErrIndexExists = errors.New("essink: index exists")

// VersionedIndex returns the name of version n of the index behind alias,
// such as "orders_v2" for ("orders", 2). Read models are queried through the
// alias; each rebuild writes the next versioned index.
func VersionedIndex(alias string, n int) string { return fmt.Sprintf("%s_v%d", alias, n) }

// CreateIndex creates index name with body as its settings and mappings (nil
// for none). It returns an error matching [ErrIndexExists] when the index
// exists. Like the other index helpers it makes one request, without retries
// or the breaker: it is an operator's step, not part of the write path.
func (s *Sink) CreateIndex(ctx context.Context, name string, body []byte) error {
	opts := []func(*esapi.IndicesCreateRequest){s.client.Indices.Create.WithContext(ctx)}
	if body != nil {
		opts = append(opts, s.client.Indices.Create.WithBody(bytes.NewReader(body)))
	}
	res, err := s.client.Indices.Create(name, opts...)
	if err != nil {
		return fmt.Errorf("essink: create index %q: %w", name, err)
	}
	defer res.Body.Close()
	if err := statusError(res.StatusCode, res.Body); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Type == "resource_already_exists_exception" {
			return fmt.Errorf("essink: create index %q: %w: %w", name, ErrIndexExists, err)
		}
		return fmt.Errorf("essink: create index %q: %w", name, err)
	}
	return nil
}

// SwapAlias points alias at index to instead of from, in one _aliases
// request, which Elasticsearch applies atomically: every search sees either
// the old index or the new one. With from empty it only adds the alias (the
// first deployment). The request fails, changing nothing, when alias does not
// point at from: a swap is a compare-and-swap, so two operators cannot both
// win.
func (s *Sink) SwapAlias(ctx context.Context, alias, from, to string) error {
	if alias == "" || to == "" {
		return fmt.Errorf("essink: swap alias %q to %q: alias and target are required", alias, to)
	}
	var actions []aliasAction
	if from != "" {
		actions = append(actions, aliasAction{kind: "remove", index: from, alias: alias, mustExist: true})
	}
	actions = append(actions, aliasAction{kind: "add", index: to, alias: alias, writeIndex: true})
	return s.updateAliases(ctx, fmt.Sprintf("swap alias %q from %q to %q", alias, from, to), actions)
}

// aliasAction is one action of an _aliases request.
type aliasAction struct {
	kind       string // "add" or "remove"
	index      string
	alias      string
	mustExist  bool // remove: fail unless alias points at index
	writeIndex bool // add: make index the alias's write index
}

// updateAliases sends actions in one _aliases request, which Elasticsearch
// applies atomically: all or none.
func (s *Sink) updateAliases(ctx context.Context, what string, actions []aliasAction) error {
	type target struct {
		Index      string `json:"index"`
		Alias      string `json:"alias"`
		MustExist  *bool  `json:"must_exist,omitempty"`
		WriteIndex *bool  `json:"is_write_index,omitempty"`
	}
	yes := true
	body := struct {
		Actions []map[string]target `json:"actions"`
	}{}
	for _, a := range actions {
		t := target{Index: a.index, Alias: a.alias}
		if a.mustExist {
			t.MustExist = &yes
		}
		if a.writeIndex {
			t.WriteIndex = &yes
		}
		body.Actions = append(body.Actions, map[string]target{a.kind: t})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	res, err := s.client.Indices.UpdateAliases(bytes.NewReader(b), s.client.Indices.UpdateAliases.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	defer res.Body.Close()
	if err := statusError(res.StatusCode, res.Body); err != nil {
		return fmt.Errorf("essink: %s: %w", what, err)
	}
	return nil
}

// DropIndex deletes index name. A missing index is not an error. Elasticsearch
// refuses to delete an index through an alias name, so pass the versioned name.
func (s *Sink) DropIndex(ctx context.Context, name string) error {
	res, err := s.client.Indices.Delete([]string{name}, s.client.Indices.Delete.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("essink: drop index %q: %w", name, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return nil
	}
	if err := statusError(res.StatusCode, res.Body); err != nil {
		return fmt.Errorf("essink: drop index %q: %w", name, err)
	}
	return nil
}
