// Package memory is a session store held in this process's memory.
//
// It is for tests and throw-away setups: sessions end when the process does,
// and instances cannot share it. It nevertheless behaves exactly like the
// durable backends (it passes sessionstore/storetest), so code tested against
// it behaves the same in production:
//
//   - records are kept encoded with sessionstore.Encode, so the memory backend
//     exercises the same encoding, size limit and validation as the others,
//     and a *Session handed out is always a fresh copy that the caller may
//     change freely;
//   - expiry is checked on every read, so an expired session is never
//     returned, and a purge goroutine frees the memory of expired entries;
//   - the store is bounded (Options.MaxSessions). When it is full, Create
//     evicts the session closest to its expiry, which is the one that would
//     have ended first anyway, instead of refusing the login: a flood of
//     logins can therefore push out idle sessions, which is the price of not
//     running out of memory. Evicted sessions leave a CauseExpired tombstone.
package memory

import (
	"container/heap"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Defaults for Options.
const (
	DefaultMaxSessions   = 100000
	DefaultPurgeInterval = time.Minute
	// evictedTombstoneTTL is how long an evicted session's tombstone stays,
	// so its browser learns the session ended rather than seeing a bare 401.
	evictedTombstoneTTL = 10 * time.Minute
	defaultListLimit    = 100
)

// Options configure a Store. The zero value gives the defaults.
type Options struct {
	// MaxSessions bounds the number of stored sessions (default 100000).
	MaxSessions int
	// PurgeInterval is how often expired entries are freed (default one
	// minute). Expiry is checked on every read regardless, so this only
	// bounds how long dead entries take up memory.
	PurgeInterval time.Duration
}

// Store is the in-memory backend. Create it with New and stop it with Close.
type Store struct {
	// Broadcaster is the Notifier: one process, so in-process fan-out is
	// all there is to do.
	sessionstore.Broadcaster

	max int

	mu        sync.Mutex
	closed    bool
	sessions  map[string]*entry // by key
	byExpiry  expiryHeap        // the same entries, soonest expiry first
	byHandle  map[string]*entry
	bySubject map[string]map[*entry]struct{}
	bySID     map[string]map[*entry]struct{}
	tombs     map[string]tombstone
	locks     map[string]lockEntry
	replay    map[string]time.Time // id -> expiry

	stop chan struct{}
	done chan struct{}
}

var _ sessionstore.Store = (*Store)(nil)

// entry is one stored session: its encoded record plus the fields the
// indexes need, so they are kept without decoding.
type entry struct {
	key, handle, subject, sid string
	created                   time.Time
	expires                   time.Time
	version                   int64
	record                    []byte
	index                     int // position in byExpiry
}

type tombstone struct {
	cause   sessionstore.Cause
	at      time.Time
	ttl     time.Duration
	expires time.Time
}

type lockEntry struct {
	fence   string
	expires time.Time
}

// New returns an empty Store and starts its purge goroutine; Close stops it.
func New(opts Options) *Store {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.PurgeInterval <= 0 {
		opts.PurgeInterval = DefaultPurgeInterval
	}
	s := &Store{
		max:       opts.MaxSessions,
		sessions:  make(map[string]*entry),
		byHandle:  make(map[string]*entry),
		bySubject: make(map[string]map[*entry]struct{}),
		bySID:     make(map[string]map[*entry]struct{}),
		tombs:     make(map[string]tombstone),
		locks:     make(map[string]lockEntry),
		replay:    make(map[string]time.Time),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go s.purgeLoop(opts.PurgeInterval)
	return s
}

var errClosed = fmt.Errorf("%w: memory store closed", sessionstore.ErrUnavailable)

func (s *Store) purgeLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			s.purge(now)
			s.mu.Unlock()
		}
	}
}

// purge frees every entry that has expired at now. Callers hold mu.
func (s *Store) purge(now time.Time) {
	for len(s.byExpiry) > 0 && !s.byExpiry[0].expires.After(now) {
		s.remove(s.byExpiry[0])
	}
	for k, tb := range s.tombs {
		if !tb.expires.After(now) {
			delete(s.tombs, k)
		}
	}
	for k, l := range s.locks {
		if !l.expires.After(now) {
			delete(s.locks, k)
		}
	}
	for k, exp := range s.replay {
		if !exp.After(now) {
			delete(s.replay, k)
		}
	}
}

// Close stops the purge goroutine and drops every entry. Later calls fail
// with sessionstore.ErrUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.sessions, s.byExpiry, s.byHandle = map[string]*entry{}, nil, map[string]*entry{}
	s.bySubject, s.bySID = map[string]map[*entry]struct{}{}, map[string]map[*entry]struct{}{}
	s.tombs, s.locks, s.replay = map[string]tombstone{}, map[string]lockEntry{}, map[string]time.Time{}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return nil
}

// Ping reports ErrUnavailable once the store is closed.
func (s *Store) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return nil
}

// live returns the unexpired entry under key, removing it if it expired.
// Callers hold mu.
func (s *Store) live(key string, now time.Time) *entry {
	e := s.sessions[key]
	if e == nil {
		return nil
	}
	if !e.expires.After(now) {
		s.remove(e)
		return nil
	}
	return e
}

// remove drops e and its index entries. Callers hold mu.
func (s *Store) remove(e *entry) {
	delete(s.sessions, e.key)
	if s.byHandle[e.handle] == e {
		delete(s.byHandle, e.handle)
	}
	removeFromSet(s.bySubject, e.subject, e)
	removeFromSet(s.bySID, e.sid, e)
	if e.index >= 0 && e.index < len(s.byExpiry) && s.byExpiry[e.index] == e {
		heap.Remove(&s.byExpiry, e.index)
	}
	e.index = -1
}

func removeFromSet(m map[string]map[*entry]struct{}, name string, e *entry) {
	if name == "" {
		return
	}
	set := m[name]
	delete(set, e)
	if len(set) == 0 {
		delete(m, name)
	}
}

func addToSet(m map[string]map[*entry]struct{}, name string, e *entry) {
	if name == "" {
		return
	}
	set := m[name]
	if set == nil {
		set = make(map[*entry]struct{})
		m[name] = set
	}
	set[e] = struct{}{}
}

func (e *entry) decode() (*sessionstore.Session, error) {
	return sessionstore.Decode(e.key, e.version, e.record)
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
	e.record = rec
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
	e.record = rec
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

// Lock takes the named lock for ttl with a random fencing value.
func (s *Store) Lock(_ context.Context, name string, ttl time.Duration) (sessionstore.Lock, error) {
	fence := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	now := time.Now()
	if l, ok := s.locks[name]; ok && l.expires.After(now) {
		return nil, fmt.Errorf("memory: lock %q: %w", name, sessionstore.ErrLocked)
	}
	s.locks[name] = lockEntry{fence: fence, expires: now.Add(ttl)}
	return &lock{s: s, name: name, fence: fence}, nil
}

type lock struct {
	s     *Store
	name  string
	fence string
}

// Release frees the lock if it still carries this lock's fence; otherwise it
// does nothing.
func (l *lock) Release(context.Context) error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if cur, ok := l.s.locks[l.name]; ok && cur.fence == l.fence {
		delete(l.s.locks, l.name)
	}
	return nil
}

// Remember records id for ttl and reports whether it is new.
func (s *Store) Remember(_ context.Context, id string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errClosed
	}
	now := time.Now()
	if exp, ok := s.replay[id]; ok && exp.After(now) {
		return false, nil
	}
	s.replay[id] = now.Add(ttl)
	return true, nil
}

// expiryHeap orders entries by expiry, for the purge and for eviction.
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
