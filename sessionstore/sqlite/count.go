package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

var _ sessionstore.SessionCounter = (*Store)(nil)

// CountSessions is exact: the rows whose expiry has not passed, counted
// on the expires_at index.
func (s *Store) CountSessions(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	var n int
	err := s.reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE expires_at > ?", time.Now().UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count sessions: %w", unavailable(err))
	}
	return n, nil
}
