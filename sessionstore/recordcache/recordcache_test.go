package recordcache_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/recordcache"
	"github.com/bffproxy/bff/sessionstore/sqlite"
	"github.com/bffproxy/bff/sessionstore/storetest"
)

func openSQLite(t *testing.T) sessionstore.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sessions.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// The cache in front of sqlite passes the whole store suite: it changes
// nothing a caller can observe, expiry included.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{New: func(t *testing.T) sessionstore.Store {
		return recordcache.New(openSQLite(t), 0)
	}})
}

// keys maps the tests' short names to store keys as the BFF makes them.
var keys sync.Map

func key(name string) string {
	k, _ := keys.LoadOrStore(name, sessionstore.KeyFromCookie(name+time.Now().String()))
	return k.(string)
}

func session(name string) *sessionstore.Session {
	now := time.Now()
	k := key(name)
	return &sessionstore.Session{
		Key: k, Handle: sessionstore.HandleFromKey(k), Subject: "alice",
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour),
	}
}

// A cached record is served without the store: after the first read, a
// record changed behind the cache's back (which no caller may do) is not
// seen — this proves the cache answers — while every change made through
// the cache is seen at once: Update, Touch, and above all Delete (a kill).
func TestChangesThroughTheCacheAreSeenAtOnce(t *testing.T) {
	ctx := context.Background()
	backing := openSQLite(t)
	c := recordcache.New(backing, 0)
	s := session("k1")
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, key("k1")); err != nil {
		t.Fatal(err)
	}
	behind, _ := backing.Get(ctx, key("k1"))
	behind.Scope = "changed behind the cache"
	if err := backing.Update(ctx, behind); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, key("k1")); got.Scope != "" || got.Version != 1 {
		t.Fatalf("second Get: scope %q version %d; want the cached record (version 1)", got.Scope, got.Version)
	}

	cur, _ := backing.Get(ctx, key("k1"))
	cur.Scope = "through the cache"
	if err := c.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, key("k1")); got.Scope != "through the cache" {
		t.Fatalf("after Update: scope %q", got.Scope)
	}
	later := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := c.Touch(ctx, key("k1"), later, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, key("k1")); !got.LastSeen.Equal(later) {
		t.Fatalf("after Touch: LastSeen %v, want %v", got.LastSeen, later)
	}
	if _, err := c.Delete(ctx, key("k1"), sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, key("k1")); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
}

// A returned record is the caller's own: changing it does not change what
// the next caller gets.
func TestGetReturnsCopies(t *testing.T) {
	ctx := context.Background()
	c := recordcache.New(openSQLite(t), 0)
	if err := c.Create(ctx, session("k1")); err != nil {
		t.Fatal(err)
	}
	a, _ := c.Get(ctx, key("k1"))
	a.LastSeen = time.Time{}
	a.Scope = "mine"
	b, _ := c.Get(ctx, key("k1"))
	if b.Scope != "" || b.LastSeen.IsZero() {
		t.Fatalf("second Get saw the first caller's changes: %+v", b)
	}
}

// Reads racing with a Delete never leave the deleted record in the cache.
func TestDeleteRacingReads(t *testing.T) {
	ctx := context.Background()
	c := recordcache.New(openSQLite(t), 0)
	for round := range 50 {
		s := session(fmt.Sprint("race-", round))
		key := s.Key
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { _, _ = c.Get(ctx, key) })
		}
		if _, err := c.Delete(ctx, key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := c.Get(ctx, key); !errors.Is(err, sessionstore.ErrNotFound) {
			t.Fatalf("round %d: Get after Delete: %v, want ErrNotFound", round, err)
		}
	}
}

// The cache holds at most its size.
func TestBounded(t *testing.T) {
	ctx := context.Background()
	backing := openSQLite(t)
	c := recordcache.New(backing, 3)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := c.Create(ctx, session(k)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, key(k)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("%d records cached, want 3", n)
	}
}
