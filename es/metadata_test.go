package es_test

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/esgen-dev/esgen/es"
)

// fromMap builds the Metadata that a flat JSON object of strings stands for,
// by the key names of the named fields.
func fromMap(kv map[string]string) es.Metadata {
	var m es.Metadata
	for k, v := range kv {
		switch k {
		case "$correlationId":
			m.CorrelationID = v
		case "$causationId":
			m.CausationID = v
		case "tenantId":
			m.TenantID = v
		case "userId":
			m.UserID = v
		case "traceparent":
			m.TraceParent = v
		case "tracestate":
			m.TraceState = v
		default:
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k] = v
		}
	}
	return m
}

func metadataEqual(a, b es.Metadata) bool {
	return a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID &&
		a.TenantID == b.TenantID && a.UserID == b.UserID &&
		a.TraceParent == b.TraceParent && a.TraceState == b.TraceState &&
		maps.Equal(a.Extra, b.Extra)
}

var fullMetadata = es.Metadata{
	CorrelationID: "0190a0e4-7b4c-7c2e-9a8e-3f1f2d7c9b01",
	CausationID:   "cmd-42",
	TenantID:      "acme",
	UserID:        "ada@example.com",
	TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	TraceState:    "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
	Extra: map[string]string{
		"source":      "checkout",
		"empty":       "",
		"quote\"key":  "back\\slash",
		"ctrl":        "\x01\x1f\n\r\t\b\f",
		"unicode":     "訂單 😀 ünï \u2028",
		"html":        "<script>&</script>",
		"$custom":     "dollar",
		"json-lookin": `{"a":[1,2]}`,
	},
}

func TestMetadataJSON_RoundTrip(t *testing.T) {
	cases := map[string]es.Metadata{
		"zero":         {},
		"one field":    {TenantID: "acme"},
		"only extra":   {Extra: map[string]string{"k": "v"}},
		"every field":  fullMetadata,
		"empty extra":  {Extra: map[string]string{}},
		"empty string": {Extra: map[string]string{"k": ""}},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var got es.Metadata
			if err := got.UnmarshalJSON(b); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", b, err)
			}
			if !metadataEqual(got, m) {
				t.Fatalf("round trip of %+v through %s gave %+v", m, b, got)
			}
			// encoding/json reads the same bytes as the same key-values.
			var kv map[string]string
			if err := json.Unmarshal(b, &kv); err != nil {
				t.Fatalf("encoding/json rejects %s: %v", b, err)
			}
			if ref := fromMap(kv); !metadataEqual(ref, m) {
				t.Fatalf("encoding/json reads %s as %+v; want %+v", b, ref, m)
			}
			// And the methods are used through encoding/json.
			b2, err := json.Marshal(struct{ M es.Metadata }{m})
			if err != nil {
				t.Fatal(err)
			}
			var wrapped struct{ M es.Metadata }
			if err := json.Unmarshal(b2, &wrapped); err != nil || !metadataEqual(wrapped.M, m) {
				t.Fatalf("through encoding/json: %+v, %v; want %+v", wrapped.M, err, m)
			}
		})
	}
}

func TestMetadataJSON_ZeroIsEmptyObject(t *testing.T) {
	b, err := es.Metadata{}.MarshalJSON()
	if err != nil || string(b) != "{}" {
		t.Fatalf("zero Metadata marshals as %s, %v; want {}", b, err)
	}
	b, _ = es.Metadata{TenantID: "t", Extra: map[string]string{"k": "v"}}.MarshalJSON()
	if string(b) != `{"tenantId":"t","k":"v"}` {
		t.Fatalf("got %s", b)
	}
}

