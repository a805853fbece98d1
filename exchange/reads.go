package exchange

import (
	"fmt"
	"strings"

	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// Page bounds.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize applies the default and the bound.
func PageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, vocab.Invalid("page_size", "%d is not between 1 and %d", n, MaxPageSize)
	}
	return n, nil
}

// Entries returns up to limit raw entries with sequence > since.
func (cp *ControlPlane) Entries(since uint64, limit int) ([]ledger.Entry, [][]byte, error) {
	var entries []ledger.Entry
	var raws [][]byte
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan(string(keyspace.Entries), string(entryKey(since)), func(_ string, val []byte) (bool, error) {
			e, err := ledger.Parse(val)
			if err != nil {
				return false, fmt.Errorf("stored entry: %w", err)
			}
			entries, raws = append(entries, e), append(raws, val)
			return len(entries) < limit, nil
		})
	})
	return entries, raws, err
}

func afterKey(prefix, after string) string {
	if after == "" {
		return ""
	}
	return prefix + after
}

func scanPage[T any](txn *store.Txn, prefix, after string, limit int, fn func(T)) error {
	n := 0
	return txn.Scan(prefix, afterKey(prefix, after), func(key string, val []byte) (bool, error) {
		if !strings.HasPrefix(key, prefix) {
			return false, nil
		}
		var v T
		if err := jsonUnmarshal(val, &v); err != nil {
			return false, fmt.Errorf("view %s: %w", key, err)
		}
		fn(v)
		n++
		return n < limit, nil
	})
}
