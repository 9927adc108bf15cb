// Package esfake is a model of the parts of Elasticsearch 8 that esgen's
// Elasticsearch sink uses, served over HTTP for request-level tests: the
// bulk API with external versioning, single-document index, get and delete,
// index creation (with aliases) and deletion, alias reads and updates, and
// the X-Elastic-Product header the v8 client checks. Faults are injected per request or per bulk item.
package esfake

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is a model of the parts of Elasticsearch the sink uses: the bulk
// API, single-document index, get and delete, index creation and deletion,
// and aliases (each pointing at one index), with external versioning as the server does it (a write is kept
// only when its version is above the stored one, deletes leave a versioned
// tombstone). Faults are injected per request or per bulk item.
type Server struct {
	mu       sync.Mutex
	indices  map[string]map[string]*doc // index → id → doc
	aliases  map[string]string          // alias → index
	requests []Request
	down     int // when not 0, every request answers this status
	failNext []int
	// itemFault, when set, may answer a bulk item with a status instead of
	// applying it; attempt counts bulk requests from 1.
	itemFault func(attempt int, action, index, id string) int
	bulks     int
}

type doc struct {
	version int64
	source  json.RawMessage
	deleted bool
}

// Request is one request the server received.
type Request struct {
	Method, Path string
	Query        string
	Body         string
}

// NewServer returns an empty server, to serve with net/http or httptest.
func NewServer() *Server {
	return &Server{indices: map[string]map[string]*doc{}, aliases: map[string]string{}}
}

// New serves an empty server on a local httptest server closed when t ends.
func New(t testing.TB) (*Server, *httptest.Server) {
	f := NewServer()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// SetDown makes every request answer status; 0 brings the server back.
func (f *Server) SetDown(status int) { f.mu.Lock(); f.down = status; f.mu.Unlock() }

// Fail makes the next requests answer the given statuses, one each.
func (f *Server) Fail(statuses ...int) {
	f.mu.Lock()
	f.failNext = append(f.failNext, statuses...)
	f.mu.Unlock()
}

// SetItemFault makes fn decide each bulk item: a non-zero status answers
// the item with it instead of applying it; attempt counts bulk requests
// from 1. nil removes the fault.
func (f *Server) SetItemFault(fn func(attempt int, action, index, id string) int) {
	f.mu.Lock()
	f.itemFault = fn
	f.mu.Unlock()
}

// Log returns the requests received so far, in order.
func (f *Server) Log() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// ResetLog forgets the requests received so far.
func (f *Server) ResetLog() { f.mu.Lock(); f.requests = nil; f.mu.Unlock() }

func (f *Server) resolve(name string) string {
	if ix, ok := f.aliases[name]; ok {
		return ix
	}
	return name
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func esError(typ, reason string) map[string]any {
	return map[string]any{"type": typ, "reason": reason}
}

func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body)})
	if f.down != 0 {
		writeJSON(w, f.down, map[string]any{"error": esError("unavailable", "fake is down"), "status": f.down})
		return
	}
	if len(f.failNext) > 0 {
		st := f.failNext[0]
		f.failNext = f.failNext[1:]
		writeJSON(w, st, map[string]any{"error": esError("injected", "injected fault"), "status": st})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		f.bulk(w, body)
	case r.Method == http.MethodPost && r.URL.Path == "/_aliases":
		f.updateAliases(w, body)
	case len(parts) == 3 && parts[1] == "_doc" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		q := r.URL.Query()
		v, _ := strconv.ParseInt(q.Get("version"), 10, 64)
		switch q.Get("version_type") {
		case "external":
		case "":
			// Internal versioning: one more than the stored version.
			v = 1
			if d, ok := f.indices[f.resolve(parts[0])][parts[2]]; ok {
				v = d.version + 1
			}
		default:
			writeJSON(w, 400, map[string]any{"error": esError("fake", "fake does not model version_type "+q.Get("version_type")), "status": 400})
			return
		}
		st, res := f.write("index", parts[0], parts[2], v, body)
		writeJSON(w, st, res)
	case len(parts) == 3 && parts[1] == "_doc" && r.Method == http.MethodGet:
		ix := f.resolve(parts[0])
		docs, ok := f.indices[ix]
		if !ok {
			writeJSON(w, 404, map[string]any{"error": esError("index_not_found_exception", "no such index ["+ix+"]"), "status": 404})
			return
		}
		d, ok := docs[parts[2]]
		if !ok || d.deleted {
			writeJSON(w, 404, map[string]any{"_index": ix, "_id": parts[2], "found": false})
			return
		}
		writeJSON(w, 200, map[string]any{"_index": ix, "_id": parts[2], "_version": d.version, "found": true, "_source": d.source})
	case len(parts) == 3 && parts[1] == "_doc" && r.Method == http.MethodDelete:
		ix := f.resolve(parts[0])
		d, ok := f.indices[ix][parts[2]]
		if !ok || d.deleted {
			writeJSON(w, 404, map[string]any{"_index": ix, "_id": parts[2], "result": "not_found"})
			return
		}
		// Without a version the delete is internally versioned: one more.
		f.indices[ix][parts[2]] = &doc{version: d.version + 1, deleted: true}
		writeJSON(w, 200, map[string]any{"_index": ix, "_id": parts[2], "_version": d.version + 1, "result": "deleted"})
	case len(parts) == 2 && parts[0] == "_alias" && r.Method == http.MethodGet:
		f.getAlias(w, parts[1])
	case len(parts) == 1 && r.Method == http.MethodHead:
		_, isIndex := f.indices[parts[0]]
		_, isAlias := f.aliases[parts[0]]
		if isIndex || isAlias {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusNotFound)
		}
	case len(parts) == 1 && r.Method == http.MethodPut:
		f.createIndex(w, parts[0], body)
	case len(parts) == 1 && r.Method == http.MethodDelete:
		if _, ok := f.aliases[parts[0]]; ok {
			writeJSON(w, 400, map[string]any{"error": esError("illegal_argument_exception",
				"The provided expression ["+parts[0]+"] matches an alias, specify the corresponding concrete indices instead."), "status": 400})
			return
		}
		if _, ok := f.indices[parts[0]]; !ok {
			writeJSON(w, 404, map[string]any{"error": esError("index_not_found_exception", "no such index ["+parts[0]+"]"), "status": 404})
			return
		}
		delete(f.indices, parts[0])
		for a, ix := range f.aliases {
			if ix == parts[0] {
				delete(f.aliases, a)
			}
		}
		writeJSON(w, 200, map[string]any{"acknowledged": true})
	default:
		writeJSON(w, 400, map[string]any{"error": esError("fake", "fake does not model "+r.Method+" "+r.URL.Path), "status": 400})
	}
}

