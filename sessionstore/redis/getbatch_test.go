package redis

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Concurrent reads of many sessions, batched together, each get their own
// session; a session deleted before a read was queued is not found by it.
func TestBatchedGets(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	var sessions []*sessionstore.Session
	for range 40 {
		s := newSession("alice", time.Hour)
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	var wg sync.WaitGroup
	for round := range 10 {
		for i, s := range sessions {
			wg.Go(func() {
				got, err := st.Get(ctx, s.Key)
				if err != nil || got.Key != s.Key || got.Handle != s.Handle {
					t.Errorf("round %d, session %d: got %v, %v", round, i, got, err)
				}
			})
		}
	}
	wg.Wait()

	for i, s := range sessions[:20] {
		if _, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		// Reads of other sessions keep the batcher busy meanwhile.
		for _, other := range sessions[20:] {
			wg.Go(func() { _, _ = st.Get(ctx, other.Key) })
		}
		if _, err := st.Get(ctx, s.Key); !errors.Is(err, sessionstore.ErrNotFound) {
			t.Errorf("session %d read after its Delete: %v, want ErrNotFound", i, err)
		}
	}
	wg.Wait()
}

// A reader that gives up (its context ends) returns at once; the batch it
// was in still answers the others.
func TestBatchedGetCanceled(t *testing.T) {
	st := newTestStore(t)
	s := newSession("alice", time.Hour)
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Get(ctx, s.Key); err == nil {
		t.Error("Get with an ended context succeeded")
	}
	if _, err := st.Get(context.Background(), s.Key); err != nil {
		t.Errorf("Get after a canceled one: %v", err)
	}
}