func TestMetadataJSON_Decode(t *testing.T) {
	cases := []struct {
		name, in string
		want     es.Metadata
	}{
		{"postgres jsonb output", `{"a": "b", "$causationId": "x"}`, es.Metadata{CausationID: "x", Extra: map[string]string{"a": "b"}}},
		{"jsonb with every named key", `{"userId": "u", "tenantId": "t", "tracestate": "s", "traceparent": "p", "$causationId": "c", "$correlationId": "r"}`,
			es.Metadata{CorrelationID: "r", CausationID: "c", TenantID: "t", UserID: "u", TraceParent: "p", TraceState: "s"}},
		{"whitespace everywhere", " \t\r\n{ \n\"a\" \t: \r\"b\" ,\n\"c\":\"d\" } \n", es.Metadata{Extra: map[string]string{"a": "b", "c": "d"}}},
		{"empty object", `{}`, es.Metadata{}},
		{"empty object with space", `{ }`, es.Metadata{}},
		{"null", `null`, es.Metadata{}},
		{"null with space", ` null `, es.Metadata{}},
		{"null values are skipped", `{"a": null, "tenantId": null, "b": "c"}`, es.Metadata{Extra: map[string]string{"b": "c"}}},
		{"later duplicate wins", `{"a":"1","a":"2","tenantId":"x","tenantId":"y"}`, es.Metadata{TenantID: "y", Extra: map[string]string{"a": "2"}}},
		{"escapes", `{"k\n":"\"\\\/\b\f\n\r\t\u00e9\u20ac\ud83d\ude00"}`, es.Metadata{Extra: map[string]string{"k\n": "\"\\/\b\f\n\r\t\u00e9\u20ac\U0001F600"}}},
		{"escaped key of a named field", `{"\u0074enantId":"t"}`, es.Metadata{TenantID: "t"}},
		{"lone high surrogate", `{"k":"\ud83dx"}`, es.Metadata{Extra: map[string]string{"k": "\uFFFDx"}}},
		{"lone low surrogate", `{"k":"\ude00"}`, es.Metadata{Extra: map[string]string{"k": "\uFFFD"}}},
		{"high surrogate then escape", `{"k":"\ud83d\u0041"}`, es.Metadata{Extra: map[string]string{"k": "\uFFFDA"}}},
		{"two high surrogates", `{"k":"\ud83d\ud83d\ude00"}`, es.Metadata{Extra: map[string]string{"k": "\uFFFD\U0001F600"}}},
		{"raw unicode", `{"訂單":"😀"}`, es.Metadata{Extra: map[string]string{"訂單": "😀"}}},
		{"empty key", `{"":"v"}`, es.Metadata{Extra: map[string]string{"": "v"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m es.Metadata
			if err := m.UnmarshalJSON([]byte(tc.in)); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", tc.in, err)
			}
			if !metadataEqual(m, tc.want) {
				t.Fatalf("UnmarshalJSON(%s) = %+v; want %+v", tc.in, m, tc.want)
			}
			// encoding/json agrees, reading null as "no value".
			var ref map[string]*string
			if err := json.Unmarshal([]byte(tc.in), &ref); err != nil {
				t.Fatalf("encoding/json rejects %s: %v", tc.in, err)
			}
			if want := fromRef(ref); !metadataEqual(m, want) {
				t.Fatalf("encoding/json reads %s as %+v; UnmarshalJSON as %+v", tc.in, want, m)
			}
		})
	}
}

