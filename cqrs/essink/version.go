package essink

import (
	"errors"
	"fmt"

	"github.com/esgen-dev/esgen/es"
)

// ErrVersionRange is returned (wrapped) when an event's position or version
// does not fit the external version scheme in use. It is never silent: a
// version that does not fit would break the ordering that keeps replays from
// regressing documents, so Apply fails instead.
var ErrVersionRange = errors.New("essink: version out of range")

// VersionFunc maps an event to the Elasticsearch external version of the
// document writes its handler stages. It must be deterministic and strictly
// increasing, in log order, over the events that write any one document: a
// write is kept only when its version is greater than the stored one.
type VersionFunc func(rec es.Event) (int64, error)

// DefaultPrepareBits is how many low bits of a packed position hold Prepare.
const DefaultPrepareBits = 31

// PositionPacker packs positions into external versions: Commit in the high
// 63-PrepareBits bits, Prepare in the low PrepareBits bits. Packing is exact
// and preserves the order of es.Position (by Commit, then Prepare) for every
// position in range, and refuses the others with [ErrVersionRange].
type PositionPacker struct {
	// PrepareBits is the width of the Prepare field, 1 to 62.
	PrepareBits uint
}

// Pack returns p as an external version.
func (k PositionPacker) Pack(p es.Position) (int64, error) {
	if k.PrepareBits < 1 || k.PrepareBits > 62 {
		return 0, fmt.Errorf("pack position %s: prepare bits %d not in 1..62: %w", p, k.PrepareBits, ErrVersionRange)
	}
	commitBits := 63 - k.PrepareBits
	if p.Prepare >= 1<<k.PrepareBits || p.Commit >= 1<<commitBits {
		return 0, fmt.Errorf("pack position %s: needs commit < 2^%d and prepare < 2^%d: %w",
			p, commitBits, k.PrepareBits, ErrVersionRange)
	}
	return int64(p.Commit<<k.PrepareBits | p.Prepare), nil
}

// Unpack is the inverse of Pack.
func (k PositionPacker) Unpack(v int64) es.Position {
	mask := uint64(1)<<k.PrepareBits - 1
	return es.Position{Commit: uint64(v) >> k.PrepareBits, Prepare: uint64(v) & mask}
}

// Version is a VersionFunc that packs the event's log position.
func (k PositionPacker) Version(rec es.Event) (int64, error) { return k.Pack(rec.Position) }

// StreamVersion is a VersionFunc that uses the event's version in its stream.
// It is exact on every store and never runs out of range, but it orders only
// the events of one stream: use it when every document is written by the
// events of a single stream (typically a document keyed by aggregate ID).
func StreamVersion(rec es.Event) (int64, error) {
	if rec.Version < 1 {
		return 0, fmt.Errorf("stream version %d of %q at %s: %w", rec.Version, rec.StreamID, rec.Position, ErrVersionRange)
	}
	return rec.Version, nil
}
