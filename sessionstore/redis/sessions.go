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
)

// Create stores s as a new session with Version 1. A session with a
// derived handle is stored under it (see the package comment): its record
// is created by a script that fails if the name is taken, by another
// record or by a handle pointer. For any other session the handle is
// claimed first (SET NX) and the record created under the key. Either way,
// the index entries are written before the record and confirmed after it
// (see the package comment). A taken key or handle is ErrConflict; a
// session already expired is ErrInvalid.
func (st *Store) Create(ctx context.Context, s *sessionstore.Session) error {
	r, err := encodeRecord(s, 1)
	if err != nil {
		return err
	}
	if !s.ExpiresAt.After(time.Now()) {
		return fmt.Errorf("%w: session already expired at %v", sessionstore.ErrInvalid, s.ExpiresAt)
	}
	// A key lives in one place only: refuse it if the other place has it.
	// (Only sessions made with chosen keys and handles, not the BFF's, can
	// meet there.)
	for _, l := range st.locsOf(s.Key) {
		if l.rk == st.locOf(s).rk {
			continue
		}
		b, err := st.client.Get(ctx, l.rk).Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return st.fail("create", err)
		case ownRecord(l, b):
			return fmt.Errorf("redis: create: key %w", sessionstore.ErrConflict)
		}
	}
	l := st.locOf(s)
	release := func() {}
	if l.kb == "" {
		hk := st.handleKey(s.Handle)
		pk := packKey(s.Key)
		ok, err := st.client.Do(ctx, "SET", hk, pk, "NX", "PXAT", r.horizon).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			return fmt.Errorf("redis: create: handle %w", sessionstore.ErrConflict)
		case err != nil:
			return st.fail("create: claim handle", err)
		case ok != "OK":
			return fmt.Errorf("redis: create: claim handle: unexpected reply %v", ok)
		}
		// From here on, a failure gives the handle back.
		release = func() {
			compareDeleteScript.Run(context.WithoutCancel(ctx), st.client, []string{hk}, pk)
		}
	}

	if err := st.indexAdd(ctx, s, r.horizon, "add"); err != nil {
		release()
		return st.fail("create: index", err)
	}
	res, err := createScript.Run(ctx, st.client, []string{l.rk, l.tk}, r.b, r.expMs).Int()
	if err != nil {
		// The record may or may not exist: keep the handle, which is
		// harmless either way (GetByHandle checks the record).
		return st.fail("create", err)
	}
	if res == 0 {
		release()
		if l.kb != "" {
			return fmt.Errorf("redis: create: key or handle %w", sessionstore.ErrConflict)
		}
		return fmt.Errorf("redis: create: key %w", sessionstore.ErrConflict)
	}
	// Confirm the index entries one millisecond higher: a List that saw the
	// first entry before the record existed and is about to remove it as
	// stale then leaves it alone (its compare-and-remove sees a new score).
	if err := st.indexAdd(ctx, s, r.horizon+1, "add"); err != nil {
		// The session might now be live without an index entry: take it
		// back rather than leave a session a kill by subject cannot find.
		bg := context.WithoutCancel(ctx)
		st.client.Del(bg, l.rk)
		release()
		return st.fail("create: index", err)
	}
	s.Version = 1
	return nil
}

// indexAdd adds (mode "add") or raises (mode "xx") the index entries of s
// to score, in one round trip. Entries are added in the first of their
// forms (see members); raising also raises an entry written as text before
// keys were packed.
func (st *Store) indexAdd(ctx context.Context, s *sessionstore.Session, score int64, mode string) error {
	args := append([]any{score, mode}, members(s)...)
	_, err := st.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		indexAddScript.Eval(ctx, p, []string{st.subjectKey(s.Subject)}, args...)
		if s.IdPSID != "" {
			indexAddScript.Eval(ctx, p, []string{st.sidKey(s.IdPSID)}, args...)
		}
		return nil
	})
	return err
}

// raiseAux raises every auxiliary key of s (index entries, index sets,
// handle pointer) to horizon, never lowering, never re-creating.
func (st *Store) raiseAux(ctx context.Context, s *sessionstore.Session, horizon int64) error {
	args := append([]any{horizon, "xx"}, members(s)...)
	_, err := st.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		indexAddScript.Eval(ctx, p, []string{st.subjectKey(s.Subject)}, args...)
		if s.IdPSID != "" {
			indexAddScript.Eval(ctx, p, []string{st.sidKey(s.IdPSID)}, args...)
		}
		if !derived(s) {
			p.Do(ctx, "PEXPIREAT", st.handleKey(s.Handle), horizon, "GT")
		}
		return nil
	})
	return err
}

