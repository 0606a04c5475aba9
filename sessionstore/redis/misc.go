package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

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

// Publish sends ev to every subscriber of every instance (PUBLISH; in a
// Cluster, PUBLISH reaches the subscribers on every node).
func (st *Store) Publish(ctx context.Context, ev sessionstore.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	if err := st.client.Publish(ctx, st.channel(), b).Err(); err != nil {
		return st.fail("publish", err)
	}
	return nil
}

// subscriberBuffer is how many events a slow subscriber may lag behind
// before it misses some (see sessionstore.Notifier).
const subscriberBuffer = 64

// Subscribe delivers events until ctx ends or the store is closed, then
// closes the channel. It returns only once Redis has confirmed the
// subscription, so an event published right after it returns is delivered.
// go-redis resubscribes by itself after a dropped connection; events
// published while it was away are missed, which the Notifier contract
// allows.
func (st *Store) Subscribe(ctx context.Context) (<-chan sessionstore.Event, error) {
	ps := st.client.Subscribe(ctx, st.channel())
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, st.fail("subscribe", err)
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		ps.Close()
		return nil, fmt.Errorf("redis: subscribe: %w: store closed", sessionstore.ErrUnavailable)
	}
	st.subs[ps] = struct{}{}
	st.mu.Unlock()

	in := ps.Channel(goredis.WithChannelSize(subscriberBuffer))
	out := make(chan sessionstore.Event, subscriberBuffer)
	go func() {
		defer close(out)
		defer func() {
			st.mu.Lock()
			delete(st.subs, ps)
			st.mu.Unlock()
			ps.Close()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-in:
				if !ok {
					return
				}
				var ev sessionstore.Event
				if json.Unmarshal([]byte(msg.Payload), &ev) != nil {
					continue // not ours; never let a bad message stop the stream
				}
				select {
				case out <- ev:
				default: // the subscriber is behind: drop, as documented
				}
			}
		}
	}()
	return out, nil
}
