package schemas

import "sync"

// Cache holds compiled schemas by subject and version. A registered
// version never changes, so an entry is never invalidated; the number of
// entries is the number of versions registered, which the ledger bounds.
type Cache struct {
	m sync.Map // cacheKey -> *Schema
}

type cacheKey struct {
	subject string
	version int
}

// Get returns the compiled schema of subject at version, if compiled.
func (c *Cache) Get(subject string, version int) (*Schema, bool) {
	s, ok := c.m.Load(cacheKey{subject, version})
	if !ok {
		return nil, false
	}
	return s.(*Schema), true
}

// Compile returns the compiled schema of subject at version, compiling
// raw the first time.
func (c *Cache) Compile(subject string, version int, raw []byte) (*Schema, error) {
	if s, ok := c.Get(subject, version); ok {
		return s, nil
	}
	s, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	c.m.Store(cacheKey{subject, version}, s)
	return s, nil
}
