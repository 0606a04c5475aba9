package bff

import (
	"bytes"
	"sync"
)

// openedCacheSize bounds the entries of each opened-token cache: an access
// token is about 2 KB, so at most about 20 MB for the access tokens.
const openedCacheSize = 10_000

// openedCache remembers, per session, the sealed bytes last opened and what
// they opened to (the access token, the route-token set), so a request
// whose session record carries the same sealed bytes skips the decryption
// and unpacking.
//
// It never decides whether a session is alive: it is consulted only with a
// record that was just read from the store (or from a cache that a kill
// invalidates), and it answers only when that record's sealed bytes are
// byte-for-byte the ones it opened. A refresh writes new sealed bytes, so
// the old plaintext is never served for them; a kill drops the entry.
type openedCache[V any] struct {
	mu      sync.Mutex
	entries map[string]openedEntry[V]
}

type openedEntry[V any] struct {
	sealed []byte
	value  V
}

func newOpenedCache[V any]() *openedCache[V] {
	return &openedCache[V]{entries: make(map[string]openedEntry[V])}
}

func (c *openedCache[V]) get(key string, sealed []byte) (V, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.sealed, sealed) {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (c *openedCache[V]) put(key string, sealed []byte, value V) {
	e := openedEntry[V]{sealed: bytes.Clone(sealed), value: value}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= openedCacheSize {
		for k := range c.entries { // an arbitrary victim: map order is random
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
}

func (c *openedCache[V]) drop(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}
