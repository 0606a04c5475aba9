package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// TestDerivedHandle covers sessions as the BFF makes them, whose handle is
// derived from the key: stored under the handle, with no handle pointer,
// indexed by the handle's 16 bytes, and every read checking the key the
// record carries.
func TestDerivedHandle(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	mk := func(cookie, sub string) *sessionstore.Session {
		key := sessionstore.KeyFromCookie(cookie + rand16())
		return &sessionstore.Session{
			Key: key, Handle: sessionstore.HandleFromKey(key), Subject: sub, IdPSID: "isid-" + cookie,
			AccessToken: []byte("sealed"), CreatedAt: now, LastSeen: now,
			ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour),
		}
	}
	a, b := mk("a", "s1"), mk("b", "s1")
	for _, s := range []*sessionstore.Session{a, b} {
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if st.locOf(a).rk != st.handleKey(a.Handle) {
		t.Fatalf("record of a derived session at %q", st.locOf(a).rk)
	}
	if n, _ := st.client.Exists(ctx, st.recordKey(a.Key)).Result(); n != 0 {
		t.Error("record also under the key")
	}
	for _, k := range prefixKeys(t, st.client, st.prefix) {
		if d, err := st.client.PTTL(ctx, k).Result(); err != nil || d <= 0 {
			t.Errorf("key %q: PTTL %v, %v; want a TTL", k, d, err)
		}
	}
	if got, err := st.Get(ctx, a.Key); err != nil || got.Handle != a.Handle || got.Key != a.Key {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if got, err := st.GetByHandle(ctx, a.Handle); err != nil || got.Key != a.Key {
		t.Fatalf("GetByHandle = %+v, %v", got, err)
	}
	// Another key with the same handle prefix is not that session.
	raw, _ := b64.DecodeString(a.Key)
	raw[31] ^= 1
	other := b64.EncodeToString(raw)
	if sessionstore.HandleFromKey(other) != a.Handle {
		t.Fatal("test key does not share the handle")
	}
	if _, err := st.Get(ctx, other); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("Get of a key sharing the handle: %v, want ErrNotFound", err)
	}
	if err := st.Touch(ctx, other, now, now.Add(time.Hour)); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("Touch of a key sharing the handle: %v, want ErrNotFound", err)
	}
	if _, err := st.Delete(ctx, other, sessionstore.Tombstone{TTL: time.Minute}); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("Delete of a key sharing the handle: %v, want ErrNotFound", err)
	}
	// Same key, or same handle under another key, is a conflict.
	dup := *a
	if err := st.Create(ctx, &dup); !errors.Is(err, sessionstore.ErrConflict) {
		t.Errorf("Create of a taken key: %v", err)
	}
	taken := mk("c", "s2")
	taken.Handle = a.Handle
	if err := st.Create(ctx, taken); !errors.Is(err, sessionstore.ErrConflict) {
		t.Errorf("Create with a taken derived handle: %v", err)
	}
	// Update, Touch beyond the horizon, and the indexes.
	a.Scope = "openid"
	a.ExpiresAt = now.Add(3 * time.Hour)
	if err := st.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.Touch(ctx, b.Key, now, now.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec, _ := st.client.PExpireTime(ctx, st.locOf(b).rk).Result()
	for _, k := range []string{st.subjectKey("s1"), st.sidKey(b.IdPSID)} {
		if d, _ := st.client.PExpireTime(ctx, k).Result(); d < rec {
			t.Errorf("%s expires at %v, before its record at %v", k, d, rec)
		}
	}
	hb, _ := b64.DecodeString(b.Handle)
	if sc, err := st.client.ZScore(ctx, st.subjectKey("s1"), string(hb)).Result(); err != nil || int64(sc) < rec.Milliseconds() {
		t.Errorf("index score %v, %v; want at least %v", sc, err, rec.Milliseconds())
	}
	list, err := st.ListBySubject(ctx, "s1")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListBySubject = %v, %v", list, err)
	}
	if list, err := st.ListByIdPSID(ctx, a.IdPSID); err != nil || len(list) != 1 || list[0].Scope != "openid" {
		t.Fatalf("ListByIdPSID = %v, %v", list, err)
	}
	// A non-derived session lives beside them, and List finds all.
	c := mk("c", "s1")
	c.Handle = "h-plain"
	if err := st.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	page, next, err := st.List(ctx, "", 1)
	n := len(page)
	for err == nil && next != "" {
		page, next, err = st.List(ctx, next, 1)
		n += len(page)
	}
	if err != nil || n != 3 {
		t.Errorf("List found %d sessions, %v; want 3", n, err)
	}
	// Delete leaves a tombstone only the key reads, and no index entry.
	if _, err := st.Delete(ctx, a.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: now, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if tb, err := st.Tombstone(ctx, a.Key); err != nil || tb.Cause != sessionstore.CauseAdmin {
		t.Errorf("Tombstone = %+v, %v", tb, err)
	}
	if _, err := st.Tombstone(ctx, other); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("Tombstone of a key sharing the handle: %v", err)
	}
	if _, err := st.GetByHandle(ctx, a.Handle); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("GetByHandle after Delete: %v", err)
	}
	if list, err := st.ListBySubject(ctx, "s1"); err != nil || len(list) != 2 {
		t.Errorf("ListBySubject after Delete = %v, %v", list, err)
	}
	if n, _ := st.client.ZCard(ctx, st.subjectKey("s1")).Result(); n != 2 {
		t.Errorf("subject index holds %d members, want 2", n)
	}
}

func rand16() string { return randomB64(16) }