func TestMetadataJSON_DecodeResets(t *testing.T) {
	m := fullMetadata
	if err := m.UnmarshalJSON([]byte(`{"a":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if want := (es.Metadata{Extra: map[string]string{"a": "b"}}); !metadataEqual(m, want) {
		t.Fatalf("decoding into a used Metadata gave %+v; want %+v", m, want)
	}
}

func TestMetadataJSON_DecodeErrors(t *testing.T) {
	cases := []struct {
		name, in string
		mention  string // the error must contain this
	}{
		{"number value", `{"a": 1}`, `"a"`},
		{"bool value", `{"tenantId": true}`, `"tenantId"`},
		{"object value", `{"nested": {"x": "y"}}`, `"nested"`},
		{"array value", `{"list": ["x"]}`, `"list"`},
		{"bad literal value", `{"a": nul}`, `"a"`},
		{"empty input", ``, "object"},
		{"array", `["a"]`, "object"},
		{"string", `"a"`, "object"},
		{"unterminated object", `{"a":"b"`, `"a"`},
		{"missing colon", `{"a" "b"}`, `"a"`},
		{"trailing comma", `{"a":"b",}`, "string"},
		{"unquoted key", `{a:"b"}`, "string"},
		{"trailing data", `{"a":"b"} x`, "trailing"},
		{"trailing data after null", `null x`, "trailing"},
		{"two objects", `{}{}`, "trailing"},
		{"unterminated string", `{"a":"b`, "unterminated"},
		{"unterminated escape", `{"a":"b\`, "unterminated"},
		{"bad escape", `{"a":"\x"}`, "escape"},
		{"short unicode escape", `{"a":"\u12"}`, "escape"},
		{"bad unicode escape", `{"a":"\uzzzz"}`, "escape"},
		{"signed unicode escape", `{"a":"\u+123"}`, "escape"},
		{"bad escape after high surrogate", `{"a":"\ud83d\uzzzz"}`, "escape"},
		{"control character", "{\"a\":\"b\x01\"}", "control"},
		{"control character after escape", "{\"a\":\"\\n\x01\"}", "control"},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "UTF-8"},
		{"invalid UTF-8 after escape", "{\"a\":\"\\n\xff\"}", "UTF-8"},
		{"invalid UTF-8 key", "{\"\xc3\":\"b\"}", "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m es.Metadata
			err := m.UnmarshalJSON([]byte(tc.in))
			if err == nil {
				t.Fatalf("UnmarshalJSON(%q) = %+v; want an error", tc.in, m)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("UnmarshalJSON(%q): %v; want the message to mention %s", tc.in, err, tc.mention)
			}
			if !strings.Contains(err.Error(), "metadata") {
				t.Fatalf("UnmarshalJSON(%q): %v; want the message to say it is about metadata", tc.in, err)
			}
		})
	}
}

// fromRef builds Metadata from encoding/json's reading of an object, where
// a nil value stands for JSON null.
func fromRef(ref map[string]*string) es.Metadata {
	kv := make(map[string]string, len(ref))
	for k, v := range ref {
		if v != nil {
			kv[k] = *v
		}
	}
	return fromMap(kv)
}

func FuzzMetadataJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, `null`, `{"a":"b"}`, `{"a": "b", "$causationId": "x"}`, `{"a":null}`,
		`{"a":"1","a":null}`, `{"a":null,"a":"1"}`, `{"tenantId":"x","tenantId":null}`,
		`{"k":"\ud83d\ude00"}`, `{"k":"\ud83d\u0041"}`, `{"k":"\ude00\ud83d"}`, `{"k":"\ud83d\uzzzz"}`,
		`{"k":"\"\\\/\b\f\n\r\t"}`, `{"a":1}`, `{"a":"b",}`, `{"a":"b"} `, "{\"a\":\"\xff\"}",
		`{"\u0074enantId":"t"}`, `{"":""}`, `[`, `{"a":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	b, _ := fullMetadata.MarshalJSON()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var m es.Metadata
		err := m.UnmarshalJSON(data) // must not panic
		var ref map[string]*string
		refErr := json.Unmarshal(data, &ref)
		// encoding/json replaces invalid UTF-8 with U+FFFD; Metadata
		// rejects it, as appends do.
		if refErr == nil && utf8.Valid(data) {
			if err != nil {
				t.Fatalf("UnmarshalJSON(%q): %v; encoding/json accepts it as %v", data, err, ref)
			}
			if want := fromRef(ref); !metadataEqual(m, want) {
				t.Fatalf("UnmarshalJSON(%q) = %+v; encoding/json reads %+v", data, m, want)
			}
		}
		if err != nil {
			return
		}
		if refErr != nil {
			t.Fatalf("UnmarshalJSON(%q) accepts what encoding/json rejects: %v", data, refErr)
		}
		// What was decoded encodes to JSON that both decoders read back
		// as the same Metadata.
		out, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var again es.Metadata
		if err := again.UnmarshalJSON(out); err != nil || !metadataEqual(again, m) {
			t.Fatalf("re-decoding %q (from %q) = %+v, %v; want %+v", out, data, again, err, m)
		}
		var kv map[string]string
		if err := json.Unmarshal(out, &kv); err != nil {
			t.Fatalf("encoding/json rejects %q, the encoding of %+v: %v", out, m, err)
		}
	})
}
