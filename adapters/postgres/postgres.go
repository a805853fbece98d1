// Package postgres serves a PostgreSQL table or view as a dataset
// (jackc/pgx/v5). Queries are pushed down as parameterised SQL: column
// names are checked against both the dataset's schema and the table, and
// quoted as identifiers; values are only ever bound parameters, never
// spliced into SQL text. SQL NULLs are left out of records (an absent
// field, which is what a JSON Schema's optional property means). With Watch, a trigger the adapter installs records
// inserted and updated rows in an outbox table, and the adapter publishes
// them in order, keeping its cursor in the database so a restart neither
// loses nor duplicates rows.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Config configures a Source.
type Config struct {
	DSN    string          // required
	Table  string          // table or view, optionally schema-qualified (required)
	Key    string          // ordering and paging column, unique and NOT NULL; default "id"
	Fields []catalog.Field // the dataset's fields (required)
}

// Source is a table served as a dataset.
type Source struct {
	pool   *pgxpool.Pool
	table  pgx.Identifier
	key    string
	fields map[string]catalog.Field // schema fields that are also columns
	// numericKey: the key column is a number (its page tokens are JSON
	// numbers; otherwise strings).
	numericKey bool
}

// Open connects and checks the table, its key and its columns.
func Open(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.DSN == "" || cfg.Table == "" || len(cfg.Fields) == 0 {
		return nil, errors.New("postgres adapter: DSN, Table and Fields are required")
	}
	if cfg.Key == "" {
		cfg.Key = "id"
	}
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres adapter: %w", err)
	}
	s := &Source{pool: pool, key: cfg.Key, fields: map[string]catalog.Field{}}
	schema, name, ok := strings.Cut(cfg.Table, ".")
	if !ok {
		schema, name = "public", cfg.Table
	}
	s.table = pgx.Identifier{schema, name}
	rows, err := pool.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, schema, name)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres adapter: columns of %s: %w", cfg.Table, err)
	}
	var cols []string
	var col, typ string
	_, err = pgx.ForEachRow(rows, []any{&col, &typ}, func() error {
		cols = append(cols, col)
		if col == cfg.Key {
			switch typ {
			case "smallint", "integer", "bigint", "numeric", "real", "double precision":
				s.numericKey = true
			}
		}
		return nil
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres adapter: columns of %s: %w", cfg.Table, err)
	}
	if len(cols) == 0 {
		pool.Close()
		return nil, fmt.Errorf("postgres adapter: table %s not found (or has no columns)", cfg.Table)
	}
	if !slices.Contains(cols, cfg.Key) {
		pool.Close()
		return nil, fmt.Errorf("postgres adapter: key column %q is not a column of %s", cfg.Key, cfg.Table)
	}
	for _, f := range cfg.Fields {
		if slices.Contains(cols, f.Name) {
			s.fields[f.Name] = f
		}
	}
	if len(s.fields) == 0 {
		pool.Close()
		return nil, fmt.Errorf("postgres adapter: no column of %s is a field of the dataset", cfg.Table)
	}
	return s, nil
}

// Close closes the pool.
func (s *Source) Close() { s.pool.Close() }

