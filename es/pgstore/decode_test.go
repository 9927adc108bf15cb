package pgstore

import "testing"

func TestDecoderPageSize_ShrinksForLargeEvents(t *testing.T) {
	for _, tc := range []struct {
		name          string
		events, bytes int64
		max, want     int
	}{
		{"nothing seen yet: a small first page", 0, 0, 5000, firstPage},
		{"first page never above max", 0, 0, 10, 10},
		{"small events: the configured page", 1000, 200_000, 5000, 5000},
		{"1 MiB events: half the byte budget's worth", 10, 10 << 20, 5000, maxPageBytes/(1<<20+1)/2 + 1},
		{"huge events: still one at a time", 1, 1 << 30, 5000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &decoder{events: tc.events, bytes: tc.bytes}
			if got := d.pageSize(tc.max); got != tc.want {
				t.Fatalf("pageSize(%d) after %d events of %d bytes = %d; want %d", tc.max, tc.events, tc.bytes, got, tc.want)
			}
		})
	}
}
