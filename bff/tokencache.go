package bff

import (
	"bytes"
	"sync"
)

// accessTokenCacheSize bounds the unsealed access tokens kept in memory:
// about 2 KB each, so at most about 20 MB.
const accessTokenCacheSize = 10_000

// accessTokenCache remembers, per session, the sealed access token last
// opened and its plaintext, so a request whose session record carries the
// same sealed bytes skips the decryption and unpacking.
//
// It never decides whether a session is alive: it is consulted only with a
// record that was just read from the store (or from a cache that a kill
// invalidates), and it answers only when that record's sealed token is
// byte-for-byte the one it opened. A refresh writes a new sealed token, so
// the old plaintext is never served for it; a kill drops the entry.
type accessTokenCache struct {
	mu      sync.Mutex
	entries map[string]accessTokenEntry
}

type accessTokenEntry struct {
	sealed []byte
	token  string
}

func newAccessTokenCache() *accessTokenCache {
	return &accessTokenCache{entries: make(map[string]accessTokenEntry)}
}

func (c *accessTokenCache) get(key string, sealed []byte) (string, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.sealed, sealed) {
		return "", false
	}
	return e.token, true
}

func (c *accessTokenCache) put(key string, sealed []byte, token string) {
	e := accessTokenEntry{sealed: bytes.Clone(sealed), token: token}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= accessTokenCacheSize {
		for k := range c.entries { // an arbitrary victim: map order is random
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
}

func (c *accessTokenCache) drop(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}
