package dataplane

import (
	"encoding/binary"
	"errors"
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