// write applies one external-versioned write and returns the status and
// item result Elasticsearch would.
func (f *Server) write(action, index, id string, version int64, source []byte) (int, map[string]any) {
	ix := f.resolve(index)
	docs, ok := f.indices[ix]
	if !ok {
		docs = map[string]*doc{}
		f.indices[ix] = docs
	}
	res := map[string]any{"_index": ix, "_id": id}
	d, exists := docs[id]
	if exists && version <= d.version {
		res["status"] = 409
		res["error"] = esError("version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, current version [%d] is higher or equal to the one provided [%d]", id, d.version, version))
		return 409, res
	}
	res["_version"] = version
	if action == "delete" {
		docs[id] = &doc{version: version, deleted: true}
		if !exists || d.deleted {
			res["result"], res["status"] = "not_found", 404
			return 404, res
		}
		res["result"], res["status"] = "deleted", 200
		return 200, res
	}
	docs[id] = &doc{version: version, source: append(json.RawMessage(nil), source...)}
	if !exists || d.deleted {
		res["result"], res["status"] = "created", 201
		return 201, res
	}
	res["result"], res["status"] = "updated", 200
	return 200, res
}

func (f *Server) bulk(w http.ResponseWriter, body []byte) {
	f.bulks++
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<24)
	var items []map[string]any
	hasErrors := false
	for sc.Scan() {
		var line map[string]struct {
			Index       string `json:"_index"`
			ID          string `json:"_id"`
			Version     int64  `json:"version"`
			VersionType string `json:"version_type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || len(line) != 1 {
			writeJSON(w, 400, map[string]any{"error": esError("illegal_argument_exception", "malformed action line"), "status": 400})
			return
		}
		for action, a := range line {
			var source []byte
			if action == "index" {
				if !sc.Scan() {
					writeJSON(w, 400, map[string]any{"error": esError("illegal_argument_exception", "missing source"), "status": 400})
					return
				}
				source = append([]byte(nil), sc.Bytes()...)
			}
			if a.VersionType != "external" {
				writeJSON(w, 400, map[string]any{"error": esError("fake", "fake only models external versions"), "status": 400})
				return
			}
			var st int
			var res map[string]any
			if f.itemFault != nil {
				if fs := f.itemFault(f.bulks, action, a.Index, a.ID); fs != 0 {
					st, res = fs, map[string]any{"_index": a.Index, "_id": a.ID, "status": fs, "error": esError("injected", "injected item fault")}
				}
			}
			if st == 0 {
				st, res = f.write(action, a.Index, a.ID, a.Version, source)
			}
			if st >= 300 && !(st == 404 && action == "delete") {
				hasErrors = true
			}
			items = append(items, map[string]any{action: res})
		}
	}
	writeJSON(w, 200, map[string]any{"took": 1, "errors": hasErrors, "items": items})
}

func (f *Server) updateAliases(w http.ResponseWriter, body []byte) {
	var req struct {
		Actions []map[string]struct {
			Index     string `json:"index"`
			Alias     string `json:"alias"`
			MustExist bool   `json:"must_exist"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, 400, map[string]any{"error": esError("parse_exception", err.Error()), "status": 400})
		return
	}
	next := map[string]string{}
	for a, ix := range f.aliases {
		next[a] = ix
	}
	for _, m := range req.Actions {
		for kind, a := range m {
			switch kind {
			case "remove":
				if next[a.Alias] != a.Index {
					writeJSON(w, 404, map[string]any{"error": esError("aliases_not_found_exception", "aliases ["+a.Alias+"] missing"), "status": 404})
					return
				}
				delete(next, a.Alias)
			case "add":
				if _, ok := f.indices[a.Index]; !ok {
					writeJSON(w, 404, map[string]any{"error": esError("index_not_found_exception", "no such index ["+a.Index+"]"), "status": 404})
					return
				}
				if _, ok := f.indices[a.Alias]; ok {
					writeJSON(w, 400, map[string]any{"error": esError("invalid_alias_name_exception",
						"Invalid alias name ["+a.Alias+"]: an index or data stream exists with the same name as the alias"), "status": 400})
					return
				}
				next[a.Alias] = a.Index
			}
		}
	}
	f.aliases = next
	writeJSON(w, 200, map[string]any{"acknowledged": true})
}

