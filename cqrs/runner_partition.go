package cqrs

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/esgen-dev/esgen/es"
)

// Partitions splits p into n projections that each handle the events of
// the streams whose ID hashes (FNV-1a, modulo n) to their index, so that n
// runners, each with its own checkpoint and lease, share the work. Events of
// one stream always go to the same partition, in order; there is no order
// between streams of different partitions. Partition i is named
// "NAME/i-of-n": changing n starts new checkpoints, so drain or reset the
// old ones. Every partition reads the whole log and skips the others'
// events, so partitions pay off when handling, not reading, is the cost.
// n < 1 is treated as 1.
func Partitions(p Projection, n int) []Projection {
	n = max(n, 1)
	out := make([]Projection, n)
	for i := range n {
		out[i] = partition{p: p, i: uint32(i), n: uint32(n)}
	}
	return out
}

// PartitionOf returns the index of the partition, among n, that handles
// stream.
func PartitionOf(stream string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return int(h.Sum32() % uint32(max(n, 1)))
}

type partition struct {
	p    Projection
	i, n uint32
}

func (p partition) Name() string         { return fmt.Sprintf("%s/%d-of-%d", p.p.Name(), p.i, p.n) }
func (p partition) EventTypes() []string { return p.p.EventTypes() }
func (p partition) Handle(ctx context.Context, rec es.Event) error {
	if uint32(PartitionOf(rec.StreamID, int(p.n))) != p.i {
		return nil
	}
	return p.p.Handle(ctx, rec)
}
