package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// DuplicateKeyError is a JSON object that names a member twice. A
// document with one is refused, never judged on one copy and passed on
// with both: a reader that keeps the first copy would read a value no
// schema judged.
type DuplicateKeyError struct {
	Pointer string // JSON pointer to the repeated member, e.g. /address/city
	Key     string // the member name, unescaped
	Offset  int    // byte offset of the second copy's key

	path []string // escaped pointer tokens, innermost first, while unwinding
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate key %s at %s (byte %d): a key may appear once in an object", quote(e.Key), e.Pointer, e.Offset)
}

// in records that the error passed up through tok (an object key or an
// array index, escaped), on its way to the top.
func (e *DuplicateKeyError) in(tok string) *DuplicateKeyError {
	e.path = append(e.path, tok)
	return e
}

// decodeFast decodes one JSON value as encoding/json's Decoder with
// UseNumber does (objects as map[string]any, numbers as json.Number),
// about three times faster for records, except that a key repeated in an
// object is refused with a *DuplicateKeyError where encoding/json keeps
// the last copy. A string with escapes or non-ASCII bytes is handed to
// encoding/json, so escape and UTF-8 handling are exactly the standard
// library's. The differential fuzz test FuzzDecodeAgrees checks that both
// agree on every input without a repeated key: same error-or-not, same
// value; FuzzDuplicateKeys checks the refusal against a token scan.
func decodeFast(b []byte) (any, error) { return decodeWith(decoder{b: b}) }

// decodeBounded is decodeFast that refuses a number beyond the bounds on
// number texts (vocab.CheckNumber): what a record holds is read as it is
// decoded, not expanded later by a validator or a filter.
func decodeBounded(b []byte) (any, error) { return decodeWith(decoder{b: b, boundNumbers: true}) }

func decodeWith(d decoder) (any, error) {
	v, err := d.value(0)
	if err != nil {
		var dup *DuplicateKeyError
		if errors.As(err, &dup) {
			slices.Reverse(dup.path)
			dup.Pointer = "/" + strings.Join(dup.path, "/")
			dup.path = nil
		}
		return nil, err
	}
	d.ws()
	if d.i != len(d.b) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// maxNesting matches encoding/json's limit.
const maxNesting = 10000

type decoder struct {
	b            []byte
	i            int
	boundNumbers bool

	lastWins bool // keep the last copy of a repeated key (the benchmark's baseline)
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: "+format, append([]any{d.i}, args...)...)
}

func (d *decoder) value(depth int) (any, error) {
	d.ws()
	if d.i >= len(d.b) {
		return nil, d.errf("unexpected end")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		if depth >= maxNesting {
			return nil, d.errf("nested too deeply")
		}
		return d.object(depth + 1)
	case c == '[':
		if depth >= maxNesting {
			return nil, d.errf("nested too deeply")
		}
		return d.array(depth + 1)
	case c == '"':
		return d.str()
	case c == 't':
		return d.lit("true", true)
	case c == 'f':
		return d.lit("false", false)
	case c == 'n':
		return d.lit("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, d.errf("unexpected %q", d.b[d.i])
}

func (d *decoder) lit(word string, v any) (any, error) {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return nil, d.errf("bad literal")
	}
	d.i += len(word)
	return v, nil
}

func (d *decoder) object(depth int) (any, error) {
	d.i++ // {
	m := make(map[string]any)
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errf("want a string key")
		}
		keyAt := d.i
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errf("want ':'")
		}
		d.i++
		v, err := d.value(depth)
		if err != nil {
			var dup *DuplicateKeyError
			if errors.As(err, &dup) {
				dup.in(escape(k))
			}
			return nil, err
		}
		// A repeated key leaves the map's length as it was: no second
		// lookup on the common path.
		n := len(m)
		m[k] = v
		if len(m) == n && !d.lastWins {
			return nil, (&DuplicateKeyError{Key: k, Offset: keyAt}).in(escape(k))
		}
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.errf("unexpected end in object")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, nil
		default:
			return nil, d.errf("want ',' or '}'")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.i++ // [
	a := []any{}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value(depth)
		if err != nil {
			var dup *DuplicateKeyError
			if errors.As(err, &dup) {
				dup.in(strconv.Itoa(len(a)))
			}
			return nil, err
		}
		a = append(a, v)
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.errf("unexpected end in array")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return a, nil
		default:
			return nil, d.errf("want ',' or ']'")
		}
	}
}

// str reads a string; plain ASCII is copied directly, anything else is
// decoded by encoding/json.
func (d *decoder) str() (string, error) {
	start := d.i
	d.i++ // "
	plain := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if plain {
				return string(d.b[start+1 : d.i-1]), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", d.errf("bad string: %v", err)
			}
			return s, nil
		case c == '\\':
			plain = false
			d.i += 2
		case c < 0x20:
			return "", d.errf("control character in string")
		case c >= 0x80:
			plain = false
			d.i++
		default:
			d.i++
		}
	}
	return "", d.errf("unterminated string")
}

func (d *decoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i < len(d.b) && d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, d.errf("bad number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, d.errf("bad number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errf("bad number")
		}
	}
	n := json.Number(d.b[start:d.i])
	if d.boundNumbers {
		if err := vocab.CheckNumber(string(n)); err != nil {
			return nil, fmt.Errorf("at offset %d: %w", start, err)
		}
	}
	return n, nil
}
