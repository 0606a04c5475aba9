package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
)

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
