package redis

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// maxGetPipelines bounds the pipelines of session reads in flight at once.
const maxGetPipelines = 4

// getBatcher sends the session reads of concurrent requests to Redis
// together. Every proxied request reads its session; one GET each costs a
// write and a read system call on both ends, which under load was most of
// the Redis store's cost. A read that arrives while maxGetPipelines
// pipelines are in flight waits for the next one, which carries every read
// that queued meanwhile: batches grow with the load, and a lone read goes
// out at once as a plain GET.
//
// Reads stay exact: a read queued after a write completed (a kill on any
// instance) is sent after it, so it sees it.
type getBatcher struct {
	client goredis.UniversalClient

	mu       sync.Mutex
	pending  []*getCall
	inflight int
}

type getCall struct {
	key  string
	val  []byte
	err  error
	done chan struct{}
}

// get reads key like client.Get(ctx, key).Bytes().
func (b *getBatcher) get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &getCall{key: key, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	var batch []*getCall
	if b.inflight < maxGetPipelines {
		b.inflight++
		batch, b.pending = b.pending, nil
	}
	b.mu.Unlock()
	if batch != nil {
		b.run(batch)
	}
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run sends one batch, then hands the reads that queued meanwhile to a new
// runner, so the caller is not kept serving others.
func (b *getBatcher) run(batch []*getCall) {
	// Shared by several requests: bounded by the client's own timeouts,
	// not by any one request's context.
	ctx := context.Background()
	if len(batch) == 1 {
		c := batch[0]
		c.val, c.err = b.client.Get(ctx, c.key).Bytes()
		close(c.done)
	} else {
		pipe := b.client.Pipeline()
		cmds := make([]*goredis.StringCmd, len(batch))
		for i, c := range batch {
			cmds[i] = pipe.Get(ctx, c.key)
		}
		_, _ = pipe.Exec(ctx) // errors are per command
		for i, c := range batch {
			c.val, c.err = cmds[i].Bytes()
			close(c.done)
		}
	}
	b.mu.Lock()
	next := b.pending
	b.pending = nil
	if len(next) == 0 {
		b.inflight--
	}
	b.mu.Unlock()
	if len(next) > 0 {
		go b.run(next)
	}
}
