package redis

import (
	"context"
	"fmt"
	"time"
)

// Remember records id with SET NX PX; the first caller across all
// instances gets true.
func (st *Store) Remember(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, fmt.Errorf("redis: remember: ttl %v is under a millisecond", ttl)
	}
	first, err := st.client.SetNX(ctx, st.replayKey(id), "1", ttl).Result()
	if err != nil {
		return false, st.fail("remember", err)
	}
	return first, nil
}
