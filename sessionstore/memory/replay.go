package memory

import (
	"context"
	"time"
)

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