// createIndex creates index name with the aliases of body, if any.
func (f *Server) createIndex(w http.ResponseWriter, name string, body []byte) {
	if _, ok := f.indices[name]; ok {
		writeJSON(w, 400, map[string]any{"error": esError("resource_already_exists_exception", "index ["+name+"] already exists"), "status": 400})
		return
	}
	if _, ok := f.aliases[name]; ok {
		writeJSON(w, 400, map[string]any{"error": esError("invalid_index_name_exception", "Invalid index name ["+name+"], already exists as alias"), "status": 400})
		return
	}
	var req struct {
		Aliases map[string]json.RawMessage `json:"aliases"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, 400, map[string]any{"error": esError("parse_exception", err.Error()), "status": 400})
			return
		}
	}
	for a := range req.Aliases {
		if _, ok := f.indices[a]; ok || a == name {
			writeJSON(w, 400, map[string]any{"error": esError("invalid_alias_name_exception",
				"Invalid alias name ["+a+"]: an index or data stream exists with the same name as the alias"), "status": 400})
			return
		}
	}
	f.indices[name] = map[string]*doc{}
	for a := range req.Aliases {
		f.aliases[a] = name
	}
	writeJSON(w, 200, map[string]any{"acknowledged": true, "index": name})
}

// getAlias answers GET /_alias/NAME as Elasticsearch does: the indexes the
// alias points at, with the alias, or 404.
func (f *Server) getAlias(w http.ResponseWriter, name string) {
	ix, ok := f.aliases[name]
	if !ok {
		writeJSON(w, 404, map[string]any{"error": "alias [" + name + "] missing", "status": 404})
		return
	}
	writeJSON(w, 200, map[string]any{ix: map[string]any{"aliases": map[string]any{name: map[string]any{}}}})
}
