package bff

import (
	"fmt"
	"testing"
)

// The cache answers only for the very sealed bytes it opened: a refreshed
// token (new sealed bytes) misses, as does a dropped (killed) session.
func TestAccessTokenCacheMatchesSealedBytes(t *testing.T) {
	c := newOpenedCache[string]()
	c.put("k", []byte("sealed-1"), "token-1")
	if tok, ok := c.get("k", []byte("sealed-1")); !ok || tok != "token-1" {
		t.Fatalf("get with the same sealed bytes: %q %v", tok, ok)
	}
	if tok, ok := c.get("k", []byte("sealed-2")); ok {
		t.Fatalf("get with other sealed bytes answered %q", tok)
	}
	if tok, ok := c.get("other", []byte("sealed-1")); ok {
		t.Fatalf("get of another session answered %q", tok)
	}
	c.drop("k")
	if _, ok := c.get("k", []byte("sealed-1")); ok {
		t.Fatal("get after drop answered")
	}
}

// The caller's sealed bytes are copied: changing them afterwards does not
// make the cache answer for bytes it never opened.
func TestAccessTokenCacheCopiesSealedBytes(t *testing.T) {
	c := newOpenedCache[string]()
	sealed := []byte("sealed-1")
	c.put("k", sealed, "token-1")
	sealed[0] = 'X'
	if _, ok := c.get("k", sealed); ok {
		t.Fatal("cache answered for bytes changed after put")
	}
}

func TestAccessTokenCacheBounded(t *testing.T) {
	c := newOpenedCache[string]()
	for i := range openedCacheSize + 50 {
		c.put(fmt.Sprint(i), []byte("s"), "t")
	}
	if n := len(c.entries); n != openedCacheSize {
		t.Fatalf("%d entries, want %d", n, openedCacheSize)
	}
}
