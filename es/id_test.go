package es_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
)

func TestNewID_Version7(t *testing.T) {
	before := time.Now().UnixMilli()
	id := es.NewID()
	after := time.Now().UnixMilli()
	if v := id[6] >> 4; v != 7 {
		t.Fatalf("%s has version %d; want 7", id, v)
	}
	if variant := id[8] >> 6; variant != 0b10 {
		t.Fatalf("%s has variant bits %02b; want 10 (RFC 9562)", id, variant)
	}
	var ts [8]byte
	copy(ts[2:], id[:6])
	if ms := int64(binary.BigEndian.Uint64(ts[:])); ms < before || ms > after {
		t.Fatalf("%s carries the time %d ms; want between %d and %d", id, ms, before, after)
	}
	if id.IsZero() {
		t.Fatal("NewID returned the zero ID")
	}
	if s := id.String(); s[14] != '7' || !strings.ContainsRune("89ab", rune(s[19])) {
		t.Fatalf("%s does not read as a version 7 UUID", s)
	}
}

func TestNewID_Unique(t *testing.T) {
	seen := make(map[es.ID]bool, 10000)
	for range 10000 {
		id := es.NewID()
		if seen[id] {
			t.Fatalf("NewID returned %s twice", id)
		}
		seen[id] = true
	}
}

func TestNewID_OrderedOverTime(t *testing.T) {
	prev := es.NewID()
	for range 5 {
		time.Sleep(2 * time.Millisecond)
		id := es.NewID()
		if bytes.Compare(prev[:], id[:]) >= 0 || prev.String() >= id.String() {
			t.Fatalf("%s, made later, does not sort after %s", id, prev)
		}
		prev = id
	}
}

func TestID_StringParseRoundTrip(t *testing.T) {
	for range 100 {
		id := es.NewID()
		s := id.String()
		if len(s) != 36 || s != strings.ToLower(s) {
			t.Fatalf("String() = %q; want 36 lower-case characters", s)
		}
		got, err := es.ParseID(s)
		if err != nil || got != id {
			t.Fatalf("ParseID(%q) = %s, %v; want %s", s, got, err, id)
		}
		if got, err := es.ParseID(strings.ToUpper(s)); err != nil || got != id {
			t.Fatalf("ParseID(upper case %q) = %s, %v; want %s", s, got, err, id)
		}
	}
	const s = "01890a5d-ac96-774b-bcce-b302099a8057"
	id := es.MustParseID(s)
	if id.String() != s {
		t.Fatalf("MustParseID(%q).String() = %q", s, id)
	}
	if (es.ID{}).String() != "00000000-0000-0000-0000-000000000000" || !(es.ID{}).IsZero() {
		t.Fatal("the zero ID does not print as the nil UUID")
	}
}

func TestParseID_Errors(t *testing.T) {
	for _, s := range []string{
		"",
		"01890a5d-ac96-774b-bcce-b302099a805",    // short
		"01890a5d-ac96-774b-bcce-b302099a80577",  // long
		"01890a5dac96-774b-bcce-b302099a8057-",   // dashes misplaced
		"01890a5d_ac96_774b_bcce_b302099a8057",   // not dashes
		"01890a5d-ac96-774b-bcce-b302099a805g",   // not hex
		"{01890a5d-ac96-774b-bcce-b302099a8057}", // braces
		"01890a5dac96774bbcceb302099a8057",       // no dashes
		"01890a5d-ac96-774b-bcce-b302099a80 7",   // space
		"+1890a5d-ac96-774b-bcce-b302099a8057",   // sign
	} {
		id, err := es.ParseID(s)
		if err == nil {
			t.Errorf("ParseID(%q) = %s; want an error", s, id)
			continue
		}
		if !id.IsZero() {
			t.Errorf("ParseID(%q) returned %s with its error; want the zero ID", s, id)
		}
		if !strings.Contains(err.Error(), "event ID") || !strings.Contains(err.Error(), `"`+s+`"`) {
			t.Errorf("ParseID(%q): %v; want the message to name the input", s, err)
		}
	}
}

func TestMustParseID_Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParseID of a malformed ID did not panic")
		}
	}()
	es.MustParseID("nope")
}

func TestID_Text(t *testing.T) {
	id := es.NewID()
	b, err := json.Marshal(map[string]es.ID{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"` + id.String() + `"}`; string(b) != want {
		t.Fatalf("json.Marshal = %s; want %s", b, want)
	}
	var got map[string]es.ID
	if err := json.Unmarshal(b, &got); err != nil || got["id"] != id {
		t.Fatalf("json.Unmarshal = %v, %v; want %s", got, err, id)
	}
	var bad es.ID
	if err := bad.UnmarshalText([]byte("nope")); err == nil {
		t.Fatal("UnmarshalText accepted a malformed ID")
	}
}
