package pgstore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esgen-dev/esgen/es"
)

// Column order of every event query (readAll, readForward, readBackward).
const (
	colTx = iota
	colPosition
	colStream
	colVersion
	colID
	colType
	colData
	colMetadata
	colRecordedAt
	numCols
)

// pgEpoch is the zero of Postgres's binary timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decoder turns event rows into es.Events. When the server sends the binary
// formats it expects (pgx asks for them for these types), it decodes the raw
// column bytes directly, without reflection or per-column scan plans;
// otherwise it falls back to rows.Scan.
type decoder struct {
	types  map[string]string // interned event types
	slab   []byte            // backing store for event data of one page
	stream string            // last stream ID, reused when repeated
	// events and bytes count what was decoded, to size the next page.
	events, bytes int64
}

// firstPage is the size of a read's first page, before event sizes are known.
const firstPage = 256

// pageSize returns how many events the next page should ask for: at most
// max, and few enough that a page of events of the sizes seen so far stays
// under maxPageBytes. A page cut short by size drains the rest of its query,
// so asking for the right number matters when events are large.
func (d *decoder) pageSize(max int) int {
	if d.events == 0 {
		return min(max, firstPage)
	}
	avg := d.bytes/d.events + 1
	return int(min(int64(max), maxPageBytes/avg/2+1))
}

const slabSize = 64 << 10

func newDecoder() *decoder { return &decoder{types: make(map[string]string, 16)} }

func binaryColumns(fds []pgconn.FieldDescription) bool {
	if len(fds) != numCols {
		return false
	}
	for _, c := range []int{colTx, colPosition, colVersion, colID, colData, colRecordedAt} {
		if fds[c].Format != pgx.BinaryFormatCode {
			return false
		}
	}
	return true
}

// decode reads the current row into e. fast says binaryColumns held.
func (d *decoder) decode(rows pgx.Rows, fast bool, e *es.Event) error {
	if !fast {
		return d.scan(rows, e)
	}
	v := rows.RawValues()
	if len(v[colTx]) != 8 || len(v[colPosition]) != 8 || len(v[colVersion]) != 8 || len(v[colID]) != 16 ||
		len(v[colRecordedAt]) != 8 || v[colData] == nil {
		return fmt.Errorf("decode event row: unexpected column sizes")
	}
	e.Position = es.Position{
		Commit:  binary.BigEndian.Uint64(v[colTx]),
		Prepare: binary.BigEndian.Uint64(v[colPosition]),
	}
	e.StreamID = d.streamID(v[colStream])
	e.Version = int64(binary.BigEndian.Uint64(v[colVersion]))
	copy(e.ID[:], v[colID])
	e.Type = d.eventType(v[colType])
	e.Data = d.copyData(v[colData])
	d.events++
	d.bytes += int64(len(e.Data))
	e.Metadata = es.Metadata{}
	if m := v[colMetadata]; m != nil {
		if rows.FieldDescriptions()[colMetadata].Format == pgx.BinaryFormatCode {
			if len(m) == 0 || m[0] != 1 {
				return fmt.Errorf("decode metadata of event %s: unknown jsonb format version", e.ID)
			}
			m = m[1:]
		}
		if err := e.Metadata.UnmarshalJSON(m); err != nil {
			return fmt.Errorf("event %s in stream %q at version %d: %w", e.ID, e.StreamID, e.Version, err)
		}
	}
	micros := int64(binary.BigEndian.Uint64(v[colRecordedAt]))
	e.RecordedAt = pgEpoch.Add(time.Duration(micros) * time.Microsecond)
	return nil
}

func (d *decoder) scan(rows pgx.Rows, e *es.Event) error {
	var (
		tx       uint64
		position int64
		meta     []byte
	)
	if err := rows.Scan(&tx, &position, &e.StreamID, &e.Version, (*[16]byte)(&e.ID), &e.Type, &e.Data, &meta, &e.RecordedAt); err != nil {
		return fmt.Errorf("decode event row: %w", err)
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	d.events++
	d.bytes += int64(len(e.Data))
	e.Position = es.Position{Commit: tx, Prepare: uint64(position)}
	e.RecordedAt = e.RecordedAt.UTC()
	e.Metadata = es.Metadata{}
	if meta != nil {
		if err := e.Metadata.UnmarshalJSON(meta); err != nil {
			return fmt.Errorf("event %s in stream %q at version %d: %w", e.ID, e.StreamID, e.Version, err)
		}
	}
	return nil
}

func (d *decoder) streamID(b []byte) string {
	if string(b) != d.stream {
		d.stream = string(b)
	}
	return d.stream
}

func (d *decoder) eventType(b []byte) string {
	if t, ok := d.types[string(b)]; ok {
		return t
	}
	t := string(b)
	if len(d.types) < 4096 {
		d.types[t] = t
	}
	return t
}

// copyData copies b out of the row buffer, which pgx reuses. Small payloads
// share slabs so that a page of events costs few allocations.
func (d *decoder) copyData(b []byte) []byte {
	switch {
	case len(b) == 0:
		return []byte{} // empty, never nil: see es.Event.Data
	case len(b) > slabSize/4:
		return append(make([]byte, 0, len(b)), b...)
	}
	if cap(d.slab)-len(d.slab) < len(b) {
		d.slab = make([]byte, 0, slabSize)
	}
	start := len(d.slab)
	d.slab = append(d.slab, b...)
	return d.slab[start:len(d.slab):len(d.slab)]
}
