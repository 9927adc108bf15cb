package essink

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzBulkResponse feeds arbitrary bulk response bodies to Apply: it must
// never panic, and must not report success unless every write was answered.
func FuzzBulkResponse(f *testing.F) {
	for _, seed := range []string{
		`{"errors":false,"items":[{"index":{"status":201}},{"delete":{"status":200}}]}`,
		`{"errors":true,"items":[{"index":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},{"delete":{"status":404,"result":"not_found"}}]}`,
		`{"errors":true,"items":[{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"x"}}},{"delete":{"status":429}}]}`,
		`{"items":[{"index":{"status":201}}]}`,
		`{"items":[{"delete":{"status":200}},{"index":{"status":201}}]}`,
		`{"items":[{"index":{"status":201},"delete":{"status":200}},{}]}`,
		`{"items":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			if r.URL.Path == "/_bulk" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
				return
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"result":"created"}`))
		}))
		defer srv.Close()
		tg := target{client: newClient(t, srv.URL)}
		s := newSink(t, tg, WithMaxAttempts(2), WithBackoff(time.Microsecond, time.Microsecond))
		log := orderLog()[:4] // one index of order-1, one delete of order-2
		err := s.Apply(t.Context(), "orders", log, orderProjection("orders"))
		if err == nil && !answersBoth(body) {
			t.Fatalf("Apply succeeded on bulk response %q", body)
		}
		if err != nil && errors.Is(err, ErrNoBatch) {
			t.Fatalf("unexpected error: %v", err)
		}
	})
}

// answersBoth reports whether body is a JSON bulk response with an index
// answer then a delete answer, the least a response Apply accepts must be.
func answersBoth(body []byte) bool {
	var r struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if json.NewDecoder(bytes.NewReader(body)).Decode(&r) != nil || len(r.Items) != 2 {
		return false
	}
	_, i := r.Items[0]["index"]
	_, d := r.Items[1]["delete"]
	return i && d
}
