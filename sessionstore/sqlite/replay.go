package sqlite

import (
	"context"
	"fmt"
	"time"
)

// Remember records id for ttl; it is first if no unexpired entry existed.
func (s *Store) Remember(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	now := time.Now()
	res, err := s.exec(ctx,
		`INSERT INTO replay (id, expires_at) VALUES (?, ?)
		 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
		 WHERE replay.expires_at <= ?`,
		id, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return false, fmt.Errorf("sqlite: remember: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: remember: %w", err)
	}
	return n > 0, nil
}
