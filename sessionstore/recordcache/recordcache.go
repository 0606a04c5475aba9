// Package recordcache keeps decoded session records in memory in front of
// a store that only this process writes (the sqlite backend: one node, one
// process). A request then finds its session without a query and without
// decoding, and the cache stays exact: every change to a record — Update,
// Touch, Delete, and so every logout and kill — goes through this process,
// and drops the cached copy before it returns.
//
// It must not be put in front of a store shared by several processes
// (Redis): a kill on another instance would not reach it.
package recordcache

import (
	"context"
	"sync"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// DefaultSize bounds the cached records (a few KB each).
const DefaultSize = 10_000

// Store is a sessionstore.Store with a read cache for Get.
type Store struct {
	sessionstore.Store
	size int
	now  func() time.Time

	mu      sync.Mutex
	records map[string]*sessionstore.Session
	// changes counts every invalidation. A Get that missed the cache
	// stores what it read only if nothing was invalidated while it read:
	// a Delete racing with the read must not leave the deleted record in
	// the cache.
	changes uint64
}

var _ sessionstore.Store = (*Store)(nil)

// New wraps st, which no other process may write. size <= 0 means
// DefaultSize.
func New(st sessionstore.Store, size int) *Store {
	if size <= 0 {
		size = DefaultSize
	}
	return &Store{Store: st, size: size, now: time.Now, records: make(map[string]*sessionstore.Session)}
}

// Get returns a copy of the cached record while it is live, and reads the
// store otherwise.
func (c *Store) Get(ctx context.Context, key string) (*sessionstore.Session, error) {
	c.mu.Lock()
	if s, ok := c.records[key]; ok {
		if s.Live(c.now()) {
			c.mu.Unlock()
			return s.Clone(), nil
		}
		delete(c.records, key)
	}
	seen := c.changes
	c.mu.Unlock()

	s, err := c.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	cp := s.Clone()
	c.mu.Lock()
	if c.changes == seen {
		if len(c.records) >= c.size {
			for k := range c.records { // an arbitrary victim: map order is random
				delete(c.records, k)
				break
			}
		}
		c.records[key] = cp
	}
	c.mu.Unlock()
	return s, nil
}

func (c *Store) invalidate(key string) {
	c.mu.Lock()
	delete(c.records, key)
	c.changes++
	c.mu.Unlock()
}

// Update drops the cached record, then writes through.
func (c *Store) Update(ctx context.Context, s *sessionstore.Session) error {
	c.invalidate(s.Key)
	defer c.invalidate(s.Key)
	return c.Store.Update(ctx, s)
}

// Touch drops the cached record, then writes through.
func (c *Store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	c.invalidate(key)
	defer c.invalidate(key)
	return c.Store.Touch(ctx, key, lastSeen, expiresAt)
}

// Delete drops the cached record, then deletes through.
func (c *Store) Delete(ctx context.Context, key string, tomb sessionstore.Tombstone) (*sessionstore.Session, error) {
	c.invalidate(key)
	defer c.invalidate(key)
	return c.Store.Delete(ctx, key, tomb)
}

// Len is the number of cached records.
func (c *Store) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}

// Unwrap returns the wrapped store, for optional abilities (such as
// counting sessions) that the cache does not change.
func (c *Store) Unwrap() sessionstore.Store { return c.Store }
