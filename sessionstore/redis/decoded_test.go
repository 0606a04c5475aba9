package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// A read decodes only what changed, and every change — on this store or
// on another instance — is read at once.
func TestDecodedRecordsNeverServeAChangedRecord(t *testing.T) {
	st := newTestStore(t)
	peer := NewFromClient(testClient(t), Options{Prefix: st.prefix})
	t.Cleanup(func() { peer.Close(); peer.client.Close() })
	ctx := context.Background()
	s := newSession("alice", time.Hour)
	s.Claims = map[string]string{"name": "Alice"}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}

	first, err := st.Get(ctx, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	first.Claims["name"] = "changed by the caller" // the caller owns its copy
	first.AccessToken[0] = 'X'
	second, err := st.Get(ctx, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if second.Claims["name"] != "Alice" || string(second.AccessToken) != "sealed" {
		t.Fatalf("a caller's change to its copy reached the next read: %v %q", second.Claims, second.AccessToken)
	}
	if second == first {
		t.Fatal("two reads returned the same session value")
	}

	// Another instance refreshes the session: the next read has it.
	got, err := peer.Get(ctx, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	got.AccessToken = []byte("refreshed")
	if err := peer.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	third, err := st.Get(ctx, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	if string(third.AccessToken) != "refreshed" {
		t.Fatalf("after another instance's refresh: access token %q", third.AccessToken)
	}

	// Another instance kills it: the next read refuses it.
	if _, err := peer.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, s.Key); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("after another instance's kill: %v, want not found", err)
	}
	st.decoded.mu.Lock()
	n := len(st.decoded.records)
	st.decoded.mu.Unlock()
	if n != 0 {
		t.Errorf("%d decoded records kept after the only session was deleted", n)
	}
}

func TestDecodedRecordsAreBounded(t *testing.T) {
	c := &decodedRecords{records: make(map[string]decodedRecord)}
	st := &Store{prefix: "bfftest:bound:"}
	r, err := st.encodeRecord(newSession("bob", time.Hour), 1)
	if err != nil {
		t.Fatal(err)
	}
	raw := r.b
	for i := range decodedSize + 50 {
		if _, err := c.decode(fmt.Sprintf("rk%d", i), raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.records); n != decodedSize {
		t.Errorf("%d decoded records kept, want the bound %d", n, decodedSize)
	}
	if _, err := c.decode("bad", []byte("not a record")); err == nil {
		t.Error("a damaged record decoded")
	}
}