// columns are the selectable fields, sorted, with the key.
func (s *Source) columns(want []string) ([]string, error) {
	if len(want) == 0 {
		for f := range s.fields {
			want = append(want, f)
		}
	}
	out := []string{}
	for _, f := range want {
		if _, ok := s.fields[f]; !ok {
			return nil, fmt.Errorf("field %q is not a column of %s", f, s.table.Sanitize())
		}
		out = append(out, f)
	}
	if !slices.Contains(out, s.key) {
		out = append(out, s.key)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// BuildQuery is the SQL and arguments for a query: every identifier
// checked and quoted, every value a bound parameter. Each row is the
// key (as JSON: the page token) and the record; the record holds the
// requested fields only, the key among them only when it was requested
// (the hub asks for what the consumer is granted: a key outside the
// grant does not leave the department in a record).
func (s *Source) BuildQuery(q adapters.ProviderQuery) (string, []any, error) {
	cols, err := s.columns(q.Fields)
	if err != nil {
		return "", nil, err
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	for _, f := range q.Filters {
		if _, ok := s.fields[f.Field]; !ok {
			return "", nil, fmt.Errorf("filter field %q is not a column", f.Field)
		}
		col := pgx.Identifier{f.Field}.Sanitize()
		cond, err := condition(col, f, arg)
		if err != nil {
			return "", nil, err
		}
		where = append(where, cond)
	}
	key := pgx.Identifier{s.key}.Sanitize()
	if q.PageToken != "" {
		after, err := s.parseToken(q.PageToken)
		if err != nil {
			return "", nil, err
		}
		where = append(where, key+" > "+arg(after))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	record := "to_jsonb(t)"
	if len(q.Fields) > 0 && !slices.Contains(q.Fields, s.key) {
		record += " - " + arg(s.key) + "::text"
	}
	sql := "SELECT to_jsonb(t." + key + ")::text, jsonb_strip_nulls(" + record + ") FROM (SELECT " + strings.Join(quoted, ", ") + " FROM " + s.table.Sanitize()
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + key + " LIMIT " + arg(limit+1) + ") t ORDER BY t." + key
	return sql, args, nil
}

// ErrPageToken is the answer to a page token this adapter did not issue.
var ErrPageToken = errors.New("postgres adapter: not a page token of this table")

// parseToken reads a page token: the JSON text of a key, as the query
// gave it (to_jsonb), a number for a numeric key column and a string
// otherwise, nothing else. The hub hands a provider only tokens it sealed
// for the consumer, so a token is one a provider of the dataset issued;
// still, the adapter binds only a value of the key's kind.
func (s *Source) parseToken(tok string) (any, error) {
	if len(tok) > adapters.MaxPageToken {
		return nil, ErrPageToken
	}
	d := json.NewDecoder(strings.NewReader(tok))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return nil, ErrPageToken
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, ErrPageToken
	}
	switch v := v.(type) {
	case json.Number:
		if !s.numericKey {
			return nil, ErrPageToken
		}
		if _, err := strconv.ParseFloat(v.String(), 64); err != nil {
			return nil, ErrPageToken // beyond float64: 1e999
		}
		return sqlValue(v), nil // bound as a filter's number is
	case string:
		if s.numericKey {
			return nil, ErrPageToken
		}
		return v, nil
	}
	return nil, ErrPageToken
}

func condition(col string, f vocab.Filter, arg func(any) string) (string, error) {
	v := sqlValue(f.Value)
	switch f.Op {
	case vocab.OpEq:
		if v == nil {
			return col + " IS NULL", nil
		}
		return col + " = " + arg(v), nil
	case vocab.OpNe:
		if v == nil {
			return col + " IS NOT NULL", nil
		}
		return col + " IS DISTINCT FROM " + arg(v), nil
	case vocab.OpLt, vocab.OpLe, vocab.OpGt, vocab.OpGe:
		return col + " " + string(f.Op) + " " + arg(v), nil
	case vocab.OpIn:
		vals, _ := f.Value.([]any)
		if len(vals) == 0 {
			return "FALSE", nil
		}
		parts := make([]string, len(vals))
		for i, x := range vals {
			parts[i] = arg(sqlValue(x))
		}
		return col + " IN (" + strings.Join(parts, ", ") + ")", nil
	case vocab.OpPrefix:
		p, _ := f.Value.(string)
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p)
		return col + ` LIKE ` + arg(esc+"%") + ` ESCAPE '\'`, nil
	}
	return "", fmt.Errorf("operator %q not supported", f.Op)
}

// sqlValue maps a JSON value to a Go value pgx binds.
func sqlValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
		return v
	}
	return v
}

// Handler answers queries by pushing them down to PostgreSQL. Its page
// token is the last key it sent, which the hub seals before the consumer
// sees it.
func (s *Source) Handler() adapters.Handler {
	return func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		sql, args, err := s.BuildQuery(q)
		if err != nil {
			return nil, "", err
		}
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, "", fmt.Errorf("query: %w", err)
		}
		var recs [][]byte
		var keys []*string
		var key *string
		var rec []byte
		if _, err := pgx.ForEachRow(rows, []any{&key, &rec}, func() error {
			recs, keys = append(recs, slices.Clone(rec)), append(keys, key)
			return nil
		}); err != nil {
			return nil, "", fmt.Errorf("query: %w", err)
		}
		limit := q.Limit
		if limit <= 0 {
			limit = 100
		}
		if len(recs) <= limit {
			return recs, "", nil
		}
		if keys[limit-1] == nil {
			return nil, "", fmt.Errorf("the key column %s is NULL in a row: it cannot page (make it NOT NULL)", s.key)
		}
		return recs[:limit], *keys[limit-1], nil
	}
}
