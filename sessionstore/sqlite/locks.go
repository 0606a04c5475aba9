package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Lock takes the named lock for ttl in one statement: insert it, or take it
// over if the holder's time ran out. Every taking gets a fresh random fence.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (sessionstore.Lock, error) {
	fence := rand.Text()
	now := time.Now()
	res, err := s.exec(ctx,
		`INSERT INTO locks (name, fence, expires_at) VALUES (?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET fence = excluded.fence, expires_at = excluded.expires_at
		 WHERE locks.expires_at <= ?`,
		name, fence, ms(now.Add(ttl)), ms(now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %q: %w", name, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("sqlite: lock %q: %w", name, sessionstore.ErrLocked)
	}
	return &lock{s: s, name: name, fence: fence}, nil
}

type lock struct {
	s     *Store
	name  string
	fence string
}

// Release deletes the lock only if it still carries this lock's fence.
func (l *lock) Release(ctx context.Context) error {
	if _, err := l.s.exec(ctx, "DELETE FROM locks WHERE name = ? AND fence = ?", l.name, l.fence); err != nil {
		return fmt.Errorf("sqlite: release lock %q: %w", l.name, err)
	}
	return nil
}
