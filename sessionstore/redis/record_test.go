package redis

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
)

func TestPackKey(t *testing.T) {
	canonical := sessionstore.KeyFromCookie("cookie")
	for _, k := range []string{canonical, "k", "", "\x00x", "0123456789abcdef0123456789abcdef", canonical[:42] + "!"} {
		p := packKey(k)
		if got := unpackKey(p); got != k {
			t.Errorf("unpackKey(packKey(%q)) = %q", k, got)
		}
	}
	if p := packKey(canonical); len(p) != packedKeySize {
		t.Errorf("packKey of a session key is %d bytes, want %d", len(p), packedKeySize)
	}
	// Written as text before keys were packed: still reads as itself.
	if got := unpackKey(canonical); got != canonical {
		t.Errorf("unpackKey of a text key = %q", got)
	}
}

// TestLegacyTextIndex: index members and a handle pointer written as text
// (before keys were packed) still lead to the session, are raised with it
// and go with it.
func TestLegacyTextIndex(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	s := &sessionstore.Session{Key: sessionstore.KeyFromCookie(rand.Text()), Handle: "h1", Subject: "s1",
		IdPSID: "sid1", CreatedAt: now, ExpiresAt: now.Add(time.Minute), AbsoluteExpiresAt: now.Add(time.Minute)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	// Rewrite the auxiliary keys as the previous version wrote them.
	for _, ik := range []string{st.subjectKey("s1"), st.sidKey("sid1")} {
		sc, err := st.client.ZScore(ctx, ik, packKey(s.Key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		st.client.ZRem(ctx, ik, packKey(s.Key))
		st.client.ZAdd(ctx, ik, goredis.Z{Score: sc, Member: s.Key})
	}
	st.client.Set(ctx, st.handleKey("h1"), s.Key, goredis.KeepTTL)

	if got, err := st.GetByHandle(ctx, "h1"); err != nil || got.Key != s.Key {
		t.Fatalf("GetByHandle: %v, %v", got, err)
	}
	bySub, err1 := st.ListBySubject(ctx, "s1")
	bySID, err2 := st.ListByIdPSID(ctx, "sid1")
	if len(bySub) != 1 || len(bySID) != 1 || err1 != nil || err2 != nil {
		t.Fatalf("ListBySubject: %v, %v; ListByIdPSID: %v, %v", bySub, err1, bySID, err2)
	}
	// Beyond the horizon: the text members are raised too.
	exp := now.Add(time.Hour)
	if err := st.Touch(ctx, s.Key, now, exp); err != nil {
		t.Fatal(err)
	}
	if sc, _ := st.client.ZScore(ctx, st.subjectKey("s1"), s.Key).Result(); int64(sc) < exp.UnixMilli() {
		t.Errorf("text member's score %v not raised to %v", int64(sc), exp.UnixMilli())
	}
	if _, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{st.handleKey("h1"), st.subjectKey("s1"), st.sidKey("sid1")} {
		if n, _ := st.client.Exists(ctx, k).Result(); n != 0 {
			t.Errorf("%s left after Delete", k)
		}
	}
}
