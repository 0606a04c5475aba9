package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Lock takes the named lock with SET NX PX and a random fence, so that only
// the holder can release it and a holder that dies is released by the TTL.
func (st *Store) Lock(ctx context.Context, name string, ttl time.Duration) (sessionstore.Lock, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("redis: lock %q: ttl %v is under a millisecond", name, ttl)
	}
	fence := rand.Text()
	k := st.lockKey(name)
	ok, err := st.client.SetNX(ctx, k, fence, ttl).Result()
	if err != nil {
		return nil, st.fail("lock", err)
	}
	if !ok {
		return nil, fmt.Errorf("redis: lock %q: %w", name, sessionstore.ErrLocked)
	}
	return &lock{st: st, key: k, fence: fence}, nil
}

type lock struct {
	st    *Store
	key   string
	fence string
}

// Release deletes the lock only if it still holds this lock's fence; a lock
// that expired and was taken by another holder stays. Releasing twice is
// not an error.
func (l *lock) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.st.client, []string{l.key}, l.fence).Err(); err != nil {
		return l.st.fail("release lock", err)
	}
	return nil
}
