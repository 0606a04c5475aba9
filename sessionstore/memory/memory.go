// Package memory is a session store held in this process's memory.
//
// It is for tests and throw-away setups: sessions end when the process does,
// and instances cannot share it. It nevertheless behaves exactly like the
// durable backends (it passes sessionstore/storetest), so code tested against
// it behaves the same in production:
//
//   - records are kept encoded with sessionstore.Encode, so the memory backend
//     exercises the same encoding, size limit and validation as the others
//     (the record is decoded once after each write and kept beside it), and
//     a *Session handed out is always a fresh copy that the caller may
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
	"fmt"
	"sync"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/internal/purge"
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

	purger *purge.Loop
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
	// decoded is record decoded (nil until first read after a write);
	// never handed out, only copies of it.
	decoded *sessionstore.Session
	index   int // position in byExpiry
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
	}
	s.purger = purge.Start(opts.PurgeInterval, func(now time.Time) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.purge(now)
	})
	return s
}

var errClosed = fmt.Errorf("%w: memory store closed", sessionstore.ErrUnavailable)

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
	s.purger.Stop()
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

// expiryHeap orders entries by expiry, for the purge and for eviction.
type expiryHeap []*entry

func (h expiryHeap) Len() int { return len(h) }

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
