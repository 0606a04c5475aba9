package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func testCreateGet(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	want := session(t, "sub-create", time.Hour)
	s := clone(want)
	s.Version = 42 // Create must ignore it and start at 1.
	mustCreate(t, st, s)
	if s.Version != 1 {
		t.Errorf("after Create, s.Version = %d, want 1", s.Version)
	}
	want.Version = 1

	got := mustGet(t, st, want.Key)
	sameSession(t, "Get", got, want)

	byHandle, err := st.GetByHandle(ctx, want.Handle)
	if err != nil {
		t.Fatalf("GetByHandle: %v", err)
	}
	sameSession(t, "GetByHandle", byHandle, want)

	// The store keeps its own copy: changing what the caller passed in or
	// got back does not change the stored session.
	s.Claims["name"] = "changed by caller"
	s.AccessToken[0] ^= 0xff
	got.Claims["email"] = "changed by reader"
	got.Secrets[0] ^= 0xff
	sameSession(t, "Get after caller mutations", mustGet(t, st, want.Key), want)
}

func testCreateConflict(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	orig := session(t, "sub-conflict", time.Hour)
	mustCreate(t, st, clone(orig))
	orig.Version = 1

	sameKey := session(t, "sub-other", time.Hour)
	sameKey.Key, sameKey.Handle = orig.Key, orig.Handle
	wantErr(t, "Create with a taken key", st.Create(ctx, sameKey), sessionstore.ErrConflict)

	sameHandle := session(t, "sub-other", time.Hour)
	sameHandle.Key = keySharingHandle(t, orig.Key)
	sameHandle.Handle = orig.Handle
	wantErr(t, "Create with a taken handle", st.Create(ctx, sameHandle), sessionstore.ErrConflict)
	_, err := st.Get(ctx, sameHandle.Key)
	wantErr(t, "Get of the refused session", err, sessionstore.ErrNotFound)

	list, err := st.ListBySubject(ctx, "sub-other")
	if err != nil {
		t.Fatalf("ListBySubject: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("refused sessions are indexed by subject: %v", handles(list))
	}
	sameSession(t, "original after conflicts", mustGet(t, st, orig.Key), orig)
	byHandle, err := st.GetByHandle(ctx, orig.Handle)
	if err != nil {
		t.Fatalf("GetByHandle: %v", err)
	}
	sameSession(t, "original by handle after conflicts", byHandle, orig)
}

// testHandleCollision covers a key that derives the handle of a stored
// session: nothing reads, changes or deletes that session through it.
func testHandleCollision(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	s := session(t, "sub-collide", time.Hour)
	mustCreate(t, st, clone(s))
	s.Version = 1
	other := keySharingHandle(t, s.Key)

	_, err := st.Get(ctx, other)
	wantErr(t, "Get", err, sessionstore.ErrNotFound)
	wantErr(t, "Touch", st.Touch(ctx, other, time.Now(), time.Now().Add(time.Minute)), sessionstore.ErrNotFound)
	imposter := clone(s)
	imposter.Key = other
	imposter.Scope = "changed"
	wantErr(t, "Update", st.Update(ctx, imposter), sessionstore.ErrNotFound)
	_, err = st.Delete(ctx, other, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
	wantErr(t, "Delete", err, sessionstore.ErrNotFound)
	_, err = st.Tombstone(ctx, other)
	wantErr(t, "Tombstone", err, sessionstore.ErrNotFound)
	sameSession(t, "the stored session", mustGet(t, st, s.Key), s)

	// The stored session's tombstone is its own, too.
	if _, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = st.Tombstone(ctx, other)
	wantErr(t, "Tombstone after the stored session's Delete", err, sessionstore.ErrNotFound)
}

func testCreateConcurrent(t *testing.T, st sessionstore.Store) {
	base := session(t, "sub-create-race", time.Hour)
	race(t, "Create of one key", 8, sessionstore.ErrConflict, func(i int) error {
		s := clone(base)
		s.Claims["who"] = fmt.Sprint(i)
		return st.Create(context.Background(), s)
	})
}

func testNotFound(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	_, err := st.Get(ctx, sessionstore.KeyFromCookie("never issued"))
	wantErr(t, "Get missing", err, sessionstore.ErrNotFound)
	_, err = st.Get(ctx, "")
	wantErr(t, `Get("")`, err, sessionstore.ErrNotFound)
	_, err = st.GetByHandle(ctx, "no-such-handle")
	wantErr(t, "GetByHandle missing", err, sessionstore.ErrNotFound)
	_, err = st.GetByHandle(ctx, "")
	wantErr(t, `GetByHandle("")`, err, sessionstore.ErrNotFound)
	_, err = st.Tombstone(ctx, "no-such-key")
	wantErr(t, "Tombstone missing", err, sessionstore.ErrNotFound)

	// Empty names never match everything, even with sessions present.
	s := session(t, "sub-present", time.Hour)
	s.IdPSID = ""
	mustCreate(t, st, s)
	list, err := st.ListBySubject(ctx, "")
	if err != nil || len(list) != 0 {
		t.Errorf(`ListBySubject("") = %v, %v; want nothing`, handles(list), err)
	}
	list, err = st.ListByIdPSID(ctx, "")
	if err != nil || len(list) != 0 {
		t.Errorf(`ListByIdPSID("") = %v, %v; want nothing`, handles(list), err)
	}
	list, err = st.ListBySubject(ctx, "sub-absent")
	if err != nil || len(list) != 0 {
		t.Errorf(`ListBySubject(absent) = %v, %v; want nothing`, handles(list), err)
	}
}

func testUpdate(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	s := session(t, "sub-update", time.Hour)
	mustCreate(t, st, s)

	// A reader that will be stale after the next update.
	stale := mustGet(t, st, s.Key)

	upd := mustGet(t, st, s.Key)
	upd.AccessToken = []byte("new sealed access token")
	upd.Secrets = []byte("new sealed secrets")
	upd.RouteTokens = []byte("sealed route tokens")
	upd.Claims["name"] = "Ada King"
	upd.AccessExpiresAt = upd.AccessExpiresAt.Add(time.Minute)
	upd.ExpiresAt = upd.ExpiresAt.Add(time.Minute)
	if err := st.Update(ctx, upd); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if upd.Version != 2 {
		t.Errorf("after Update, Version = %d, want 2", upd.Version)
	}
	sameSession(t, "Get after Update", mustGet(t, st, s.Key), upd)
	byHandle, err := st.GetByHandle(ctx, s.Handle)
	if err != nil {
		t.Fatalf("GetByHandle: %v", err)
	}
	sameSession(t, "GetByHandle after Update", byHandle, upd)

	// The stale copy loses and changes nothing.
	stale.AccessToken = []byte("stale token")
	wantErr(t, "Update with a stale version", st.Update(ctx, stale), sessionstore.ErrConflict)
	if stale.Version != 1 {
		t.Errorf("a refused Update changed s.Version to %d", stale.Version)
	}
	sameSession(t, "Get after stale Update", mustGet(t, st, s.Key), upd)

	// A version from the future loses too.
	future := clone(upd)
	future.Version = 99
	wantErr(t, "Update with a future version", st.Update(ctx, future), sessionstore.ErrConflict)

	// Once deleted, Update never brings it back.
	if _, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantErr(t, "Update of a deleted session", st.Update(ctx, clone(upd)), sessionstore.ErrNotFound)
	goneEverywhere(t, st, s)

	never := session(t, "sub-update", time.Hour)
	never.Version = 1
	wantErr(t, "Update of a session never created", st.Update(ctx, never), sessionstore.ErrNotFound)
	goneEverywhere(t, st, never)
}

func testUpdateConcurrent(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	s := session(t, "sub-update-race", time.Hour)
	s.Claims = nil
	mustCreate(t, st, s)

	const writers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for w := range writers {
		name := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for done := 0; done < each; {
				cur, err := st.Get(ctx, s.Key)
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				if cur.Claims == nil {
					cur.Claims = map[string]string{}
				}
				n := 0
				fmt.Sscan(cur.Claims[name], &n)
				cur.Claims[name] = fmt.Sprint(n + 1)
				err = st.Update(ctx, cur)
				switch {
				case err == nil:
					done++
				case errors.Is(err, sessionstore.ErrConflict):
					// Lost the race: re-read and try again.
				default:
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range failures {
		t.Errorf("concurrent Update: %v", err)
	}
	final := mustGet(t, st, s.Key)
	if final.Version != writers*each+1 {
		t.Errorf("final Version = %d, want %d (one per successful Update, plus one)", final.Version, writers*each+1)
	}
	for w := range writers {
		name := fmt.Sprintf("w%d", w)
		if final.Claims[name] != fmt.Sprint(each) {
			t.Errorf("writer %s: %q updates survived, want %d (lost update)", name, final.Claims[name], each)
		}
	}
}

func testTouch(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	s := session(t, "sub-touch", time.Hour)
	mustCreate(t, st, s)

	lastSeen := time.Now().Add(time.Second)
	expires := time.Now().Add(2 * time.Hour)
	if err := st.Touch(ctx, s.Key, lastSeen, expires); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	want := clone(s)
	want.LastSeen, want.ExpiresAt = lastSeen, expires
	sameSession(t, "Get after Touch", mustGet(t, st, s.Key), want)

	// Touch does not move the version: an Update prepared before it still wins.
	upd := clone(s)
	upd.Scope = "openid"
	if err := st.Update(ctx, upd); err != nil {
		t.Errorf("Update after Touch with the pre-Touch version: %v", err)
	}

	missing := session(t, "sub-touch", time.Hour)
	wantErr(t, "Touch missing", st.Touch(ctx, missing.Key, lastSeen, expires), sessionstore.ErrNotFound)
	goneEverywhere(t, st, missing)
	wantErr(t, `Touch("")`, st.Touch(ctx, "", lastSeen, expires), sessionstore.ErrNotFound)

	// A request in flight when its session was killed cannot revive it.
	if _, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseUserLogout, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantErr(t, "Touch deleted", st.Touch(ctx, s.Key, lastSeen, expires), sessionstore.ErrNotFound)
	goneEverywhere(t, st, s)
	if tomb, err := st.Tombstone(ctx, s.Key); err != nil || tomb.Cause != sessionstore.CauseUserLogout {
		t.Errorf("Tombstone after Touch of deleted = %+v, %v; want the logout tombstone", tomb, err)
	}
}
