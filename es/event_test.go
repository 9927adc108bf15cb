package es_test

import (
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func TestPosition_Compare(t *testing.T) {
	p := func(c, pr uint64) es.Position { return es.Position{Commit: c, Prepare: pr} }
	cases := []struct {
		a, b es.Position
		want int
	}{
		{p(0, 0), p(0, 0), 0},
		{p(0, 0), p(1, 1), -1},
		{p(1, 1), p(0, 0), 1},
		{p(5, 3), p(5, 3), 0},
		{p(5, 3), p(5, 4), -1},
		{p(5, 4), p(5, 3), 1},
		// Commit decides before Prepare.
		{p(4, 9), p(5, 1), -1},
		{p(5, 1), p(4, 9), 1},
		{p(0, 1), p(1, 0), -1},
		{p(^uint64(0), 0), p(^uint64(0)-1, ^uint64(0)), 1},
	}
	for _, tc := range cases {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%s.Compare(%s) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
		if got := tc.a.Before(tc.b); got != (tc.want < 0) {
			t.Errorf("%s.Before(%s) = %v; want %v", tc.a, tc.b, got, tc.want < 0)
		}
	}
}

func TestPosition_IsZeroAndString(t *testing.T) {
	if !(es.Position{}).IsZero() || (es.Position{Prepare: 1}).IsZero() || (es.Position{Commit: 1}).IsZero() {
		t.Fatal("IsZero is true only for the zero Position")
	}
	if s := (es.Position{Commit: 12, Prepare: 7}).String(); s != "12/7" {
		t.Fatalf("String() = %q; want 12/7", s)
	}
}

func TestFilter_Match(t *testing.T) {
	ev := func(stream, typ string) *es.Event { return &es.Event{StreamID: stream, Type: typ} }
	cases := []struct {
		name   string
		filter es.Filter
		event  *es.Event
		want   bool
	}{
		{"zero filter matches anything", es.Filter{}, ev("order-1", "A"), true},
		{"zero filter matches empty", es.Filter{}, ev("", ""), true},
		{"prefix matches", es.Filter{StreamPrefixes: []string{"order-"}}, ev("order-1", "A"), true},
		{"prefix equal to the stream", es.Filter{StreamPrefixes: []string{"order-1"}}, ev("order-1", "A"), true},
		{"prefix is case-sensitive", es.Filter{StreamPrefixes: []string{"Order-"}}, ev("order-1", "A"), false},
		{"prefix does not match", es.Filter{StreamPrefixes: []string{"order-"}}, ev("orders", "A"), false},
		{"one of several prefixes", es.Filter{StreamPrefixes: []string{"user-", "order-"}}, ev("order-1", "A"), true},
		{"none of several prefixes", es.Filter{StreamPrefixes: []string{"user-", "cart-"}}, ev("order-1", "A"), false},
		{"empty prefix matches all", es.Filter{StreamPrefixes: []string{""}}, ev("x", "A"), true},
		{"unicode prefix", es.Filter{StreamPrefixes: []string{"訂單-"}}, ev("訂單-😀", "A"), true},
		{"type matches", es.Filter{EventTypes: []string{"A"}}, ev("s", "A"), true},
		{"type is exact, not a prefix", es.Filter{EventTypes: []string{"shop.order"}}, ev("s", "shop.order.v1.Placed"), false},
		{"one of several types", es.Filter{EventTypes: []string{"B", "A"}}, ev("s", "A"), true},
		{"none of several types", es.Filter{EventTypes: []string{"B", "C"}}, ev("s", "A"), false},
		{"prefix and type both match", es.Filter{StreamPrefixes: []string{"o"}, EventTypes: []string{"A"}}, ev("o1", "A"), true},
		{"prefix matches, type does not", es.Filter{StreamPrefixes: []string{"o"}, EventTypes: []string{"B"}}, ev("o1", "A"), false},
		{"type matches, prefix does not", es.Filter{StreamPrefixes: []string{"x"}, EventTypes: []string{"A"}}, ev("o1", "A"), false},
		{"empty slices are no constraint", es.Filter{StreamPrefixes: []string{}, EventTypes: []string{}}, ev("o1", "A"), true},
	}
	for _, tc := range cases {
		if got := tc.filter.Match(tc.event); got != tc.want {
			t.Errorf("%s: %+v.Match(%q, %q) = %v; want %v", tc.name, tc.filter, tc.event.StreamID, tc.event.Type, got, tc.want)
		}
	}
}

func TestMetadata_IsZero(t *testing.T) {
	if !(es.Metadata{}).IsZero() || !(es.Metadata{Extra: map[string]string{}}).IsZero() {
		t.Fatal("empty Metadata is not zero")
	}
	for _, m := range []es.Metadata{
		{CorrelationID: "x"}, {CausationID: "x"}, {TenantID: "x"}, {UserID: "x"},
		{TraceParent: "x"}, {TraceState: "x"}, {Extra: map[string]string{"k": ""}},
	} {
		if m.IsZero() {
			t.Errorf("%+v is zero", m)
		}
	}
}
