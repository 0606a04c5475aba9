package memory

import (
	"context"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

var _ sessionstore.SessionCounter = (*Store)(nil)

// CountSessions is exact: the entries whose expiry has not passed.
func (s *Store) CountSessions(context.Context) (int, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	n := 0
	for _, e := range s.sessions {
		if now.Before(e.expires) {
			n++
		}
	}
	return n, nil
}
