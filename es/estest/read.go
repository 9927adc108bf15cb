package estest

import (
	"context"
	"errors"
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func (c *suite) testReadStream(t *testing.T) {
	// seed appends 10 events to "read-1", interleaved with another stream.
	seed := func(t *testing.T, s es.Store) []es.EventData {
		evs := Events("Read", 10)
		for i := 0; i < len(evs); i += 3 {
			mustAppend(t, s, "read-1", es.Any, evs[i:min(i+3, len(evs))]...)
			mustAppend(t, s, "read-2", es.Any, Events("Noise", 2)...)
		}
		return evs
	}
	cases := []struct {
		name  string
		from  int64
		dir   es.Direction
		limit int
		want  []int64 // versions
	}{
		{"Forward_whole_stream", es.StreamStart, es.Forward, 0, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"Backward_whole_stream", es.StreamEnd, es.Backward, 0, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"Forward_from_version", 4, es.Forward, 0, []int64{4, 5, 6, 7, 8, 9, 10}},
		{"Backward_from_version", 4, es.Backward, 0, []int64{4, 3, 2, 1}},
		{"Forward_with_limit", es.StreamStart, es.Forward, 3, []int64{1, 2, 3}},
		{"Backward_with_limit", es.StreamEnd, es.Backward, 3, []int64{10, 9, 8}},
		{"Forward_from_version_with_limit", 6, es.Forward, 2, []int64{6, 7}},
		{"Backward_from_version_with_limit", 6, es.Backward, 2, []int64{6, 5}},
		{"Forward_from_last_version", 10, es.Forward, 0, []int64{10}},
		{"Backward_from_past_the_end", 25, es.Backward, 2, []int64{10, 9}},
		{"Limit_above_length", es.StreamStart, es.Forward, 100, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		// A repository that loaded a snapshot at the stream's version reads
		// the tail from the next version: that is empty, not an error.
		{"Forward_from_past_the_end_yields_nothing", 11, es.Forward, 0, nil},
	}
	for _, tc := range cases {
		c.run(t, tc.name, func(t *testing.T, s es.Store) {
			evs := seed(t, s)
			got, err := Collect(s.ReadStream(t.Context(), "read-1", tc.from, tc.dir, tc.limit))
			if err != nil {
				t.Fatalf("ReadStream(from %d, %s, limit %d): %v", tc.from, tc.dir, tc.limit, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ReadStream(from %d, %s, limit %d) = %s; want %v", tc.from, tc.dir, tc.limit, versions(got), tc.want)
			}
			for i, e := range got {
				wantEvent(t, e, "read-1", tc.want[i], evs[tc.want[i]-1])
			}
			if tc.dir == es.Backward {
				for i := 1; i < len(got); i++ {
					if !got[i].Position.Before(got[i-1].Position) {
						t.Fatalf("backward read: version %d at %s is not before version %d at %s",
							got[i].Version, got[i].Position, got[i-1].Version, got[i-1].Position)
					}
				}
			} else {
				wantIncreasing(t, "forward read", got)
			}
		})
	}
	c.run(t, "Stop_early", func(t *testing.T, s es.Store) {
		seed(t, s)
		n := 0
		for _, err := range s.ReadStream(t.Context(), "read-1", es.StreamStart, es.Forward, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				break
			}
		}
	})
	c.run(t, "Not_found", func(t *testing.T, s es.Store) {
		mustAppend(t, s, "read-2", es.Any, Events("Noise", 1)...)
		wantNotFound(t, s, "read-1")
		got, err := Collect(s.ReadStream(t.Context(), "read-1", es.StreamEnd, es.Backward, 1))
		if !errors.Is(err, es.ErrStreamNotFound) || len(got) > 0 {
			t.Fatalf("backward ReadStream of a missing stream = %d events, %v; want es.ErrStreamNotFound", len(got), err)
		}
	})
	for _, reuse := range []bool{false, true} {
		name := "Deleted_stream_not_found"
		var opts []es.DeleteOption
		if reuse {
			name = "Stream_deleted_with_reuse_not_found"
			opts = append(opts, es.AllowReuse())
		}
		c.run(t, name, func(t *testing.T, s es.Store) {
			seed(t, s)
			if err := s.DeleteStream(t.Context(), "read-1", es.Any, opts...); err != nil {
				t.Fatalf("DeleteStream: %v", err)
			}
			wantNotFound(t, s, "read-1")
			got, err := Collect(s.ReadStream(t.Context(), "read-1", es.StreamEnd, es.Backward, 0))
			if !errors.Is(err, es.ErrStreamNotFound) || len(got) > 0 {
				t.Fatalf("backward ReadStream of a deleted stream = %d events, %v; want es.ErrStreamNotFound", len(got), err)
			}
		})
	}
	c.run(t, "Cancelled_context", func(t *testing.T, s es.Store) {
		seed(t, s)
		got, err := Collect(s.ReadStream(cancelled(), "read-1", es.StreamStart, es.Forward, 0))
		if !errors.Is(err, context.Canceled) || len(got) > 0 {
			t.Fatalf("ReadStream with a cancelled context = %d events, %v; want only an error matching context.Canceled", len(got), err)
		}
	})
}

func (c *suite) testReadAll(t *testing.T) {
	// seed appends 12 events over 3 streams and returns the global log.
	seed := func(t *testing.T, s es.Store) []es.Event {
		for i := range 4 {
			for _, stream := range []string{"all-a", "all-b", "all-c"} {
				mustAppend(t, s, stream, es.Exact(int64(i)), Events("All", 1)...)
			}
		}
		all := readAll(t, s)
		if len(all) != 12 {
			t.Fatalf("ReadAll = %d events; want 12", len(all))
		}
		return all
	}
	c.run(t, "Empty_store", func(t *testing.T, s es.Store) {
		if got := readAll(t, s); len(got) != 0 {
			t.Fatalf("ReadAll of an empty store = %d events", len(got))
		}
		head, err := s.Head(t.Context())
		if err != nil || !head.IsZero() {
			t.Fatalf("Head of an empty store = %s, %v; want the zero position", head, err)
		}
	})
	c.run(t, "From_start_in_position_order", func(t *testing.T, s es.Store) {
		all := seed(t, s)
		wantIncreasing(t, "ReadAll", all)
		next := map[string]int64{}
		for _, e := range all {
			next[e.StreamID]++
			if e.Version != next[e.StreamID] {
				t.Fatalf("ReadAll yields version %d of %q after version %d", e.Version, e.StreamID, next[e.StreamID]-1)
			}
		}
	})
	c.run(t, "After_a_middle_position", func(t *testing.T, s es.Store) {
		all := seed(t, s)
		got, err := Collect(s.ReadAll(t.Context(), all[4].Position, 0))
		if err != nil {
			t.Fatal(err)
		}
		wantSame(t, "ReadAll after the 5th event's position", got, all[5:])
	})
	c.run(t, "After_the_last_position", func(t *testing.T, s es.Store) {
		all := seed(t, s)
		got, err := Collect(s.ReadAll(t.Context(), all[len(all)-1].Position, 0))
		if err != nil || len(got) != 0 {
			t.Fatalf("ReadAll after the last position = %d events, %v; want none", len(got), err)
		}
	})
	c.run(t, "With_limit", func(t *testing.T, s es.Store) {
		all := seed(t, s)
		got, err := Collect(s.ReadAll(t.Context(), es.Position{}, 5))
		if err != nil {
			t.Fatal(err)
		}
		wantSame(t, "ReadAll limit 5", got, all[:5])
		got, err = Collect(s.ReadAll(t.Context(), all[2].Position, 4))
		if err != nil {
			t.Fatal(err)
		}
		wantSame(t, "ReadAll after the 3rd event, limit 4", got, all[3:7])
	})
	c.run(t, "Paging_by_last_position_reads_everything", func(t *testing.T, s es.Store) {
		all := seed(t, s)
		var got []es.Event
		var after es.Position
		for {
			page, err := Collect(s.ReadAll(t.Context(), after, 5))
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Position
		}
		wantSame(t, "ReadAll in pages of 5", got, all)
	})
	c.run(t, "Stop_early", func(t *testing.T, s es.Store) {
		seed(t, s)
		for _, err := range s.ReadAll(t.Context(), es.Position{}, 0) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	})
	c.run(t, "Head_is_the_last_position", func(t *testing.T, s es.Store) {
		all := seed(t, s)
		head, err := s.Head(t.Context())
		if err != nil || head != all[len(all)-1].Position {
			t.Fatalf("Head = %s, %v; want the last event's position %s", head, err, all[len(all)-1].Position)
		}
		res := mustAppend(t, s, "all-d", es.NoStream, Events("All", 2)...)
		settle(t, s)
		if head, err = s.Head(t.Context()); err != nil || head != res.Position {
			t.Fatalf("Head after an append = %s, %v; want the append's position %s", head, err, res.Position)
		}
	})
	c.run(t, "Cancelled_context", func(t *testing.T, s es.Store) {
		seed(t, s)
		got, err := Collect(s.ReadAll(cancelled(), es.Position{}, 0))
		if !errors.Is(err, context.Canceled) || len(got) > 0 {
			t.Fatalf("ReadAll with a cancelled context = %d events, %v; want only an error matching context.Canceled", len(got), err)
		}
	})
}

// wantSame checks that got holds the events of want, by ID and position.
func wantSame(t *testing.T, what string, got, want []es.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %d events; want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Position != want[i].Position {
			t.Fatalf("%s: event %d is %s at %s; want %s at %s", what, i, got[i].ID, got[i].Position, want[i].ID, want[i].Position)
		}
	}
}

func (c *suite) testDeleteStream(t *testing.T) {
	c.run(t, "Wrong_expected_version", func(t *testing.T, s es.Store) {
		evs := Events("Placed", 3)
		mustAppend(t, s, "del-1", es.NoStream, evs...)
		for _, exp := range []es.ExpectedVersion{es.Exact(2), es.Exact(4), es.NoStream} {
			err := s.DeleteStream(t.Context(), "del-1", exp)
			var ce *es.ConcurrencyError
			if !errors.As(err, &ce) || !errors.Is(err, es.ErrConcurrency) {
				t.Fatalf("DeleteStream(%s) of a stream at version 3: %v; want a *es.ConcurrencyError", exp, err)
			}
			if ce.Stream != "del-1" || ce.Expected != exp || ce.Actual != 3 {
				t.Fatalf("ConcurrencyError{%q, %s, %d}; want {%q, %s, 3}", ce.Stream, ce.Expected, ce.Actual, "del-1", exp)
			}
		}
		wantStream(t, s, "del-1", 1, evs)
		mustAppend(t, s, "del-1", es.Exact(3), Events("Shipped", 1)...)
	})
	for _, exp := range []es.ExpectedVersion{es.Exact(3), es.StreamExists, es.Any} {
		c.run(t, "Deletes_with_expected_"+exp.String(), func(t *testing.T, s es.Store) {
			mustAppend(t, s, "del-1", es.NoStream, Events("Placed", 3)...)
			mustAppend(t, s, "del-2", es.NoStream, Events("Placed", 1)...)
			if err := s.DeleteStream(t.Context(), "del-1", exp); err != nil {
				t.Fatalf("DeleteStream(%s): %v", exp, err)
			}
			wantNotFound(t, s, "del-1")
			if got := readStream(t, s, "del-2"); len(got) != 1 {
				t.Fatalf("deleting del-1 changed del-2 to %d events", len(got))
			}
			for _, mode := range []es.ExpectedVersion{es.Any, es.NoStream, es.Exact(3)} {
				if _, err := s.Append(t.Context(), "del-1", mode, Events("Again", 1)...); !errors.Is(err, es.ErrStreamDeleted) {
					t.Fatalf("Append(%s) to a stream deleted without reuse: %v; want es.ErrStreamDeleted", mode, err)
				}
			}
			wantNotFound(t, s, "del-1")
		})
	}
	c.run(t, "Events_stay_in_the_global_log", func(t *testing.T, s es.Store) {
		mustAppend(t, s, "del-1", es.NoStream, Events("Placed", 3)...)
		before := readAll(t, s)
		if err := s.DeleteStream(t.Context(), "del-1", es.Exact(3)); err != nil {
			t.Fatal(err)
		}
		wantSame(t, "ReadAll after DeleteStream", readAll(t, s), before)
	})
	c.run(t, "Reuse_continues_versions", func(t *testing.T, s es.Store) {
		old := Events("Placed", 3)
		mustAppend(t, s, "del-1", es.NoStream, old...)
		if err := s.DeleteStream(t.Context(), "del-1", es.Exact(3), es.AllowReuse()); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, s, "del-1")
		evs := Events("Reborn", 2)
		res := mustAppend(t, s, "del-1", es.NoStream, evs...)
		// Versions continue after the deleted ones, so (stream, version)
		// names one event forever; a store may spend versions on its
		// deletion record (pgstore spends one).
		first := res.Version - 1
		if first <= 3 {
			t.Fatalf("first append after a delete with reuse returned version %d; want versions after the deleted version 3", res.Version)
		}
		more := Events("Grown", 1)
		mustAppend(t, s, "del-1", es.Exact(res.Version), more...)
		wantStream(t, s, "del-1", first, append(evs, more...))
		got, err := Collect(s.ReadStream(t.Context(), "del-1", es.StreamEnd, es.Backward, 0))
		if err != nil || len(got) != 3 || got[2].Version != first {
			t.Fatalf("backward read after reuse = %s, %v; want versions %d %d %d", versions(got), err, first+2, first+1, first)
		}
		// The old events are still in the global log, before the new ones.
		all := readAll(t, s)
		if len(all) != 6 || all[0].ID != old[0].ID || all[5].ID != more[0].ID {
			t.Fatalf("ReadAll after reuse = %d events; want the 3 old ones then the 3 new ones", len(all))
		}
	})
	c.run(t, "Cancelled_context", func(t *testing.T, s es.Store) {
		evs := Events("Placed", 2)
		mustAppend(t, s, "del-1", es.NoStream, evs...)
		if err := s.DeleteStream(cancelled(), "del-1", es.Any); !errors.Is(err, context.Canceled) {
			t.Fatalf("DeleteStream with a cancelled context: %v; want an error matching context.Canceled", err)
		}
		wantStream(t, s, "del-1", 1, evs)
	})
}

