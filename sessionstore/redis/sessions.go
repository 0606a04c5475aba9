package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// Create stores s as a new session with Version 1, under its handle (see
// the package comment), with a script that fails if the handle is taken.
// The index entries are written before the record and confirmed after it
// (see the package comment). A taken key or handle is ErrConflict; a
// session already expired, or with a handle not derived from its key, is
// ErrInvalid.
func (st *Store) Create(ctx context.Context, s *sessionstore.Session) error {
	r, err := st.encodeRecord(s, 1)
	if err != nil {
		return err
	}
	if !s.ExpiresAt.After(time.Now()) {
		return fmt.Errorf("%w: session already expired at %v", sessionstore.ErrInvalid, s.ExpiresAt)
	}
	if err := st.indexAdd(ctx, s, r.horizon, "add"); err != nil {
		return st.fail("create: index", err)
	}
	res, err := createScript.Run(ctx, st.client, []string{r.l.rk, r.l.tk}, r.b, r.expMs).Int()
	if err != nil {
		return st.fail("create", err)
	}
	if res == 0 {
		return fmt.Errorf("redis: create: key or handle %w", sessionstore.ErrConflict)
	}
	// Confirm the index entries one millisecond higher: a List that saw the
	// first entry before the record existed and is about to remove it as
	// stale then leaves it alone (its compare-and-remove sees a new score).
	if err := st.indexAdd(ctx, s, r.horizon+1, "add"); err != nil {
		// The session might now be live without an index entry: take it
		// back rather than leave a session a kill by subject cannot find.
		st.client.Del(context.WithoutCancel(ctx), r.l.rk)
		return st.fail("create: index", err)
	}
	s.Version = 1
	return nil
}

// indexAdd adds (mode "add") or raises only (mode "xx", never re-creating
// the entry of a deleted session) the index entries of s to score, and the
// index sets' TTLs with them, in one round trip.
func (st *Store) indexAdd(ctx context.Context, s *sessionstore.Session, score int64, mode string) error {
	m := member(s.Handle)
	_, err := st.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		indexAddScript.Eval(ctx, p, []string{st.subjectKey(s.Subject)}, score, mode, m)
		if s.IdPSID != "" {
			indexAddScript.Eval(ctx, p, []string{st.sidKey(s.IdPSID)}, score, mode, m)
		}
		return nil
	})
	return err
}

// Get returns the live session under key: one read of the record under
// the handle the key derives, which must carry that key.
func (st *Store) Get(ctx context.Context, key string) (*sessionstore.Session, error) {
	l, ok := st.locOf(key)
	if !ok {
		return nil, fmt.Errorf("redis: get: %w", sessionstore.ErrNotFound)
	}
	b, err := st.gets.get(ctx, l.rk)
	switch {
	case errors.Is(err, goredis.Nil) || (err == nil && !ownRecord(l, b)):
		st.decoded.forget(l.rk)
		return nil, fmt.Errorf("redis: get: %w", sessionstore.ErrNotFound)
	case err != nil:
		return nil, st.fail("get", err)
	}
	s, err := st.decoded.decode(l.rk, b)
	if err != nil {
		return nil, fmt.Errorf("redis: get: %w", err)
	}
	if !s.Live(time.Now()) {
		return nil, fmt.Errorf("redis: get: %w", sessionstore.ErrNotFound)
	}
	return s, nil
}

// GetByHandle reads the record under the handle, which must carry a key
// that derives the handle.
func (st *Store) GetByHandle(ctx context.Context, handle string) (*sessionstore.Session, error) {
	if handle == "" {
		return nil, fmt.Errorf("redis: get by handle: %w", sessionstore.ErrNotFound)
	}
	b, err := st.client.Get(ctx, st.recordKey(handle)).Bytes()
	if err != nil {
		return nil, st.fail("get by handle", err)
	}
	s, err := underHandle(handle, b)
	switch {
	case err != nil:
		return nil, fmt.Errorf("redis: get by handle: %w", err)
	case s == nil || !s.Live(time.Now()):
		return nil, fmt.Errorf("redis: get by handle: %w", sessionstore.ErrNotFound)
	}
	return s, nil
}