// Get returns the live session under key.
func (st *Store) Get(ctx context.Context, key string) (*sessionstore.Session, error) {
	if key == "" {
		return nil, fmt.Errorf("redis: get: %w", sessionstore.ErrNotFound)
	}
	for _, l := range st.locsOf(key) {
		b, err := st.client.Get(ctx, l.rk).Bytes()
		if errors.Is(err, goredis.Nil) || (err == nil && !ownRecord(l, b)) {
			continue
		}
		if err != nil {
			return nil, st.fail("get", err)
		}
		return liveRecord("get", key, b)
	}
	return nil, fmt.Errorf("redis: get: %w", sessionstore.ErrNotFound)
}

// liveRecord decodes b, the record of key, if it is live.
func liveRecord(op, key string, b []byte) (*sessionstore.Session, error) {
	s, err := decodeRecord(key, b)
	if err != nil {
		return nil, fmt.Errorf("redis: %s: %w", op, err)
	}
	if !s.Live(time.Now()) {
		return nil, fmt.Errorf("redis: %s: %w", op, sessionstore.ErrNotFound)
	}
	return s, nil
}

// GetByHandle reads what is stored under the handle: the record of a
// session stored there, or a handle pointer to follow. Either way it checks
// that the record it reaches carries that handle (and, for one stored
// under it, that the handle is derived from the key the record carries).
func (st *Store) GetByHandle(ctx context.Context, handle string) (*sessionstore.Session, error) {
	if handle == "" {
		return nil, fmt.Errorf("redis: get by handle: %w", sessionstore.ErrNotFound)
	}
	v, err := st.client.Get(ctx, st.handleKey(handle)).Bytes()
	if err != nil {
		return nil, st.fail("get by handle", err)
	}
	var s *sessionstore.Session
	if key, ok := embeddedKey(v); ok {
		if sessionstore.HandleFromKey(key) != handle {
			return nil, fmt.Errorf("redis: get by handle: %w", sessionstore.ErrNotFound)
		}
		s, err = liveRecord("get by handle", key, v)
	} else {
		key := unpackKey(string(v))
		l := loc{rk: st.recordKey(key)}
		var b []byte
		b, err = st.client.Get(ctx, l.rk).Bytes()
		switch {
		case errors.Is(err, goredis.Nil) || (err == nil && !ownRecord(l, b)):
			return nil, fmt.Errorf("redis: get by handle: %w", sessionstore.ErrNotFound)
		case err != nil:
			return nil, st.fail("get by handle", err)
		}
		s, err = liveRecord("get by handle", key, b)
	}
	if err != nil {
		return nil, err
	}
	if s.Handle != handle {
		return nil, fmt.Errorf("redis: get by handle: %w", sessionstore.ErrNotFound)
	}
	return s, nil
}

// Update replaces the session if its version is still s.Version. The
// auxiliary keys are raised to the new horizon first (a no-op for a missing
// session), so the record never outlives them.
func (st *Store) Update(ctx context.Context, s *sessionstore.Session) error {
	next := s.Version + 1
	r, err := encodeRecord(s, next)
	if err != nil {
		return err
	}
	if err := st.raiseAux(ctx, s, r.horizon); err != nil {
		return st.fail("update: index", err)
	}
	l := st.locOf(s)
	res, err := updateScript.Run(ctx, st.client, []string{l.rk},
		be64(s.Version), r.b, r.expMs, l.kb).Int()
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
// beyond it, the identity is read, the auxiliary keys are raised, and the
// script runs again with the new horizon.
func (st *Store) Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error {
	if key == "" {
		return fmt.Errorf("redis: touch: %w", sessionstore.ErrNotFound)
	}
	if expiresAt.IsZero() {
		return fmt.Errorf("%w: touch without expiry", sessionstore.ErrInvalid)
	}
	for _, l := range st.locsOf(key) {
		err := st.touchAt(ctx, l, key, lastSeen, expiresAt)
		if !errors.Is(err, sessionstore.ErrNotFound) {
			return err
		}
	}
	return fmt.Errorf("redis: touch: %w", sessionstore.ErrNotFound)
}

// touchAt is Touch of the record at l.
func (st *Store) touchAt(ctx context.Context, l loc, key string, lastSeen, expiresAt time.Time) error {
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
		// Beyond the horizon: raise the auxiliary keys, then retry.
		b, err := st.client.Get(ctx, l.rk).Bytes()
		if err != nil {
			return st.fail("touch", err)
		}
		if !ownRecord(l, b) {
			return fmt.Errorf("redis: touch: %w", sessionstore.ErrNotFound)
		}
		s, err := decodeRecord(key, b)
		if err != nil {
			return fmt.Errorf("redis: touch: %w", err)
		}
		horizon = be64(exp)
		if err := st.raiseAux(ctx, s, exp); err != nil {
			return st.fail("touch: index", err)
		}
	}
	return fmt.Errorf("redis: touch: index horizon did not move")
}

