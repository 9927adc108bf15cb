package essink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/esgen-dev/esgen/es"
)

// ErrNoBatch is returned by [Index] and [Delete] when the context does not
// come from [Sink.Apply].
var ErrNoBatch = errors.New("essink: no batch on the context (call from a projection handled by Sink.Apply)")

type action string

const (
	actionIndex  action = "index"
	actionDelete action = "delete"
)

// op is one staged document operation.
type op struct {
	action  action
	index   string
	id      string
	version int64
	source  json.RawMessage // nil for deletes
	event   es.Event        // that staged it, to blame in errors
}

type docKey struct{ index, id string }

// opBatch collects the operations of one Apply. Handlers run one at a time, in
// order, so it needs no lock.
type opBatch struct {
	event   es.Event // being handled
	version int64    // of that event
	ops     []op
	byDoc   map[docKey]int // index into ops of the latest op per document
}

type batchKey struct{}

func batchFrom(ctx context.Context) (*opBatch, error) {
	b, _ := ctx.Value(batchKey{}).(*opBatch)
	if b == nil {
		return nil, ErrNoBatch
	}
	return b, nil
}

// stage records o; a later operation on the same document in the same batch
// replaces the earlier one, which is never sent. Sending both would be
// harmless when their versions differ, but two writes by one event carry the
// same version and the second would be rejected as stale.
func (b *opBatch) stage(o op) {
	k := docKey{o.index, o.id}
	if i, ok := b.byDoc[k]; ok {
		b.ops[i] = o
		return
	}
	if b.byDoc == nil {
		b.byDoc = make(map[docKey]int)
	}
	b.byDoc[k] = len(b.ops)
	b.ops = append(b.ops, o)
}

// Index stages a write of doc (encoded with encoding/json, or sent as is when
// it is a json.RawMessage or []byte) as document id of index, versioned by the
// event being handled. It returns [ErrNoBatch] outside [Sink.Apply]. Nothing
// is sent until the whole batch has been handled.
func Index(ctx context.Context, index, id string, doc any) error {
	b, err := batchFrom(ctx)
	if err != nil {
		return err
	}
	if index == "" || id == "" {
		return fmt.Errorf("index document %q in %q: index and id are required", id, index)
	}
	var src json.RawMessage
	switch d := doc.(type) {
	case json.RawMessage:
		src = d
	case []byte:
		src = d
	default:
		src, err = json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("index document %q in %q: %w", id, index, err)
		}
	}
	// The bulk body is newline-delimited, so the document must be one line.
	var compact bytes.Buffer
	if err := json.Compact(&compact, src); err != nil {
		return fmt.Errorf("index document %q in %q: %w", id, index, err)
	}
	b.stage(op{action: actionIndex, index: index, id: id, version: b.version, source: compact.Bytes(), event: b.event})
	return nil
}

// Delete stages the deletion of document id of index, versioned by the event
// being handled. Deleting a missing document is not an error. It returns
// [ErrNoBatch] outside [Sink.Apply].
func Delete(ctx context.Context, index, id string) error {
	b, err := batchFrom(ctx)
	if err != nil {
		return err
	}
	if index == "" || id == "" {
		return fmt.Errorf("delete document %q in %q: index and id are required", id, index)
	}
	b.stage(op{action: actionDelete, index: index, id: id, version: b.version, event: b.event})
	return nil
}