// Update replaces the session if its version is still s.Version. The
// index entries are raised to the new horizon first (a no-op for a missing
// session), so the record never outlives them.
func (st *Store) Update(ctx context.Context, s *sessionstore.Session) error {
	next := s.Version + 1
	r, err := st.encodeRecord(s, next)
	if err != nil {
		return err
	}
	if err := st.indexAdd(ctx, s, r.horizon, "xx"); err != nil {
		return st.fail("update: index", err)
	}
	res, err := updateScript.Run(ctx, st.client, []string{r.l.rk},
		be64(s.Version), r.b, r.expMs, r.l.kb).Int()
	if err != nil {
		return st.fail("update", err)
	}
	switch res {
	case 0:
		return fmt.Errorf("redis: update: %w", sessionstore.ErrNotFound)
	case -1:
		return fmt.Errorf("redis: update: %w", sessionstore.ErrConflict)
	}
	s.Version = next
	return nil
}

// Touch sets LastSeen and ExpiresAt of a live session, leaving its version
// and everything else alone. Within the index horizon this is one script;
// beyond it, the identity is read, the index entries are raised, and the
// script runs again with the new horizon.
func (st *Store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	l, ok := st.locOf(key)
	if !ok {
		return fmt.Errorf("redis: touch: %w", sessionstore.ErrNotFound)
	}
	if expiresAt.IsZero() {
		return fmt.Errorf("%w: touch without expiry", sessionstore.ErrInvalid)
	}
	times, exp := be64(nanos(lastSeen))+be64(nanos(expiresAt)), ceilMs(expiresAt)
	horizon := ""
	for range 2 {
		res, err := touchScript.Run(ctx, st.client, []string{l.rk}, times, exp, horizon, l.kb).Int()
		if err != nil {
			return st.fail("touch", err)
		}
		switch res {
		case 1:
			return nil
		case 0:
			return fmt.Errorf("redis: touch: %w", sessionstore.ErrNotFound)
		}
		// Beyond the horizon: raise the index entries, then retry.
		b, err := st.client.Get(ctx, l.rk).Bytes()
		if err != nil {
			return st.fail("touch", err)
		}
		if !ownRecord(l, b) {
			return fmt.Errorf("redis: touch: %w", sessionstore.ErrNotFound)
		}
		s, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("redis: touch: %w", err)
		}
		horizon = be64(exp)
		if err := st.indexAdd(ctx, s, exp, "xx"); err != nil {
			return st.fail("touch: index", err)
		}
	}
	return fmt.Errorf("redis: touch: index horizon did not move")
}

