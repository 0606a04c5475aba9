package memory

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// decode returns a copy of the entry's session. The record is decoded once
// per write and kept; every caller gets its own copy, which is cheaper than
// decoding on every read (the hot path reads the session on every request).
// Callers hold mu.
func (e *entry) decode() (*sessionstore.Session, error) {
	if e.decoded == nil {
		sess, err := sessionstore.Decode(e.key, e.version, e.record)
		if err != nil {
			return nil, err
		}
		e.decoded = sess
	}
	return e.decoded.Clone(), nil
}

// Create stores a new session with Version 1. When the store is full it
// first evicts the session closest to expiry (see the package doc).
func (s *Store) Create(_ context.Context, sess *sessionstore.Session) error {
	if err := sessionstore.CheckHandle(sess); err != nil {
		return fmt.Errorf("memory: create session: %w", err)
	}
	rec, err := sessionstore.Encode(sess)
	if err != nil {
		return fmt.Errorf("memory: create session: %w", err)
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.live(sess.Key, now) != nil {
		return fmt.Errorf("memory: create session: key taken: %w", sessionstore.ErrConflict)
	}
	if h := s.byHandle[sess.Handle]; h != nil && s.live(h.key, now) != nil {
		return fmt.Errorf("memory: create session: handle taken: %w", sessionstore.ErrConflict)
	}
	if !sess.ExpiresAt.After(now) {
		// Already over: nothing to keep, but the caller asked for a
		// session and got one that simply is not live.
		sess.Version = 1
		return nil
	}
	if len(s.sessions) >= s.max {
		s.purge(now)
		for len(s.sessions) >= s.max && len(s.byExpiry) > 0 {
			victim := s.byExpiry[0]
			s.remove(victim)
			s.tombs[victim.key] = tombstone{
				cause: sessionstore.CauseExpired, at: now,
				ttl: evictedTombstoneTTL, expires: now.Add(evictedTombstoneTTL),
			}
		}
	}
	e := &entry{
		key: sess.Key, handle: sess.Handle, subject: sess.Subject, sid: sess.IdPSID,
		created: sess.CreatedAt, expires: sess.ExpiresAt, version: 1, record: rec,
	}
	s.sessions[e.key] = e
	s.byHandle[e.handle] = e
	addToSet(s.bySubject, e.subject, e)
	addToSet(s.bySID, e.sid, e)
	heap.Push(&s.byExpiry, e)
	sess.Version = 1
	return nil
}

// Get returns a copy of the live session under key.
func (s *Store) Get(_ context.Context, key string) (*sessionstore.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	e := s.live(key, time.Now())
	if e == nil {
		return nil, fmt.Errorf("memory: get session: %w", sessionstore.ErrNotFound)
	}
	return e.decode()
}

// GetByHandle returns a copy of the live session with that handle.
func (s *Store) GetByHandle(_ context.Context, handle string) (*sessionstore.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if e := s.byHandle[handle]; e != nil && s.live(e.key, time.Now()) == e {
		return e.decode()
	}
	return nil, fmt.Errorf("memory: get session by handle: %w", sessionstore.ErrNotFound)
}

// Update replaces the session if its version still matches sess.Version.
// Changing Key, Handle, Subject or IdPSID is refused with ErrInvalid: the
// indexes are built on them.
func (s *Store) Update(_ context.Context, sess *sessionstore.Session) error {
	rec, err := sessionstore.Encode(sess)
	if err != nil {
		return fmt.Errorf("memory: update session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	now := time.Now()
	e := s.live(sess.Key, now)
	switch {
	case e == nil:
		return fmt.Errorf("memory: update session: %w", sessionstore.ErrNotFound)
	case e.version != sess.Version:
		return fmt.Errorf("memory: update session: stored version %d, have %d: %w", e.version, sess.Version, sessionstore.ErrConflict)
	case e.handle != sess.Handle || e.subject != sess.Subject || e.sid != sess.IdPSID:
		return fmt.Errorf("memory: update session: identity fields changed: %w", sessionstore.ErrInvalid)
	}
	e.version++
	e.record, e.decoded = rec, nil
	e.created = sess.CreatedAt
	s.setExpiry(e, sess.ExpiresAt, now)
	sess.Version = e.version
	return nil
}

// setExpiry moves e to its new expiry, dropping it if that is already past.
// Callers hold mu.
func (s *Store) setExpiry(e *entry, expires, now time.Time) {
	e.expires = expires
	if !expires.After(now) {
		s.remove(e)
		return
	}
	heap.Fix(&s.byExpiry, e.index)
}

// Touch sets LastSeen and ExpiresAt of a live session, keeping its version.
func (s *Store) Touch(_ context.Context, key string, lastSeen, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	now := time.Now()
	e := s.live(key, now)
	if e == nil {
		return fmt.Errorf("memory: touch session: %w", sessionstore.ErrNotFound)
	}
	sess, err := e.decode()
	if err != nil {
		return fmt.Errorf("memory: touch session: %w", err)
	}
	sess.LastSeen, sess.ExpiresAt = lastSeen, expiresAt
	rec, err := sessionstore.Encode(sess)
	if err != nil {
		return fmt.Errorf("memory: touch session: %w", err)
	}
	e.record, e.decoded = rec, nil
	s.setExpiry(e, expiresAt, now)
	return nil
}

// Delete removes the session and leaves tomb under its key for tomb.TTL (no
// tombstone when TTL <= 0; At defaults to now).
func (s *Store) Delete(_ context.Context, key string, tomb sessionstore.Tombstone) (*sessionstore.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	now := time.Now()
	e := s.live(key, now)
	if e == nil {
		return nil, fmt.Errorf("memory: delete session: %w", sessionstore.ErrNotFound)
	}
	s.remove(e)
	if tomb.TTL > 0 {
		if tomb.At.IsZero() {
			tomb.At = now
		}
		s.tombs[key] = tombstone{cause: tomb.Cause, at: tomb.At.Round(0), ttl: tomb.TTL, expires: now.Add(tomb.TTL)}
	}
	sess, err := e.decode()
	if err != nil {
		return nil, fmt.Errorf("memory: delete session: %w", err)
	}
	return sess, nil
}

// Tombstone returns the unexpired tombstone under key.
func (s *Store) Tombstone(_ context.Context, key string) (sessionstore.Tombstone, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sessionstore.Tombstone{}, errClosed
	}
	tb, ok := s.tombs[key]
	if !ok || !tb.expires.After(time.Now()) {
		delete(s.tombs, key)
		return sessionstore.Tombstone{}, fmt.Errorf("memory: tombstone: %w", sessionstore.ErrNotFound)
	}
	return sessionstore.Tombstone{Cause: tb.cause, At: tb.at, TTL: tb.ttl}, nil
}

// ListBySubject returns the live sessions of subject, newest first.
func (s *Store) ListBySubject(_ context.Context, subject string) ([]*sessionstore.Session, error) {
	return s.listSet(s.bySubject, subject, "memory: list by subject")
}

// ListByIdPSID returns the live sessions carrying idpSID, newest first.
func (s *Store) ListByIdPSID(_ context.Context, idpSID string) ([]*sessionstore.Session, error) {
	return s.listSet(s.bySID, idpSID, "memory: list by IdP sid")
}

func (s *Store) listSet(m map[string]map[*entry]struct{}, name, op string) ([]*sessionstore.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if name == "" {
		return nil, nil
	}
	now := time.Now()
	var es []*entry
	for e := range m[name] {
		if e.expires.After(now) {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b *entry) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	out := make([]*sessionstore.Session, 0, len(es))
	for _, e := range es {
		sess, err := e.decode()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, sess)
	}
	return out, nil
}

// List pages through the live sessions in key order; the cursor is the last
// key of the previous page. Each call sorts the keys, which is fine for an
// admin listing and never happens on the request path.
func (s *Store) List(_ context.Context, cursor string, limit int) ([]*sessionstore.Session, string, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, "", errClosed
	}
	now := time.Now()
	var keys []string
	for k, e := range s.sessions {
		if k > cursor && e.expires.After(now) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	out := make([]*sessionstore.Session, 0, len(keys))
	for _, k := range keys {
		sess, err := s.sessions[k].decode()
		if err != nil {
			return nil, "", fmt.Errorf("memory: list sessions: %w", err)
		}
		out = append(out, sess)
	}
	return out, next, nil
}
