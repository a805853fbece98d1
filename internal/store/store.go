// Package store owns a hub node's local state on disk: a Badger database of
// materialised views built from the control-plane log. It knows keys and
// JSON values, nothing of the domain; package exchange decides what is
// stored where.
//
// Badger runs without per-transaction fsync: the views can always be caught
// up from the JetStream log, and the applied sequence is written in the
// same transaction as the views it describes.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dgraph-io/badger/v4"
)

// Store is an open Badger database.
type Store struct {
	db *badger.DB
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithLogger(badgerLogger{log}).
		WithNumVersionsToKeep(1).
		WithMemTableSize(16 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes and closes the database.
func (s *Store) Close() error { return s.db.Close() }

// View runs fn in a read-only snapshot.
func (s *Store) View(fn func(*Txn) error) error {
	return s.db.View(func(t *badger.Txn) error { return fn(&Txn{t: t}) })
}

// Update runs fn in a read-write transaction and commits it.
func (s *Store) Update(fn func(*Txn) error) error {
	return s.db.Update(func(t *badger.Txn) error { return fn(&Txn{t: t}) })
}

// ErrTxnTooBig is a transaction that cannot take more writes.
var ErrTxnTooBig = badger.ErrTxnTooBig

// Draft is a read-write transaction that is never committed: it sees its
// own writes on top of the state committed when it began, and nothing it
// writes stays.
type Draft struct{ Txn }

// BeginDraft starts a draft; Discard it when done.
func (s *Store) BeginDraft() *Draft { return &Draft{Txn{t: s.db.NewTransaction(true)}} }

// Discard drops the draft and everything written to it.
func (d *Draft) Discard() { d.t.Discard() }

// Txn is a transaction.
type Txn struct{ t *badger.Txn }

// GetRaw returns the value at key, or ok=false.
func (t *Txn) GetRaw(key []byte) (val []byte, ok bool, err error) {
	item, err := t.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val, err = item.ValueCopy(nil)
	return val, err == nil, err
}

// Get decodes the JSON value at key into v.
func (t *Txn) Get(key string, v any) (bool, error) {
	b, ok, err := t.GetRaw([]byte(key))
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("store: decode %s: %w", key, err)
	}
	return true, nil
}

// PutRaw sets key to val.
func (t *Txn) PutRaw(key, val []byte) error { return t.t.Set(key, val) }

// Put encodes v as JSON at key.
func (t *Txn) Put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", key, err)
	}
	return t.t.Set([]byte(key), b)
}

// Scan calls fn for each key with prefix, in key order, starting after
// the key `after` (if not empty), until fn returns false.
func (t *Txn) Scan(prefix, after string, fn func(key string, val []byte) (bool, error)) error {
	it := t.t.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	start := []byte(prefix)
	if after != "" {
		start = append([]byte(after), 0)
	}
	for it.Seek(start); it.ValidForPrefix([]byte(prefix)); it.Next() {
		item := it.Item()
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		more, err := fn(string(item.Key()), val)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	if l.log != nil {
		l.log.Error(fmt.Sprintf(f, a...), "component", "badger")
	}
}
func (l badgerLogger) Warningf(f string, a ...any) {
	if l.log != nil {
		l.log.Warn(fmt.Sprintf(f, a...), "component", "badger")
	}
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// Delete removes key.
func (t *Txn) Delete(key string) error { return t.t.Delete([]byte(key)) }

// OpenMemory opens an empty database held in memory (to replay a log
// into and compare with the one on disk).
func OpenMemory() (*Store, error) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(badgerLogger{}))
	if err != nil {
		return nil, fmt.Errorf("store: open in memory: %w", err)
	}
	return &Store{db: db}, nil
}

// Difference is the first key, in key order, whose value differs between
// two stores (nil: absent from that store).
type Difference struct {
	Key    []byte
	A, B   []byte
	Differ bool
}

// FirstDifference compares every key and value of s and o in key order
// and returns the first key that differs.
func (s *Store) FirstDifference(o *Store) (Difference, error) {
	var d Difference
	err := s.db.View(func(ta *badger.Txn) error {
		return o.db.View(func(tb *badger.Txn) error {
			ia := ta.NewIterator(badger.DefaultIteratorOptions)
			defer ia.Close()
			ib := tb.NewIterator(badger.DefaultIteratorOptions)
			defer ib.Close()
			ia.Rewind()
			ib.Rewind()
			for ia.Valid() || ib.Valid() {
				var ka, kb []byte
				if ia.Valid() {
					ka = ia.Item().KeyCopy(nil)
				}
				if ib.Valid() {
					kb = ib.Item().KeyCopy(nil)
				}
				switch c := compareKeys(ka, kb); {
				case c < 0: // only in s
					va, err := ia.Item().ValueCopy(nil)
					d = Difference{Key: ka, A: va, Differ: true}
					return err
				case c > 0: // only in o
					vb, err := ib.Item().ValueCopy(nil)
					d = Difference{Key: kb, B: vb, Differ: true}
					return err
				}
				va, err := ia.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				vb, err := ib.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				if !bytes.Equal(va, vb) {
					d = Difference{Key: ka, A: va, B: vb, Differ: true}
					return nil
				}
				ia.Next()
				ib.Next()
			}
			return nil
		})
	})
	return d, err
}

// compareKeys orders keys, a missing (nil) key after every other.
func compareKeys(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// Empty reports whether the database holds no key.
func (s *Store) Empty() (bool, error) {
	empty := true
	err := s.View(func(t *Txn) error {
		return t.Scan("", "", func(string, []byte) (bool, error) {
			empty = false
			return false, nil
		})
	})
	return empty, err
}

// ReplaceWith drops every key of s and copies in every key and value of
// o. Nothing else may use s meanwhile. A stop half-way leaves s with some
// of o's keys: the caller writes, last, the key that says the copy is
// whole.
func (s *Store) ReplaceWith(o *Store) error {
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("store: drop: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := o.db.View(func(t *badger.Txn) error {
		it := t.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := wb.Set(item.KeyCopy(nil), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: copy: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: copy: %w", err)
	}
	return nil
}
