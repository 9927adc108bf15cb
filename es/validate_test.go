package es_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func TestValidateStreamID(t *testing.T) {
	for _, ok := range []string{"a", "order-1", "訂單-😀-ünï", strings.Repeat("x", es.MaxStreamIDLength), "with space", "$all"} {
		if err := es.ValidateStreamID(ok); err != nil {
			t.Errorf("ValidateStreamID(%.40q): %v", ok, err)
		}
	}
	cases := []struct {
		name, stream, mention string
	}{
		{"empty", "", "empty"},
		{"too long", strings.Repeat("x", es.MaxStreamIDLength+1), "1025 bytes"},
		{"invalid UTF-8", "order-\xff", `"order-\xff"`},
		{"NUL byte", "order\x00-1", "NUL"},
	}
	for _, tc := range cases {
		err := es.ValidateStreamID(tc.stream)
		if !errors.Is(err, es.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: ValidateStreamID: %v; want ErrInvalidArgument mentioning %s", tc.name, err, tc.mention)
		}
	}
}

func TestValidateAppend(t *testing.T) {
	good := func(n int) []es.EventData {
		evs := make([]es.EventData, n)
		for i := range evs {
			evs[i] = es.EventData{ID: es.NewID(), Type: "shop.order.v1.Placed", Data: []byte("x")}
		}
		return evs
	}
	spoil := func(i int, f func(*es.EventData)) []es.EventData {
		evs := good(3)
		f(&evs[i])
		return evs
	}
	lim := es.Limits{MaxEvents: 5, MaxBytes: 100}
	shared := es.NewID()

	valid := []struct {
		name     string
		expected es.ExpectedVersion
		events   []es.EventData
		lim      es.Limits
	}{
		{"no events", es.Any, nil, lim},
		{"one event", es.NoStream, good(1), lim},
		{"at MaxEvents", es.StreamExists, good(5), lim},
		{"exact version", es.Exact(9), good(2), lim},
		{"zero IDs may repeat", es.Any, []es.EventData{{Type: "A", Data: []byte{}}, {Type: "A", Data: []byte{}}}, lim},
		{"empty data", es.Any, []es.EventData{{Type: "A", Data: []byte{}}}, lim},
		{"at MaxBytes", es.Any, []es.EventData{{Type: "A", Data: make([]byte, 90), Metadata: es.Metadata{TenantID: "0123456789"}}}, lim},
		{"zero limits mean none", es.Any, good(50), es.Limits{}},
		{"metadata", es.Any, []es.EventData{{Type: "A", Data: []byte{}, Metadata: es.Metadata{
			CorrelationID: "c", Extra: map[string]string{"k": "v", "empty": ""}}}}, lim},
	}
	for _, tc := range valid {
		if err := es.ValidateAppend("order-1", tc.expected, tc.events, tc.lim); err != nil {
			t.Errorf("%s: ValidateAppend: %v; want nil", tc.name, err)
		}
	}

	invalid := []struct {
		name     string
		stream   string
		expected es.ExpectedVersion
		events   []es.EventData
		tooLarge bool
		mentions []string
	}{
		{"empty stream", "", es.Any, good(1), false, []string{"stream ID is empty"}},
		{"stream with NUL", "a\x00b", es.Any, good(1), false, []string{"NUL"}},
		{"expected -3", "order-1", es.ExpectedVersion(-3), good(1), false, []string{`"order-1"`, "-3"}},
		{"expected -7", "order-1", es.ExpectedVersion(-7), good(1), false, []string{`"order-1"`, "-7"}},
		{"over MaxEvents", "order-1", es.Any, good(6), true, []string{`"order-1"`, "6 events", "limit of 5"}},
		{"over MaxBytes", "order-1", es.Any, []es.EventData{{Type: "A", Data: make([]byte, 60)}, {Type: "A", Data: make([]byte, 41)}}, true,
			[]string{`"order-1"`, "101 bytes", "limit of 100"}},
		{"metadata counts toward MaxBytes", "order-1", es.Any, []es.EventData{{Type: "A", Data: make([]byte, 95), Metadata: es.Metadata{Extra: map[string]string{"key": "vvv"}}}}, true,
			[]string{"101 bytes"}},
		{"empty type", "order-1", es.Any, spoil(1, func(e *es.EventData) { e.Type = "" }), false, []string{`"order-1"`, "event 1", "empty type"}},
		{"type with NUL", "order-1", es.Any, spoil(2, func(e *es.EventData) { e.Type = "A\x00" }), false, []string{`"order-1"`, "event 2"}},
		{"type not UTF-8", "order-1", es.Any, spoil(0, func(e *es.EventData) { e.Type = "\xff" }), false, []string{`"order-1"`, "event 0"}},
		{"nil data", "order-1", es.Any, spoil(2, func(e *es.EventData) { e.Data = nil }), false, []string{`"order-1"`, "event 2", "nil data"}},
		{"duplicate IDs", "order-1", es.Any, []es.EventData{{ID: shared, Type: "A", Data: []byte{}}, {Type: "B", Data: []byte{}}, {ID: shared, Type: "C", Data: []byte{}}}, false,
			[]string{`"order-1"`, "events 0 and 2", shared.String()}},
		{"reserved metadata key", "order-1", es.Any, spoil(1, func(e *es.EventData) { e.Metadata.Extra = map[string]string{"tenantId": "x"} }), false,
			[]string{`"order-1"`, "event 1", `"tenantId"`}},
		{"empty metadata key", "order-1", es.Any, spoil(0, func(e *es.EventData) { e.Metadata.Extra = map[string]string{"": "x"} }), false,
			[]string{"event 0", "empty key"}},
		{"metadata value with NUL", "order-1", es.Any, spoil(2, func(e *es.EventData) { e.Metadata.Extra = map[string]string{"k": "a\x00"} }), false,
			[]string{"event 2", `"k"`}},
		{"metadata field not UTF-8", "order-1", es.Any, spoil(0, func(e *es.EventData) { e.Metadata.UserID = "\xff" }), false,
			[]string{"event 0", "userId"}},
	}
	for _, tc := range invalid {
		err := es.ValidateAppend(tc.stream, tc.expected, tc.events, lim)
		if !errors.Is(err, es.ErrInvalidArgument) {
			t.Errorf("%s: ValidateAppend: %v; want an error matching ErrInvalidArgument", tc.name, err)
			continue
		}
		if errors.Is(err, es.ErrBatchTooLarge) != tc.tooLarge {
			t.Errorf("%s: ValidateAppend: %v; matches ErrBatchTooLarge: %v, want %v", tc.name, err, !tc.tooLarge, tc.tooLarge)
		}
		for _, m := range tc.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: ValidateAppend: %q does not mention %s", tc.name, err, m)
			}
		}
	}
}