func (c *suite) testTruncateBefore(t *testing.T) {
	c.run(t, "Removes_older_events", func(t *testing.T, s es.Store) {
		evs := Events("Kept", 5)
		mustAppend(t, s, "trunc-1", es.NoStream, evs[:2]...)
		mustAppend(t, s, "trunc-2", es.NoStream, Events("Other", 2)...)
		mustAppend(t, s, "trunc-1", es.Exact(2), evs[2:]...)
		if err := s.TruncateBefore(t.Context(), "trunc-1", 3); err != nil {
			t.Fatalf("TruncateBefore(3): %v", err)
		}
		wantStream(t, s, "trunc-1", 3, evs[2:])
		back, err := Collect(s.ReadStream(t.Context(), "trunc-1", es.StreamEnd, es.Backward, 0))
		if err != nil || len(back) != 3 || back[2].Version != 3 {
			t.Fatalf("backward read after truncation = %s, %v; want versions 5 4 3", versions(back), err)
		}
		got, err := Collect(s.ReadStream(t.Context(), "trunc-1", 2, es.Backward, 0))
		if err != nil || len(got) != 0 {
			t.Fatalf("backward read from a truncated version = %s, %v; want nothing", versions(got), err)
		}
		all := ids(readAll(t, s))
		if len(all) != 5 || all[evs[0].ID] || all[evs[1].ID] || !all[evs[2].ID] {
			t.Fatalf("ReadAll after truncation has %d events; want 5, without the truncated ones", len(all))
		}
		// The version does not change: appends go on from 5.
		if _, err := s.Append(t.Context(), "trunc-1", es.Exact(3), Events("Late", 1)...); !errors.Is(err, es.ErrConcurrency) {
			t.Fatalf("Append(Exact(3)) after truncation: %v; want es.ErrConcurrency (the stream is still at 5)", err)
		}
		more := Events("Later", 1)
		res := mustAppend(t, s, "trunc-1", es.Exact(5), more...)
		if res.Version != 6 {
			t.Fatalf("Append after truncation returned version %d; want 6", res.Version)
		}
		wantStream(t, s, "trunc-1", 3, append(evs[2:5:5], more...))
	})
	c.run(t, "Before_the_first_version_removes_nothing", func(t *testing.T, s es.Store) {
		evs := Events("Kept", 3)
		mustAppend(t, s, "trunc-1", es.NoStream, evs...)
		if err := s.TruncateBefore(t.Context(), "trunc-1", 1); err != nil {
			t.Fatalf("TruncateBefore(1): %v", err)
		}
		wantStream(t, s, "trunc-1", 1, evs)
	})
	c.run(t, "Twice", func(t *testing.T, s es.Store) {
		evs := Events("Kept", 6)
		mustAppend(t, s, "trunc-1", es.NoStream, evs...)
		for _, before := range []int64{3, 2, 5} {
			if err := s.TruncateBefore(t.Context(), "trunc-1", before); err != nil {
				t.Fatalf("TruncateBefore(%d): %v", before, err)
			}
		}
		wantStream(t, s, "trunc-1", 5, evs[4:])
		if n := len(readAll(t, s)); n != 2 {
			t.Fatalf("ReadAll after truncating before 5 = %d events; want 2", n)
		}
	})
}
