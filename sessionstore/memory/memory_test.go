package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/storetest"
)

func newStore(t *testing.T) sessionstore.Store {
	s := New(Options{PurgeInterval: 200 * time.Millisecond})
	t.Cleanup(func() { s.Close() })
	return s
}

// dump writes out everything the store holds: encoded records, index names,
// tombstones, locks and replay ids.
func dump(t *testing.T, st sessionstore.Store) []byte {
	s := st.(*Store)
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for k, e := range s.sessions {
		fmt.Fprintf(&b, "%s %s %s %s %d %v\n", k, e.handle, e.subject, e.sid, e.version, e.expires)
		b.Write(e.record)
		b.WriteByte('\n')
	}
	for k, tb := range s.tombs {
		fmt.Fprintf(&b, "tomb %s %+v\n", k, tb)
	}
	for k, l := range s.locks {
		fmt.Fprintf(&b, "lock %s %+v\n", k, l)
	}
	for k, exp := range s.replay {
		fmt.Fprintf(&b, "replay %s %v\n", k, exp)
	}
	return b.Bytes()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{New: newStore, Dump: dump})
}

// key is the key of session i.
func key(i int) string { return sessionstore.KeyFromCookie(fmt.Sprintf("cookie-%d", i)) }

func session(i int, expires time.Time) *sessionstore.Session {
	return &sessionstore.Session{
		Key:       key(i),
		Handle:    sessionstore.HandleFromKey(key(i)),
		Subject:   "sub",
		IdPSID:    "sid",
		CreatedAt: time.Now(),
		ExpiresAt: expires,
	}
}

// TestEvictsClosestToExpiry fills the store and checks that the session that
// would have ended first makes room, and says so in a tombstone.
func TestEvictsClosestToExpiry(t *testing.T) {
	s := New(Options{MaxSessions: 3})
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	for i, d := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
		if err := s.Create(ctx, session(i, now.Add(d))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, session(3, now.Add(30*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key(1)); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("closest to expiry not evicted: %v", err)
	}
	if tb, err := s.Tombstone(ctx, key(1)); err != nil || tb.Cause != sessionstore.CauseExpired {
		t.Errorf("evicted session's tombstone = %+v, %v", tb, err)
	}
	for _, k := range []string{key(0), key(2), key(3)} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Errorf("Get(%s): %v", k, err)
		}
	}
	if list, _ := s.ListBySubject(ctx, "sub"); len(list) != 3 {
		t.Errorf("ListBySubject = %d sessions, want 3", len(list))
	}
	if n := len(s.sessions); n != 3 {
		t.Errorf("holds %d sessions, want 3", n)
	}
}

// TestPurgeFreesMemory checks that expired entries do not linger once the
// purge has run, even if nobody reads them.
func TestPurgeFreesMemory(t *testing.T) {
	s := New(Options{PurgeInterval: 20 * time.Millisecond})
	defer s.Close()
	ctx := context.Background()
	if err := s.Create(ctx, session(1, time.Now().Add(50*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	s.Remember(ctx, "jti", 50*time.Millisecond)
	s.Lock(ctx, "l", 50*time.Millisecond)
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.sessions) + len(s.byHandle) + len(s.bySubject) + len(s.bySID) + len(s.byExpiry) + len(s.replay) + len(s.locks)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries still held after expiry", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
