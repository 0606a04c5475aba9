package sessionstore

import (
	"context"
	"sync"
)

// Broadcaster is an in-process Notifier for the single-node backends
// (memory, sqlite): every subscriber in this process receives every event.
// The zero value is ready to use.
type Broadcaster struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// Publish delivers ev to every current subscriber without blocking; a
// subscriber whose buffer is full misses it (see Notifier).
func (b *Broadcaster) Publish(_ context.Context, ev Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
		}
	}
	return nil
}

// Subscribe delivers events until ctx ends.
func (b *Broadcaster) Subscribe(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, 64)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[chan Event]struct{})
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		close(ch)
		b.mu.Unlock()
	}()
	return ch, nil
}
