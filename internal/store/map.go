package store

import (
	"encoding/json"
	"slices"
	"strings"
)

// Map is views in a map, with a transaction's methods: the state
// machines' unit tests apply entries to it with no database.
type Map map[string][]byte

// Get decodes the JSON value at key into v.
func (m Map) Get(key string, v any) (bool, error) {
	b, ok := m[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

// Put encodes v as JSON at key.
func (m Map) Put(key string, v any) error {
	b, err := json.Marshal(v)
	if err == nil {
		m[key] = b
	}
	return err
}

// Delete removes key.
func (m Map) Delete(key string) error { delete(m, key); return nil }

// Scan calls fn for each key with prefix after the key after, in key
// order, until fn returns false.
func (m Map) Scan(prefix, after string, fn func(key string, val []byte) (bool, error)) error {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if more, err := fn(k, m[k]); err != nil || !more {
			return err
		}
	}
	return nil
}
