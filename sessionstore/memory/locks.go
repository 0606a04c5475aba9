package memory

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

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
