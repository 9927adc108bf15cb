package es_test

import (
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func TestExpectedVersion_Matches(t *testing.T) {
	cases := []struct {
		expected es.ExpectedVersion
		actual   int64
		want     bool
	}{
		{es.Any, 0, true},
		{es.Any, 1, true},
		{es.Any, 1 << 40, true},
		{es.NoStream, 0, true},
		{es.NoStream, 1, false},
		{es.StreamExists, 0, false},
		{es.StreamExists, 1, true},
		{es.StreamExists, 99, true},
		{es.Exact(0), 0, true},
		{es.Exact(1), 1, true},
		{es.Exact(1), 0, false},
		{es.Exact(1), 2, false},
		{es.Exact(7), 7, true},
		{es.Exact(7), 6, false},
		{es.ExpectedVersion(-7), 0, false},
		{es.ExpectedVersion(-7), 7, false},
	}
	for _, tc := range cases {
		if got := tc.expected.Matches(tc.actual); got != tc.want {
			t.Errorf("%s.Matches(%d) = %v; want %v", tc.expected, tc.actual, got, tc.want)
		}
	}
}

func TestExpectedVersion_String(t *testing.T) {
	cases := []struct {
		expected es.ExpectedVersion
		want     string
	}{
		{es.Any, "any"},
		{es.NoStream, "no stream"},
		{es.Exact(0), "no stream"},
		{es.StreamExists, "stream exists"},
		{es.Exact(1), "version 1"},
		{es.Exact(12345), "version 12345"},
		{es.ExpectedVersion(-3), "invalid expected version -3"},
		{es.ExpectedVersion(-7), "invalid expected version -7"},
	}
	for _, tc := range cases {
		if got := tc.expected.String(); got != tc.want {
			t.Errorf("ExpectedVersion(%d).String() = %q; want %q", int64(tc.expected), got, tc.want)
		}
	}
}

func TestExpectedVersion_Valid(t *testing.T) {
	for _, e := range []es.ExpectedVersion{es.Any, es.NoStream, es.StreamExists, es.Exact(1), es.Exact(1 << 50)} {
		if !e.Valid() {
			t.Errorf("%s is not Valid", e)
		}
	}
	for _, e := range []es.ExpectedVersion{-3, -7, -1 << 62} {
		if e.Valid() {
			t.Errorf("%d is Valid", int64(e))
		}
	}
}

func TestDirection_String(t *testing.T) {
	if es.Forward.String() != "forward" || es.Backward.String() != "backward" {
		t.Fatalf("got %q and %q", es.Forward, es.Backward)
	}
}

func TestApplyDeleteOptions(t *testing.T) {
	if o := es.ApplyDeleteOptions(nil); o.AllowReuse {
		t.Fatal("no options allow reuse")
	}
	if o := es.ApplyDeleteOptions([]es.DeleteOption{es.AllowReuse()}); !o.AllowReuse {
		t.Fatal("AllowReuse does not allow reuse")
	}
}
