package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// testPeer checks that a second instance on the same backing data sees the
// same sessions, locks, replay entries and events.
func testPeer(t *testing.T, h Harness) {
	a := h.New(t)
	b := h.Peer(t, a)
	ctx := context.Background()

	s := session(t, "sub-peer", time.Hour)
	mustCreate(t, a, s)
	sameSession(t, "Get on the peer", mustGet(t, b, s.Key), s)
	upd := mustGet(t, b, s.Key)
	upd.Scope = "openid"
	if err := b.Update(ctx, upd); err != nil {
		t.Fatalf("Update on the peer: %v", err)
	}
	s.Scope = "x"
	wantErr(t, "stale Update on the first instance", a.Update(ctx, s), sessionstore.ErrConflict)

	l, err := a.Lock(ctx, "refresh:peer", time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	_, err = b.Lock(ctx, "refresh:peer", time.Minute)
	wantErr(t, "Lock on the peer", err, sessionstore.ErrLocked)
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	lb, err := b.Lock(ctx, "refresh:peer", time.Minute)
	if err != nil {
		t.Fatalf("Lock on the peer after Release: %v", err)
	}
	lb.Release(ctx)

	if first, err := a.Remember(ctx, "jti-peer", time.Minute); err != nil || !first {
		t.Errorf("Remember = %v, %v; want true", first, err)
	}
	if first, err := b.Remember(ctx, "jti-peer", time.Minute); err != nil || first {
		t.Errorf("Remember on the peer = %v, %v; want false", first, err)
	}

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	chA, err := a.Subscribe(subCtx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	chB, err := b.Subscribe(subCtx)
	if err != nil {
		t.Fatalf("Subscribe on the peer: %v", err)
	}
	ev := sessionstore.Event{Key: s.Key, Handle: s.Handle, Cause: sessionstore.CauseAdmin}
	if err := a.Publish(ctx, ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	receive(t, "peer subscriber", chB, ev)
	receive(t, "own subscriber", chA, ev)
	ev2 := sessionstore.Event{Key: s.Key, Handle: s.Handle, Cause: sessionstore.CauseBackchannel}
	if err := b.Publish(ctx, ev2); err != nil {
		t.Fatalf("Publish on the peer: %v", err)
	}
	receive(t, "first instance's subscriber", chA, ev2)

	if _, err := b.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatalf("Delete on the peer: %v", err)
	}
	goneEverywhere(t, a, s)
	if tomb, err := a.Tombstone(ctx, s.Key); err != nil || tomb.Cause != sessionstore.CauseAdmin {
		t.Errorf("Tombstone on the first instance = %+v, %v", tomb, err)
	}
}