// Delete removes the session and leaves the tombstone in one script, then
// removes the index entries. Failing that second step leaves stale hints
// only (see the package comment), so it does not fail the Delete.
func (st *Store) Delete(ctx context.Context, key string, tomb sessionstore.Tombstone) (*sessionstore.Session, error) {
	l, ok := st.locOf(key)
	if !ok {
		return nil, fmt.Errorf("redis: delete: %w", sessionstore.ErrNotFound)
	}
	tb, err := json.Marshal(tomb)
	if err != nil {
		return nil, fmt.Errorf("redis: delete: tombstone: %w", err)
	}
	ttl := max(tomb.TTL.Milliseconds(), 0)
	if tomb.TTL > 0 && ttl == 0 {
		ttl = 1
	}
	// The tombstone starts with the key it is for: its handle may collide.
	raw, err := deleteScript.Run(ctx, st.client, []string{l.rk, l.tk}, l.kb+string(tb), ttl, l.kb).Text()
	switch {
	case errors.Is(err, goredis.Nil):
		return nil, fmt.Errorf("redis: delete: %w", sessionstore.ErrNotFound)
	case err != nil:
		return nil, st.fail("delete", err)
	}
	s, err := decodeRecord([]byte(raw))
	if err != nil {
		// The record is gone; whatever was left is unreadable anyway.
		return nil, fmt.Errorf("redis: delete: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	m := member(s.Handle)
	st.client.Pipelined(bg, func(p goredis.Pipeliner) error {
		p.ZRem(bg, st.subjectKey(s.Subject), m)
		if s.IdPSID != "" {
			p.ZRem(bg, st.sidKey(s.IdPSID), m)
		}
		return nil
	})
	return s, nil
}

// Tombstone returns what Delete left under key, with the time it has left
// as TTL.
func (st *Store) Tombstone(ctx context.Context, key string) (sessionstore.Tombstone, error) {
	l, ok := st.locOf(key)
	if !ok {
		return sessionstore.Tombstone{}, fmt.Errorf("redis: tombstone: %w", sessionstore.ErrNotFound)
	}
	var get *goredis.StringCmd
	var pttl *goredis.DurationCmd
	_, err := st.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get, pttl = p.Get(ctx, l.tk), p.PTTL(ctx, l.tk)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return sessionstore.Tombstone{}, st.fail("tombstone", err)
	}
	// A missing tombstone, or another key's (whose handle collides).
	body, ok := strings.CutPrefix(get.Val(), l.kb)
	if !ok {
		return sessionstore.Tombstone{}, fmt.Errorf("redis: tombstone: %w", sessionstore.ErrNotFound)
	}
	var t sessionstore.Tombstone
	if err := json.Unmarshal([]byte(body), &t); err != nil {
		return sessionstore.Tombstone{}, fmt.Errorf("redis: tombstone: %w: %v", sessionstore.ErrInvalid, err)
	}
	if d := pttl.Val(); d > 0 {
		t.TTL = d
	}
	return t, nil
}

// ListBySubject returns the live sessions of subject, newest first.
func (st *Store) ListBySubject(ctx context.Context, subject string) ([]*sessionstore.Session, error) {
	if subject == "" {
		return nil, nil
	}
	return st.listIndex(ctx, "list by subject", st.subjectKey(subject),
		func(s *sessionstore.Session) bool { return s.Subject == subject })
}

// ListByIdPSID returns the live sessions carrying that IdP session id,
// newest first.
func (st *Store) ListByIdPSID(ctx context.Context, idpSID string) ([]*sessionstore.Session, error) {
	if idpSID == "" {
		return nil, nil
	}
	return st.listIndex(ctx, "list by IdP sid", st.sidKey(idpSID),
		func(s *sessionstore.Session) bool { return s.IdPSID == idpSID })
}

// listIndex reads an index set (dropping members past their horizon),
// fetches the records under those handles in one round trip, and returns
// the live ones that belong; members whose record is gone or belongs
// elsewhere are removed with a compare-and-remove.
func (st *Store) listIndex(ctx context.Context, op, ik string, belongs func(*sessionstore.Session) bool) ([]*sessionstore.Session, error) {
	pairs, err := indexReadScript.Run(ctx, st.client, []string{ik}).StringSlice()
	if err != nil {
		return nil, st.fail(op, err)
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	handles := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		handles = append(handles, ids.B64.EncodeToString([]byte(pairs[i])))
	}
	recs, err := st.fetch(ctx, handles)
	if err != nil {
		return nil, st.fail(op, err)
	}
	now := time.Now()
	var out []*sessionstore.Session
	var stale []any
	for i, b := range recs {
		s, err := underHandle(handles[i], b)
		if err != nil {
			return nil, fmt.Errorf("redis: %s: %w", op, err)
		}
		switch {
		case s == nil || !belongs(s):
			stale = append(stale, pairs[2*i], pairs[2*i+1])
		case s.Live(now):
			out = append(out, s)
		}
	}
	if len(stale) > 0 {
		// Best effort: a stale member costs a lookup, nothing more.
		indexPruneScript.Run(ctx, st.client, []string{ik}, stale...)
	}
	slices.SortStableFunc(out, func(a, b *sessionstore.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}
