package es

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON keys of the named Metadata fields. Correlation and causation use the
// names KurrentDB recognises.
const (
	metaCorrelationID = "$correlationId"
	metaCausationID   = "$causationId"
	metaTenantID      = "tenantId"
	metaUserID        = "userId"
	metaTraceParent   = "traceparent"
	metaTraceState    = "tracestate"
)

func isReservedMetaKey(k string) bool {
	switch k {
	case metaCorrelationID, metaCausationID, metaTenantID, metaUserID, metaTraceParent, metaTraceState:
		return true
	}
	return false
}

// named returns the named fields as JSON key and value pairs.
func (m *Metadata) named() [6][2]string {
	return [6][2]string{
		{metaCorrelationID, m.CorrelationID}, {metaCausationID, m.CausationID},
		{metaTenantID, m.TenantID}, {metaUserID, m.UserID},
		{metaTraceParent, m.TraceParent}, {metaTraceState, m.TraceState},
	}
}

func (m *Metadata) validate() error {
	check := func(what, s string) error {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("metadata %s %q is not valid UTF-8 text without NUL bytes", what, s)
		}
		return nil
	}
	for _, kv := range m.named() {
		if err := check(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for k, v := range m.Extra {
		if k == "" {
			return errors.New("metadata has an empty key")
		}
		if isReservedMetaKey(k) {
			return fmt.Errorf("metadata key %q is reserved for a named Metadata field; set the field instead", k)
		}
		if err := check("key", k); err != nil {
			return err
		}
		if err := check(fmt.Sprintf("value of %q", k), v); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metadata) size() int {
	n := len(m.CorrelationID) + len(m.CausationID) + len(m.TenantID) + len(m.UserID) +
		len(m.TraceParent) + len(m.TraceState)
	for k, v := range m.Extra {
		n += len(k) + len(v)
	}
	return n
}

// MarshalJSON encodes m as a flat JSON object of strings, omitting empty
// fields. The zero Metadata encodes as {}. Extra keys are written in no
// particular order.
func (m Metadata) MarshalJSON() ([]byte, error) {
	return m.AppendJSON(make([]byte, 0, 64+m.size())), nil
}

// AppendJSON appends the JSON form of m (see [Metadata.MarshalJSON]) to b.
func (m Metadata) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	pair := func(k, v string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	// Named fields are left out when empty; Extra is written as given.
	for _, kv := range m.named() {
		if kv[1] != "" {
			pair(kv[0], kv[1])
		}
	}
	for k, v := range m.Extra {
		pair(k, v)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// UnmarshalJSON decodes a flat JSON object whose values are strings (null
// values are skipped), such as [Metadata.MarshalJSON] writes. Other value
// kinds are an error naming the key. When a key repeats, its last value
// (or null) wins, as with encoding/json. It does not use reflection.
func (m *Metadata) UnmarshalJSON(data []byte) error {
	*m = Metadata{}
	d := jsonDecoder{data: data}
	d.space()
	if d.peek() == 'n' && d.literal("null") {
		d.space()
		if d.pos != len(d.data) {
			return d.fail("trailing data after null")
		}
		return nil
	}
	if !d.consume('{') {
		return d.fail("want a JSON object")
	}
	d.space()
	if d.consume('}') {
		return d.end()
	}
	for {
		d.space()
		k, err := d.str()
		if err != nil {
			return err
		}
		d.space()
		if !d.consume(':') {
			return d.fail("want ':' after key %q", k)
		}
		d.space()
		if d.peek() == 'n' && d.literal("null") {
			// A null value carries nothing. It still overrides an earlier
			// value of a repeated key, since the last occurrence wins.
			if isReservedMetaKey(k) {
				m.set(k, "")
			} else {
				delete(m.Extra, k)
			}
		} else {
			if d.peek() != '"' {
				return d.fail("value of key %q is not a string", k)
			}
			v, err := d.str()
			if err != nil {
				return err
			}
			m.set(k, v)
		}
		d.space()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return d.end()
		}
		return d.fail("want ',' or '}' after the value of %q", k)
	}
}

func (m *Metadata) set(k, v string) {
	switch k {
	case metaCorrelationID:
		m.CorrelationID = v
	case metaCausationID:
		m.CausationID = v
	case metaTenantID:
		m.TenantID = v
	case metaUserID:
		m.UserID = v
	case metaTraceParent:
		m.TraceParent = v
	case metaTraceState:
		m.TraceState = v
	default:
		if m.Extra == nil {
			m.Extra = make(map[string]string, 4)
		}
		m.Extra[k] = v
	}
}

type jsonDecoder struct {
	data []byte
	pos  int
}

func (d *jsonDecoder) fail(format string, args ...any) error {
	return fmt.Errorf("decode event metadata at byte %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) end() error {
	d.space()
	if d.pos != len(d.data) {
		return d.fail("trailing data after the object")
	}
	return nil
}

func (d *jsonDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *jsonDecoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *jsonDecoder) consume(c byte) bool {
	if d.peek() == c {
		d.pos++
		return true
	}
	return false
}

func (d *jsonDecoder) literal(s string) bool {
	if strings.HasPrefix(string(d.data[d.pos:]), s) {
		d.pos += len(s)
		return true
	}
	return false
}

// str reads a JSON string. The fast path returns the bytes between the quotes
// when there is no escape.
func (d *jsonDecoder) str() (string, error) {
	if !d.consume('"') {
		return "", d.fail("want a string")
	}
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.data[start:d.pos]
			d.pos++
			if !utf8.Valid(s) {
				return "", d.fail("string is not valid UTF-8")
			}
			return string(s), nil
		case c == '\\':
			return d.strSlow(start)
		case c < 0x20:
			return "", d.fail("control character in string")
		}
		d.pos++
	}
	return "", d.fail("unterminated string")
}

func (d *jsonDecoder) strSlow(start int) (string, error) {
	b := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(b) {
				return "", d.fail("string is not valid UTF-8")
			}
			return string(b), nil
		case c < 0x20:
			return "", d.fail("control character in string")
		case c != '\\':
			b = append(b, c)
			d.pos++
			continue
		}
		d.pos++
		if d.pos >= len(d.data) {
			break
		}
		esc := d.data[d.pos]
		d.pos++
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// As encoding/json does: take the next escape only if it
				// completes a valid pair, otherwise the surrogate alone
				// becomes U+FFFD and the next escape is read on its own.
				r = d.lowSurrogate(r)
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", d.fail("bad escape \\%c", esc)
		}
	}
	return "", d.fail("unterminated string")
}

// lowSurrogate returns the rune that hi forms with an immediately following
// \uXXXX escape, consuming that escape, or U+FFFD (consuming nothing) when
// there is no such escape or the two are not a valid surrogate pair.
func (d *jsonDecoder) lowSurrogate(hi rune) rune {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(`\u`)) {
		return utf8.RuneError
	}
	start := d.pos
	d.pos += 2
	if lo, ok := d.hex4(); ok {
		if r := utf16.DecodeRune(hi, lo); r != utf8.RuneError {
			return r
		}
	}
	d.pos = start
	return utf8.RuneError
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(v), true
}
