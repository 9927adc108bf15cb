package essink

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/esgen-dev/esgen/es"
)

func TestPositionPacker_Pack(t *testing.T) {
	k := PositionPacker{PrepareBits: 31}
	for _, tc := range []struct {
		name string
		p    es.Position
		want int64
		err  bool
	}{
		{"zero", es.Position{}, 0, false},
		{"one", es.Position{Commit: 1, Prepare: 1}, 1<<31 | 1, false},
		{"largest", es.Position{Commit: 1<<32 - 1, Prepare: 1<<31 - 1}, math.MaxInt64, false},
		{"commit too large", es.Position{Commit: 1 << 32}, 0, true},
		{"prepare too large", es.Position{Commit: 1, Prepare: 1 << 31}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := k.Pack(tc.p)
			if tc.err {
				if !errors.Is(err, ErrVersionRange) {
					t.Fatalf("Pack(%s) = %d, %v; want ErrVersionRange", tc.p, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Pack(%s) = %d, %v; want %d", tc.p, got, err, tc.want)
			}
			if back := k.Unpack(got); back != tc.p {
				t.Fatalf("Unpack(%d) = %s, want %s", got, back, tc.p)
			}
		})
	}
	if _, err := (PositionPacker{PrepareBits: 0}).Pack(es.Position{}); !errors.Is(err, ErrVersionRange) {
		t.Fatalf("zero prepare bits: %v", err)
	}
}

// Packing must keep the log's order, or a replay could regress a document.
func TestPositionPacker_PreservesOrder(t *testing.T) {
	for _, bits := range []uint{1, 16, 31, 40, 62} {
		k := PositionPacker{PrepareBits: bits}
		maxC, maxP := uint64(1)<<(63-bits), uint64(1)<<bits
		rnd := func() es.Position {
			// Small values and values near the limits both.
			c, p := rand.Uint64N(maxC), rand.Uint64N(maxP)
			if rand.IntN(2) == 0 {
				c, p = rand.Uint64N(min(maxC, 4)), rand.Uint64N(min(maxP, 4))
			}
			return es.Position{Commit: c, Prepare: p}
		}
		for range 20000 {
			p, q := rnd(), rnd()
			vp, err1 := k.Pack(p)
			vq, err2 := k.Pack(q)
			if err1 != nil || err2 != nil {
				t.Fatalf("bits %d: %v %v", bits, err1, err2)
			}
			if cmp := p.Compare(q); (cmp < 0) != (vp < vq) || (cmp == 0) != (vp == vq) || vp < 0 {
				t.Fatalf("bits %d: %s vs %s packs to %d vs %d", bits, p, q, vp, vq)
			}
		}
	}
}

func TestStreamVersion(t *testing.T) {
	if v, err := StreamVersion(es.Event{Version: 7}); v != 7 || err != nil {
		t.Fatalf("StreamVersion = %d, %v", v, err)
	}
	if _, err := StreamVersion(es.Event{}); !errors.Is(err, ErrVersionRange) {
		t.Fatalf("StreamVersion of version 0: %v", err)
	}
}
