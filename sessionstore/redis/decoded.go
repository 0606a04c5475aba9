package redis

import (
	"bytes"
	"sync"

	"github.com/bffproxy/bff/sessionstore"
)

// decodedSize bounds the decoded records kept (each about twice a
// record's size: the stored bytes and the decoded session).
const decodedSize = 10_000

// decodedRecords saves decoding a record that has not changed since it was
// last read. Redis is still read on every request — a kill on any
// instance is refused at the very next request everywhere — and a read
// reuses the decoded session only when Redis returned the very same bytes
// it was decoded from: a change of any kind (refresh, touch, kill, a new
// session under the handle) is a miss. Decoding was about a quarter of
// the store's CPU per proxied call in the bench's profile.
type decodedRecords struct {
	mu      sync.Mutex
	records map[string]decodedRecord // by record key
}

type decodedRecord struct {
	raw  []byte
	sess *sessionstore.Session
}

// decode returns the session that record b, read under record key rk,
// holds; the caller owns the copy it gets.
func (c *decodedRecords) decode(rk string, b []byte) (*sessionstore.Session, error) {
	c.mu.Lock()
	e, ok := c.records[rk]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, b) {
		return e.sess.Clone(), nil
	}
	s, err := decodeRecord(b)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if _, ok := c.records[rk]; !ok && len(c.records) >= decodedSize {
		for k := range c.records { // any one: map order is random
			delete(c.records, k)
			break
		}
	}
	c.records[rk] = decodedRecord{raw: b, sess: s}
	c.mu.Unlock()
	return s.Clone(), nil
}

// forget drops the record under rk (its session was deleted here).
func (c *decodedRecords) forget(rk string) {
	c.mu.Lock()
	delete(c.records, rk)
	c.mu.Unlock()
}
