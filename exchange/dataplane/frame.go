package dataplane

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Frames carry records between nodes and in XHUB_DATA without re-scanning
// them as JSON: a magic, length-prefixed strings, then the records, each
// length-prefixed (uvarint). Records are validated once, where they enter.

var (
	batchMagic  = []byte("XB1")
	resultMagic = []byte("XR1")
	callMagic   = []byte("XC1")
	errFrame    = errors.New("malformed frame")
)

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errFrame
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func encodeFrame(magic []byte, strs []string, recs [][]byte) []byte {
	size := len(magic) + 10*(len(strs)+len(recs)+1)
	for _, s := range strs {
		size += len(s)
	}
	for _, r := range recs {
		size += len(r)
	}
	b := make([]byte, 0, size)
	b = append(b, magic...)
	for _, s := range strs {
		b = appendBytes(b, []byte(s))
	}
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = appendBytes(b, r)
	}
	return b
}

// decodeFrame reads nstrs strings and the records; the records alias b.
func decodeFrame(magic []byte, b []byte, nstrs int) ([]string, [][]byte, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != string(magic) {
		return nil, nil, errFrame
	}
	b = b[len(magic):]
	strs := make([]string, nstrs)
	for i := range strs {
		s, rest, err := readBytes(b)
		if err != nil {
			return nil, nil, err
		}
		strs[i], b = string(s), rest
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, errFrame
	}
	b = b[k:]
	recs := make([][]byte, 0, n)
	for range n {
		r, rest, err := readBytes(b)
		if err != nil {
			return nil, nil, err
		}
		recs, b = append(recs, r), rest
	}
	if len(b) != 0 {
		return nil, nil, errFrame
	}
	return strs, recs, nil
}

// Call is a query forwarded to a provider. Between nodes it travels as a
// frame; each filter as field, operator and value in JSON, the triple the
// gRPC API carries (vocab.Filter.ValueJSON, vocab.DecodeFilterValue).
type Call struct {
	ID        string
	Dataset   catalog.DatasetID
	Fields    []string
	Filters   []vocab.Filter
	Limit     int
	PageToken string // the provider's own, opened from the consumer's sealed one
	Consumer  catalog.DeptID
	RequestID string
}

const callStrs = 5 // dataset, consumer, request id, page token, limit

func (c Call) encode() []byte {
	strs := []string{string(c.Dataset), string(c.Consumer), c.RequestID, c.PageToken, strconv.Itoa(c.Limit)}
	items := make([][]byte, 0, 1+len(c.Fields)+3*len(c.Filters))
	items = append(items, binary.AppendUvarint(nil, uint64(len(c.Fields))))
	for _, f := range c.Fields {
		items = append(items, []byte(f))
	}
	for _, f := range c.Filters {
		items = append(items, []byte(f.Field), []byte(f.Op), f.ValueJSON())
	}
	return encodeFrame(callMagic, strs, items)
}

func decodeCall(b []byte) (Call, error) {
	strs, items, err := decodeFrame(callMagic, b, callStrs)
	if err != nil {
		return Call{}, err
	}
	limit, err := strconv.Atoi(strs[4])
	if err != nil || len(items) == 0 {
		return Call{}, errFrame
	}
	nf, k := binary.Uvarint(items[0])
	if k != len(items[0]) || nf > uint64(len(items)-1) || (uint64(len(items)-1)-nf)%3 != 0 {
		return Call{}, errFrame
	}
	c := Call{Dataset: catalog.DatasetID(strs[0]), Consumer: catalog.DeptID(strs[1]), RequestID: strs[2], PageToken: strs[3], Limit: limit}
	items = items[1:]
	for _, f := range items[:nf] {
		c.Fields = append(c.Fields, string(f))
	}
	for rest := items[nf:]; len(rest) > 0; rest = rest[3:] {
		v, err := vocab.DecodeFilterValue(rest[2])
		if err != nil {
			return Call{}, errFrame
		}
		c.Filters = append(c.Filters, vocab.Filter{Field: string(rest[0]), Op: vocab.Op(rest[1]), Value: v})
	}
	return c, nil
}

// Result is a provider's answer. Between nodes it travels as a frame.
type Result struct {
	CallID    string
	Records   [][]byte
	NextToken string
	Error     string
}

func (r Result) encode() []byte {
	return encodeFrame(resultMagic, []string{r.Error, r.NextToken}, r.Records)
}

// size is len(r.encode()), without encoding.
func (r Result) size() int {
	n := len(resultMagic) + sized(len(r.Error)) + sized(len(r.NextToken)) + sized(len(r.Records)) - len(r.Records)
	for _, rec := range r.Records {
		n += sized(len(rec))
	}
	return n
}

// sized is the bytes of a length-prefixed field of n bytes.
func sized(n int) int {
	var b [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(b[:0], uint64(n))) + n
}

func decodeResult(b []byte) (Result, error) {
	strs, recs, err := decodeFrame(resultMagic, b, 2)
	if err != nil {
		return Result{}, err
	}
	return Result{Error: strs[0], NextToken: strs[1], Records: recs}, nil
}
