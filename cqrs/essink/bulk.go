package essink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/es"
)

// ItemError is a bulk item that Elasticsearch rejected for good: not a
// version conflict (a stale write, counted as applied), not 429 or 5xx
// (retried). A mapping conflict or a closed index are typical causes.
type ItemError struct {
	Action string // "index" or "delete"
	Index  string
	ID     string
	Status int
	Type   string
	Reason string
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("%s document %q in %q: status %d: %s: %s", e.Action, e.ID, e.Index, e.Status, e.Type, e.Reason)
}

type failedOp struct {
	op     op
	status int
}

// bulkAction is the action line of one bulk item.
type bulkAction struct {
	Index       string `json:"_index"`
	ID          string `json:"_id"`
	Version     int64  `json:"version"`
	VersionType string `json:"version_type"`
}

type bulkItem struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Status int             `json:"status"`
	Result string          `json:"result"`
	Error  json.RawMessage `json:"error"`
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

// bulk sends ops as one bulk request. It returns the ops that failed with a
// status worth retrying; an *ItemError (joined, one per item) when any item
// failed for good; or a request-level error.
func (s *Sink) bulk(ctx context.Context, ops []op) ([]failedOp, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // Encode ends each value with the newline NDJSON needs
	for _, o := range ops {
		line := map[string]bulkAction{string(o.action): {Index: o.index, ID: o.id, Version: o.version, VersionType: "external"}}
		if err := enc.Encode(line); err != nil {
			return nil, fmt.Errorf("encode bulk action for %q in %q: %w", o.id, o.index, err)
		}
		if o.action == actionIndex {
			body.Write(o.source)
			body.WriteByte('\n')
		}
	}
	opts := []func(*esapi.BulkRequest){s.client.Bulk.WithContext(ctx)}
	if s.cfg.refresh != "" {
		opts = append(opts, s.client.Bulk.WithRefresh(s.cfg.refresh))
	}
	res, err := s.client.Bulk(bytes.NewReader(body.Bytes()), opts...)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	defer res.Body.Close()
	if err := statusError(res.StatusCode, res.Body); err != nil {
		return nil, err
	}
	var br bulkResponse
	if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
		return nil, retryable{fmt.Errorf("decode bulk response: %w", err)}
	}
	if len(br.Items) != len(ops) {
		return nil, fmt.Errorf("bulk response has %d items for %d writes", len(br.Items), len(ops))
	}
	var failed []failedOp
	var rejected []error
	var blame *es.Event
	for i, m := range br.Items {
		o := ops[i]
		it, ok := m[string(o.action)]
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("bulk response item %d does not answer a %s of %q in %q", i, o.action, o.id, o.index)
		}
		switch {
		case it.Status >= 200 && it.Status < 300:
		case it.Status == http.StatusConflict:
			// The stored document has this version or a later one: this
			// write is a replay or a duplicate and is already reflected.
		case it.Status == http.StatusNotFound && o.action == actionDelete && len(it.Error) == 0:
			// Deleting a missing document; its tombstone still records the version.
		case it.Status == http.StatusTooManyRequests || it.Status >= 500:
			failed = append(failed, failedOp{op: o, status: it.Status})
		default:
			e := &ItemError{Action: string(o.action), Index: o.index, ID: o.id, Status: it.Status}
			var cause errorCause
			if json.Unmarshal(it.Error, &cause) == nil {
				e.Type, e.Reason = cause.Type, cause.Reason
			}
			rejected = append(rejected, e)
			// Blame the earliest event in the batch whose write was refused.
			if blame == nil || o.event.Position.Before(blame.Position) {
				blame = &ops[i].event
			}
		}
	}
	if len(rejected) > 0 {
		return nil, &cqrs.EventError{Event: *blame, Err: errors.Join(rejected...)}
	}
	return failed, nil
}
