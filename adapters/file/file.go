// Package file serves a JSON-lines or CSV file as a dataset: the file is
// read into memory (again whenever it changes on disk) and queries are
// answered with the hub's own filter semantics, cut to the fields asked
// for, paged by offset (a token the hub seals for the consumer).
package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/schemas"
)

// Source is a file of records.
type Source struct {
	path   string
	fields []catalog.Field

	mu    sync.Mutex
	mtime time.Time
	size  int64
	recs  []map[string]any
}

// Open reads path (.csv, else JSON lines). fields types CSV columns.
func Open(path string, fields []catalog.Field) (*Source, error) {
	s := &Source{path: path, fields: fields}
	if _, err := s.records(); err != nil {
		return nil, err
	}
	return s, nil
}

// records returns the file's records, reloading it if it changed.
func (s *Source) records() ([]map[string]any, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("file adapter: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs != nil && st.ModTime().Equal(s.mtime) && st.Size() == s.size {
		return s.recs, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("file adapter: %w", err)
	}
	defer f.Close()
	var recs []map[string]any
	if strings.EqualFold(filepath.Ext(s.path), ".csv") {
		recs, err = readCSV(f, s.fields)
	} else {
		recs, err = readJSONL(f)
	}
	if err != nil {
		return nil, fmt.Errorf("file adapter: %s: %w", s.path, err)
	}
	s.recs, s.mtime, s.size = recs, st.ModTime(), st.Size()
	return recs, nil
}

func readJSONL(r io.Reader) ([]map[string]any, error) {
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		v, err := schemas.DecodeRecord(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("line %d: not a JSON object", line)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func readCSV(r io.Reader, fields []catalog.Field) ([]map[string]any, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %v", err)
	}
	types := map[string]string{}
	for _, f := range fields {
		types[f.Name] = f.Type
	}
	var out []map[string]any
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(row))
		for i, cell := range row {
			if i >= len(header) {
				break
			}
			v, err := convert(cell, types[header[i]])
			if err != nil {
				return nil, fmt.Errorf("line %d, column %s: %v", line, header[i], err)
			}
			if v != nil {
				m[header[i]] = v
			}
		}
		out = append(out, m)
	}
}

// convert types a CSV cell by the schema field's type; an empty cell is
// absent (or null where the type allows it).
func convert(cell, typ string) (any, error) {
	has := func(t string) bool { return strings.Contains("|"+typ+"|", "|"+t+"|") }
	if cell == "" {
		return nil, nil
	}
	switch {
	case has("integer") || has("number"):
		if _, err := strconv.ParseFloat(cell, 64); err != nil {
			if has("string") {
				return cell, nil
			}
			return nil, fmt.Errorf("%q is not a number", cell)
		}
		return json.Number(cell), nil
	case has("boolean"):
		b, err := strconv.ParseBool(cell)
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean", cell)
		}
		return b, nil
	}
	return cell, nil
}

// Handler answers queries from the file: records cut to the fields asked
// for (what the consumer is not granted stays here), paged by offset in
// the file.
func (s *Source) Handler() adapters.Handler {
	return func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		recs, err := s.records()
		if err != nil {
			return nil, "", err
		}
		matchers, err := vocab.CompileFilters(q.Filters)
		if err != nil {
			return nil, "", err
		}
		offset, err := parseOffset(q.PageToken)
		if err != nil {
			return nil, "", err
		}
		limit := q.Limit
		if limit <= 0 {
			limit = 100
		}
		var out [][]byte
		i := offset
		for ; i < len(recs) && len(out) < limit; i++ {
			// The scan of a large file stops when the hub goes away.
			if err := ctx.Err(); err != nil {
				return nil, "", err
			}
			ok := true
			for _, f := range matchers {
				if !f.Match(recs[i]) {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			b, err := json.Marshal(cut(recs[i], q.Fields))
			if err != nil {
				return nil, "", err
			}
			out = append(out, b)
		}
		next := ""
		if i < len(recs) {
			next = strconv.Itoa(i)
		}
		return out, next, nil
	}
}

// ErrPageToken is the answer to a page token this adapter did not issue.
var ErrPageToken = errors.New("file adapter: not a page token of this file")

// parseOffset reads a page token: an offset as the adapter writes it
// (decimal digits, no sign, no leading zero), nothing else. The hub
// hands a provider only tokens it sealed for the consumer; still, the
// adapter reads only what it writes.
func parseOffset(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	if len(tok) > 18 || (tok[0] == '0' && len(tok) > 1) {
		return 0, ErrPageToken
	}
	n := 0
	for _, c := range []byte(tok) {
		if c < '0' || c > '9' {
			return 0, ErrPageToken
		}
		n = 10*n + int(c-'0')
	}
	return n, nil
}

// cut is rec with only fields (all of them when fields is empty).
func cut(rec map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return rec
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := rec[f]; ok {
			out[f] = v
		}
	}
	return out
}