// Delete removes the session and leaves the tombstone in one script, then
// removes the index entries and the handle pointer. Failing that second
// step leaves stale hints only (see the package comment), so it does not
// fail the Delete.
func (st *Store) Delete(ctx context.Context, key string, tomb sessionstore.Tombstone) (*sessionstore.Session, error) {
	if key == "" {
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
	var raw string
	found := false
	for _, l := range st.locsOf(key) {
		// A tombstone under a handle starts with the key it is for.
		raw, err = deleteScript.Run(ctx, st.client, []string{l.rk, l.tk}, l.kb+string(tb), ttl, l.kb).Text()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, st.fail("delete", err)
		}
		found = true
		break
	}
	if !found {
		return nil, fmt.Errorf("redis: delete: %w", sessionstore.ErrNotFound)
	}
	s, err := decodeRecord(key, []byte(raw))
	if err != nil {
		// The record is gone; whatever was left is unreadable anyway.
		return nil, fmt.Errorf("redis: delete: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	forms := members(s)
	st.client.Pipelined(bg, func(p goredis.Pipeliner) error {
		p.ZRem(bg, st.subjectKey(s.Subject), forms...)
		if s.IdPSID != "" {
			p.ZRem(bg, st.sidKey(s.IdPSID), forms...)
		}
		if !derived(s) {
			compareDeleteScript.Eval(bg, p, []string{st.handleKey(s.Handle)}, forms...)
		}
		return nil
	})
	return s, nil
}

// Tombstone returns what Delete left under key, with the time it has left
// as TTL.
func (st *Store) Tombstone(ctx context.Context, key string) (sessionstore.Tombstone, error) {
	if key == "" {
		return sessionstore.Tombstone{}, fmt.Errorf("redis: tombstone: %w", sessionstore.ErrNotFound)
	}
	locs := st.locsOf(key)
	gets := make([]*goredis.StringCmd, len(locs))
	pttls := make([]*goredis.DurationCmd, len(locs))
	_, err := st.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, l := range locs {
			gets[i] = p.Get(ctx, l.tk)
			pttls[i] = p.PTTL(ctx, l.tk)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return sessionstore.Tombstone{}, st.fail("tombstone", err)
	}
	for i, l := range locs {
		v, err := gets[i].Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return sessionstore.Tombstone{}, st.fail("tombstone", err)
		}
		body, ok := strings.CutPrefix(v, l.kb)
		if !ok {
			continue // another session's, under the same handle
		}
		var t sessionstore.Tombstone
		if err := json.Unmarshal([]byte(body), &t); err != nil {
			return sessionstore.Tombstone{}, fmt.Errorf("redis: tombstone: %w: %v", sessionstore.ErrInvalid, err)
		}
		if d := pttls[i].Val(); d > 0 {
			t.TTL = d
		}
		return t, nil
	}
	return sessionstore.Tombstone{}, fmt.Errorf("redis: tombstone: %w", sessionstore.ErrNotFound)
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
// fetches the records in one round trip, and returns the live ones that
// belong; members whose record is gone or belongs elsewhere are removed
// with a compare-and-remove.
func (st *Store) listIndex(ctx context.Context, op, ik string, belongs func(*sessionstore.Session) bool) ([]*sessionstore.Session, error) {
	pairs, err := indexReadScript.Run(ctx, st.client, []string{ik}).StringSlice()
	if err != nil {
		return nil, st.fail(op, err)
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	// A member names a session key (read under the key) or a derived handle
	// (read under the handle, whose record names the key).
	keys := make([]string, 0, len(pairs)/2)
	locs := make([]loc, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		key, handle := unpackMember(pairs[i])
		if handle != "" {
			locs = append(locs, st.handleLoc(handle, ""))
		} else {
			locs = append(locs, loc{rk: st.recordKey(key)})
		}
		keys = append(keys, key)
	}
	recs, err := st.fetch(ctx, locs)
	if err != nil {
		return nil, st.fail(op, err)
	}
	now := time.Now()
	var out []*sessionstore.Session
	var stale []any
	for i, b := range recs {
		member, score := pairs[2*i], pairs[2*i+1]
		var s *sessionstore.Session
		if key, ok := recordAt(locs[i], keys[i], b); ok {
			if s, err = decodeRecord(key, b); err != nil {
				return nil, fmt.Errorf("redis: %s: %w", op, err)
			}
		}
		switch {
		case s == nil || !belongs(s):
			stale = append(stale, member, score)
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
