// Package storetest is the conformance suite every session backend must pass.
//
// The BFF relies on the store for more than persistence: compare-and-swap so
// a stale request cannot overwrite a rotated refresh token, "not found" for a
// killed session even while a request on it is still in flight (no
// resurrection), tombstones so a browser learns why it was logged out, locks
// so one instance refreshes tokens at a time, a replay cache for logout
// tokens, and notifications so a kill cuts streams on every instance. A
// backend that gets any of these subtly wrong turns into a security bug, so
// every backend runs the same suite rather than tests of its own.
//
// A backend's test calls Run with a Harness:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{New: ..., Dump: ...})
//	}
//
// Timing: the expiry checks use TTLs of about one second and wait for them
// once, all together, so the whole suite takes a few seconds per backend.
// Backends must therefore keep expiries with millisecond precision (redis PX,
// not EX). Subtests run one after another; New is never called concurrently.
//
// Where the sessionstore interface leaves room, the suite settles it so that
// all backends behave alike:
//
//   - "Newest first" (ListBySubject) means latest CreatedAt first, not
//     insertion order.
//   - Returned sessions are copies: changing one, or the *Session passed to
//     Create, does not change what is stored. Their times carry no monotonic
//     clock reading (they come from Decode).
//   - Create of a session whose ExpiresAt is already past may succeed or fail
//     with ErrInvalid; either way it is never returned, and its key and
//     handle can be used again.
//   - Tombstone.At comes back within a millisecond of what Delete was given.
//   - Releasing a lock that is no longer held returns nil or ErrNotFound and
//     never frees someone else's lock.
//   - A subscription is live when Subscribe returns: an event published
//     right after it is delivered (on a shared backend, wait for the
//     subscription to be confirmed before returning).
//   - Malformed records are ErrInvalid on Create and Update (including a nil
//     session), never a panic; empty keys, handles, subjects and sids match
//     nothing.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// Harness opens stores of one backend for the suite.
type Harness struct {
	// New returns a fresh, empty store; it registers its own cleanup with
	// t.Cleanup.
	New func(t *testing.T) sessionstore.Store
	// Peer, if set, opens a second handle on the same backing data as s (as
	// a second BFF instance would), for cross-instance tests (notifier,
	// locks). nil for backends that are single-process.
	Peer func(t *testing.T, s sessionstore.Store) sessionstore.Store
	// Dump returns every byte the backend holds for s (all keys, rows and
	// values), for the "no token in clear" check.
	Dump func(t *testing.T, s sessionstore.Store) []byte
}

// ttl is the short lifetime used by the expiry checks, and settle how long
// after it the suite looks again. A backend may expire things late by up to
// settle-ttl (for example until its next purge or its clock tick), never early.
const (
	ttl    = 1 * time.Second
	settle = 1500 * time.Millisecond
	// waitEvent bounds how long a published event may take to arrive.
	waitEvent = 3 * time.Second
)

// Run runs the whole conformance suite against the backend h opens.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("storetest: Harness.New is required")
	}
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, h) })
	t.Run("CreateConflict", func(t *testing.T) { testCreateConflict(t, h) })
	t.Run("HandleCollision", func(t *testing.T) { testHandleCollision(t, h) })
	t.Run("CreateConcurrent", func(t *testing.T) { testCreateConcurrent(t, h) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, h) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, h) })
	t.Run("UpdateConcurrent", func(t *testing.T) { testUpdateConcurrent(t, h) })
	t.Run("Touch", func(t *testing.T) { testTouch(t, h) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, h) })
	t.Run("DeleteConcurrent", func(t *testing.T) { testDeleteConcurrent(t, h) })
	t.Run("AlreadyExpired", func(t *testing.T) { testAlreadyExpired(t, h) })
	t.Run("ListBySubject", func(t *testing.T) { testListBySubject(t, h) })
	t.Run("ListByIdPSID", func(t *testing.T) { testListByIdPSID(t, h) })
	t.Run("List", func(t *testing.T) { testList(t, h) })
	t.Run("Lock", func(t *testing.T) { testLock(t, h) })
	t.Run("LockConcurrent", func(t *testing.T) { testLockConcurrent(t, h) })
	t.Run("Remember", func(t *testing.T) { testRemember(t, h) })
	t.Run("Notifier", func(t *testing.T) { testNotifier(t, h) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, h) })
	t.Run("Ping", func(t *testing.T) { testPing(t, h) })
	t.Run("Timed", func(t *testing.T) { testTimed(t, h) })
	t.Run("Count", func(t *testing.T) { testCount(t, h) })
	if h.Peer != nil {
		t.Run("Peer", func(t *testing.T) { testPeer(t, h) })
	}
	if h.Dump != nil {
		t.Run("NoClearTokens", func(t *testing.T) { testNoClearTokens(t, h) })
	} else {
		t.Run("NoClearTokens", func(t *testing.T) { t.Skip("Harness.Dump not set") })
	}
}

// ---- fixtures ----

// fixture is a session together with the secrets the store must never see
// in clear.
type fixture struct {
	cookie  string
	access  string
	refresh string
	idToken string
	s       *sessionstore.Session
}

func randText() string { return rand.Text() }

// newSealer returns a Sealer with a fresh random key.
func newSealer(t *testing.T) *sessionstore.Sealer {
	t.Helper()
	k := make([]byte, sessionstore.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	s, err := sessionstore.NewSealer([][]byte{k})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newFixture builds a live session of subject, expiring in life, as the BFF
// makes it: the key from a random cookie value, the handle derived from the
// key, the tokens packed and sealed. Times carry a monotonic reading on purpose: a store must not depend
// on it.
func newFixture(t *testing.T, sealer *sessionstore.Sealer, subject string, life time.Duration) *fixture {
	t.Helper()
	f := &fixture{
		cookie:  "cookie-" + randText(),
		access:  "access-token-" + randText(),
		refresh: "refresh-token-" + randText(),
		idToken: "id-token-" + randText(),
	}
	key := sessionstore.KeyFromCookie(f.cookie)
	at, err := sealer.Seal(key, "access", tokenpack.Pack(f.access))
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := tokenpack.EncodeSecrets(sessionstore.Secrets{RefreshToken: f.refresh, IDToken: f.idToken})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sealer.Seal(key, "secrets", secrets)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.s = &sessionstore.Session{
		Key:               key,
		Handle:            sessionstore.HandleFromKey(key),
		Subject:           subject,
		Issuer:            "https://issuer.example/",
		IdPSID:            "isid-" + randText(),
		Claims:            map[string]string{"name": "Ada Lovelace", "email": "ada@example.org", "unicode": "Grüße ✓"},
		AccessToken:       at,
		AccessExpiresAt:   now.Add(5 * time.Minute),
		AccessIssuedAt:    now,
		Secrets:           st,
		Scope:             "openid profile offline_access",
		CreatedAt:         now,
		LastSeen:          now,
		AbsoluteExpiresAt: now.Add(8 * time.Hour),
		ExpiresAt:         now.Add(life),
		UserAgent:         "Mozilla/5.0 (storetest)",
		ClientIP:          "192.0.2.7",
	}
	return f
}

// session is newFixture for tests that do not care about the secrets.
func session(t *testing.T, subject string, life time.Duration) *sessionstore.Session {
	t.Helper()
	return newFixture(t, newSealer(t), subject, life).s
}

func clone(s *sessionstore.Session) *sessionstore.Session {
	c := *s
	if s.Claims != nil {
		c.Claims = make(map[string]string, len(s.Claims))
		for k, v := range s.Claims {
			c.Claims[k] = v
		}
	}
	c.AccessToken = bytes.Clone(s.AccessToken)
	c.Secrets = bytes.Clone(s.Secrets)
	return &c
}

func mustCreate(t *testing.T, st sessionstore.Store, s *sessionstore.Session) {
	t.Helper()
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatalf("Create(%s): %v", s.Handle, err)
	}
}

func mustGet(t *testing.T, st sessionstore.Store, key string) *sessionstore.Session {
	t.Helper()
	got, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return got
}

// wantErr fails unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// sameSession compares every stored field of two sessions, times by instant.
func sameSession(t *testing.T, what string, got, want *sessionstore.Session) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil session", what)
		return
	}
	var diffs []string
	str := func(name, g, w string) {
		if g != w {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
		if g != g.Round(0) {
			diffs = append(diffs, name+" carries a monotonic clock reading: it was not read back from the store")
		}
	}
	str("Key", got.Key, want.Key)
	str("Handle", got.Handle, want.Handle)
	str("Subject", got.Subject, want.Subject)
	str("Issuer", got.Issuer, want.Issuer)
	str("IdPSID", got.IdPSID, want.IdPSID)
	str("Scope", got.Scope, want.Scope)
	str("UserAgent", got.UserAgent, want.UserAgent)
	str("ClientIP", got.ClientIP, want.ClientIP)
	if !bytes.Equal(got.AccessToken, want.AccessToken) {
		diffs = append(diffs, "AccessToken differs")
	}
	if !bytes.Equal(got.Secrets, want.Secrets) {
		diffs = append(diffs, "Secrets differs")
	}
	if len(got.Claims) != len(want.Claims) {
		diffs = append(diffs, fmt.Sprintf("Claims = %v, want %v", got.Claims, want.Claims))
	} else {
		for k, v := range want.Claims {
			if got.Claims[k] != v {
				diffs = append(diffs, fmt.Sprintf("Claims[%q] = %q, want %q", k, got.Claims[k], v))
			}
		}
	}
	tm("AccessExpiresAt", got.AccessExpiresAt, want.AccessExpiresAt)
	tm("AccessIssuedAt", got.AccessIssuedAt, want.AccessIssuedAt)
	tm("CreatedAt", got.CreatedAt, want.CreatedAt)
	tm("LastSeen", got.LastSeen, want.LastSeen)
	tm("AbsoluteExpiresAt", got.AbsoluteExpiresAt, want.AbsoluteExpiresAt)
	tm("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	if got.Version != want.Version {
		diffs = append(diffs, fmt.Sprintf("Version = %d, want %d", got.Version, want.Version))
	}
	if len(diffs) > 0 {
		t.Errorf("%s: session differs:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// handles lists the handles of sessions, in order.
func handles(ss []*sessionstore.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Handle
	}
	return out
}

// goneEverywhere checks that s can be found under none of its names.
func goneEverywhere(t *testing.T, st sessionstore.Store, s *sessionstore.Session) {
	t.Helper()
	ctx := context.Background()
	_, err := st.Get(ctx, s.Key)
	wantErr(t, "Get", err, sessionstore.ErrNotFound)
	_, err = st.GetByHandle(ctx, s.Handle)
	wantErr(t, "GetByHandle", err, sessionstore.ErrNotFound)
	list, err := st.ListBySubject(ctx, s.Subject)
	if err != nil {
		t.Errorf("ListBySubject: %v", err)
	}
	for _, x := range list {
		if x.Key == s.Key {
			t.Errorf("ListBySubject still lists session %s", s.Handle)
		}
	}
	if s.IdPSID != "" {
		list, err = st.ListByIdPSID(ctx, s.IdPSID)
		if err != nil {
			t.Errorf("ListByIdPSID: %v", err)
		}
		for _, x := range list {
			if x.Key == s.Key {
				t.Errorf("ListByIdPSID still lists session %s", s.Handle)
			}
		}
	}
	for _, x := range listAll(t, st, 0) {
		if x.Key == s.Key {
			t.Errorf("List still lists session %s", s.Handle)
		}
	}
}

// listAll pages through List, failing on a cursor that never ends.
func listAll(t *testing.T, st sessionstore.Store, limit int) []*sessionstore.Session {
	t.Helper()
	var all []*sessionstore.Session
	cursor := ""
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("List: cursor never ends")
		}
		page, next, err := st.List(context.Background(), cursor, limit)
		if err != nil {
			t.Fatalf("List(%q, %d): %v", cursor, limit, err)
		}
		if limit > 0 && len(page) > limit {
			t.Errorf("List returned %d sessions, limit %d", len(page), limit)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		if next == cursor {
			t.Fatalf("List returned the same cursor %q again", next)
		}
		cursor = next
	}
}

// ---- subtests ----

func testCreateGet(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
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

func testCreateConflict(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
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

// keySharingHandle returns a session key other than key that derives the
// same handle (the same first 16 bytes), as two keys do only by a 2^-128
// chance.
func keySharingHandle(t *testing.T, key string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		t.Fatalf("%q is not a session key: %v", key, err)
	}
	raw[31] ^= 1
	other := base64.RawURLEncoding.EncodeToString(raw)
	if sessionstore.HandleFromKey(other) != sessionstore.HandleFromKey(key) {
		t.Fatal("keySharingHandle: the handles differ")
	}
	return other
}

// testHandleCollision covers a key that derives the handle of a stored
// session: nothing reads, changes or deletes that session through it.
func testHandleCollision(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
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

func testCreateConcurrent(t *testing.T, h Harness) {
	st := h.New(t)
	base := session(t, "sub-create-race", time.Hour)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		s := clone(base)
		s.Claims["who"] = fmt.Sprint(i)
		wg.Go(func() { errs[i] = st.Create(context.Background(), s) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, sessionstore.ErrConflict):
		default:
			t.Errorf("concurrent Create: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent Creates of one key succeeded, want exactly 1", wins)
	}
}

func testNotFound(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
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

func testUpdate(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	s := session(t, "sub-update", time.Hour)
	mustCreate(t, st, s)

	// A reader that will be stale after the next update.
	stale := mustGet(t, st, s.Key)

	upd := mustGet(t, st, s.Key)
	upd.AccessToken = []byte("new sealed access token")
	upd.Secrets = []byte("new sealed secrets")
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

func testUpdateConcurrent(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
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

func testTouch(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
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

func testDelete(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	s := session(t, "sub-delete", time.Hour)
	mustCreate(t, st, s)
	other := session(t, "sub-delete", time.Hour)
	other.IdPSID = s.IdPSID
	mustCreate(t, st, other)

	at := time.Now()
	got, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseBackchannel, At: at, TTL: time.Minute})
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	sameSession(t, "Delete's returned session", got, s)
	goneEverywhere(t, st, s)

	tomb, err := st.Tombstone(ctx, s.Key)
	if err != nil {
		t.Fatalf("Tombstone: %v", err)
	}
	if tomb.Cause != sessionstore.CauseBackchannel {
		t.Errorf("Tombstone cause = %q, want %q", tomb.Cause, sessionstore.CauseBackchannel)
	}
	if d := tomb.At.Sub(at); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("Tombstone At = %v, want %v", tomb.At, at)
	}

	// The other session of the same subject and IdP sid is untouched.
	list, err := st.ListBySubject(ctx, "sub-delete")
	if err != nil || len(list) != 1 || list[0].Key != other.Key {
		t.Errorf("ListBySubject after Delete = %v, %v; want [%s]", handles(list), err, other.Handle)
	}
	list, err = st.ListByIdPSID(ctx, s.IdPSID)
	if err != nil || len(list) != 1 || list[0].Key != other.Key {
		t.Errorf("ListByIdPSID after Delete = %v, %v; want [%s]", handles(list), err, other.Handle)
	}

	// A second Delete finds nothing and does not overwrite the tombstone.
	_, err = st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
	wantErr(t, "second Delete", err, sessionstore.ErrNotFound)
	if tomb, err := st.Tombstone(ctx, s.Key); err != nil || tomb.Cause != sessionstore.CauseBackchannel {
		t.Errorf("Tombstone after second Delete = %+v, %v; want the first cause", tomb, err)
	}

	// Deleting what never existed leaves no tombstone.
	missing := sessionstore.KeyFromCookie("never issued " + randText())
	_, err = st.Delete(ctx, missing, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
	wantErr(t, "Delete missing", err, sessionstore.ErrNotFound)
	_, err = st.Tombstone(ctx, missing)
	wantErr(t, "Tombstone of a missing session's Delete", err, sessionstore.ErrNotFound)
	_, err = st.Delete(ctx, "", sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
	wantErr(t, `Delete("")`, err, sessionstore.ErrNotFound)
}

func testDeleteConcurrent(t *testing.T, h Harness) {
	st := h.New(t)
	s := session(t, "sub-delete-race", time.Hour)
	mustCreate(t, st, s)
	const n = 10
	var wg sync.WaitGroup
	got := make([]*sessionstore.Session, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = st.Delete(context.Background(), s.Key, sessionstore.Tombstone{
				Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute,
			})
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			if got[i] == nil || got[i].Key != s.Key {
				t.Errorf("winning Delete returned %+v", got[i])
			}
		case errors.Is(err, sessionstore.ErrNotFound):
		default:
			t.Errorf("concurrent Delete: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent Deletes got the session, want exactly 1", wins)
	}
	goneEverywhere(t, st, s)
}

// testAlreadyExpired covers sessions whose ExpiresAt is already past: they
// are never returned, and their key and handle are free again.
func testAlreadyExpired(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	s := session(t, "sub-expired", -time.Minute)
	err := st.Create(ctx, s)
	if err != nil && !errors.Is(err, sessionstore.ErrInvalid) {
		t.Fatalf("Create of an expired session: %v, want nil or ErrInvalid", err)
	}
	goneEverywhere(t, st, s)
	wantErr(t, "Touch expired", st.Touch(ctx, s.Key, time.Now(), time.Now().Add(time.Hour)), sessionstore.ErrNotFound)
	goneEverywhere(t, st, s)
	s.Version = 1
	wantErr(t, "Update expired", st.Update(ctx, clone(s)), sessionstore.ErrNotFound)
	_, err = st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
	wantErr(t, "Delete expired", err, sessionstore.ErrNotFound)
	goneEverywhere(t, st, s)

	// The key and handle of an expired session can be used again.
	again := clone(s)
	again.ExpiresAt = time.Now().Add(time.Hour)
	mustCreate(t, st, again)
	if got := mustGet(t, st, s.Key); got.Version != 1 {
		t.Errorf("re-created session has Version %d, want 1", got.Version)
	}
}

func testListBySubject(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	// Created out of order: "newest" means latest CreatedAt, not insertion.
	var want [3]*sessionstore.Session
	for _, i := range []int{0, 2, 1} {
		s := session(t, "sub-list", time.Hour)
		s.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		mustCreate(t, st, s)
		want[i] = s
	}
	mustCreate(t, st, session(t, "sub-list-other", time.Hour))
	mustCreate(t, st, session(t, "sub-lis", time.Hour))   // a prefix of the subject
	mustCreate(t, st, session(t, "sub-list-", time.Hour)) // the subject as a prefix

	list, err := st.ListBySubject(ctx, "sub-list")
	if err != nil {
		t.Fatalf("ListBySubject: %v", err)
	}
	wantHandles := []string{want[2].Handle, want[1].Handle, want[0].Handle}
	if got := handles(list); strings.Join(got, ",") != strings.Join(wantHandles, ",") {
		t.Errorf("ListBySubject = %v, want newest first %v", got, wantHandles)
	}
	for _, s := range list {
		if s.Version != 1 || s.Key == "" {
			t.Errorf("listed session %s has Version %d, Key %q", s.Handle, s.Version, s.Key)
		}
	}
}

func testListByIdPSID(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	a := session(t, "sub-a", time.Hour)
	b := session(t, "sub-b", time.Hour)
	b.IdPSID = a.IdPSID
	c := session(t, "sub-a", time.Hour)
	for _, s := range []*sessionstore.Session{a, b, c} {
		mustCreate(t, st, s)
	}
	list, err := st.ListByIdPSID(ctx, a.IdPSID)
	if err != nil {
		t.Fatalf("ListByIdPSID: %v", err)
	}
	got := map[string]bool{}
	for _, s := range list {
		got[s.Key] = true
	}
	if len(list) != 2 || !got[a.Key] || !got[b.Key] {
		t.Errorf("ListByIdPSID = %v, want %s and %s", handles(list), a.Handle, b.Handle)
	}
	list, err = st.ListByIdPSID(ctx, "isid-unknown")
	if err != nil || len(list) != 0 {
		t.Errorf("ListByIdPSID(unknown) = %v, %v; want nothing", handles(list), err)
	}
}

func testList(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	live := map[string]bool{}
	for i := range 23 {
		s := session(t, fmt.Sprintf("sub-%d", i%4), time.Hour)
		mustCreate(t, st, s)
		live[s.Key] = true
	}
	dead := session(t, "sub-0", time.Hour)
	mustCreate(t, st, dead)
	if _, err := st.Delete(ctx, dead.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	expired := session(t, "sub-1", -time.Minute)
	if err := st.Create(ctx, expired); err != nil && !errors.Is(err, sessionstore.ErrInvalid) {
		t.Fatalf("Create expired: %v", err)
	}

	for _, limit := range []int{0, 1, 5, 7, 23, 100} {
		seen := map[string]int{}
		for _, s := range listAll(t, st, limit) {
			seen[s.Key]++
			if s.Version != 1 {
				t.Errorf("limit %d: listed session %s has Version %d", limit, s.Handle, s.Version)
			}
		}
		for k, n := range seen {
			if !live[k] {
				t.Errorf("limit %d: List returned a deleted or expired session", limit)
			} else if n != 1 {
				t.Errorf("limit %d: List returned a session %d times", limit, n)
			}
		}
		if len(seen) != len(live) {
			t.Errorf("limit %d: List visited %d of %d live sessions", limit, len(seen), len(live))
		}
	}

	empty := h.New(t)
	page, next, err := empty.List(ctx, "", 10)
	if err != nil || len(page) != 0 || next != "" {
		t.Errorf("List on an empty store = %d sessions, %q, %v; want none", len(page), next, err)
	}
}

func testLock(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	l1, err := st.Lock(ctx, "refresh:a", time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	_, err = st.Lock(ctx, "refresh:a", time.Minute)
	wantErr(t, "second Lock", err, sessionstore.ErrLocked)

	// Other names are independent.
	lb, err := st.Lock(ctx, "refresh:b", time.Minute)
	if err != nil {
		t.Fatalf("Lock of another name: %v", err)
	}

	if err := l1.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	l2, err := st.Lock(ctx, "refresh:a", time.Minute)
	if err != nil {
		t.Fatalf("Lock after Release: %v", err)
	}
	// Releasing the old lock again must not free the new holder's lock.
	if err := l1.Release(ctx); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("second Release: %v, want nil or ErrNotFound", err)
	}
	_, err = st.Lock(ctx, "refresh:a", time.Minute)
	wantErr(t, "Lock after a stale Release", err, sessionstore.ErrLocked)

	_, err = st.Lock(ctx, "refresh:b", time.Minute)
	wantErr(t, "Lock of the other held name", err, sessionstore.ErrLocked)
	for _, l := range []sessionstore.Lock{l2, lb} {
		if err := l.Release(ctx); err != nil {
			t.Errorf("Release: %v", err)
		}
	}
}

func testLockConcurrent(t *testing.T, h Harness) {
	st := h.New(t)
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = st.Lock(context.Background(), "refresh:race", time.Minute) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, sessionstore.ErrLocked):
		default:
			t.Errorf("concurrent Lock: %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent Locks succeeded, want exactly 1", wins)
	}
}

func testRemember(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	first, err := st.Remember(ctx, "jti-1", time.Minute)
	if err != nil || !first {
		t.Errorf("first Remember = %v, %v; want true", first, err)
	}
	first, err = st.Remember(ctx, "jti-1", time.Minute)
	if err != nil || first {
		t.Errorf("second Remember = %v, %v; want false", first, err)
	}
	first, err = st.Remember(ctx, "jti-2", time.Minute)
	if err != nil || !first {
		t.Errorf("Remember of another id = %v, %v; want true", first, err)
	}

	const n = 10
	var wg sync.WaitGroup
	firsts := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { firsts[i], errs[i] = st.Remember(context.Background(), "jti-race", time.Minute) })
	}
	wg.Wait()
	wins := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("concurrent Remember: %v", errs[i])
		}
		if firsts[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent Remembers reported first, want exactly 1", wins)
	}
}

// receive waits for one event on ch.
func receive(t *testing.T, what string, ch <-chan sessionstore.Event, want sessionstore.Event) {
	t.Helper()
	timeout := time.After(waitEvent)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Errorf("%s: channel closed before the event arrived", what)
				return
			}
			if ev == want {
				return
			}
			// Events of other tests or instances may pass by; keep waiting.
		case <-timeout:
			t.Errorf("%s: event %+v not delivered within %v", what, want, waitEvent)
			return
		}
	}
}

// waitClosed waits for ch to be closed after its subscription's context ended.
func waitClosed(t *testing.T, ch <-chan sessionstore.Event) {
	t.Helper()
	timeout := time.After(waitEvent)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Error("Subscribe channel not closed after its context ended")
			return
		}
	}
}

func testNotifier(t *testing.T, h Harness) {
	st := h.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := st.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch2, err := st.Subscribe(ctx2)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	ev := sessionstore.Event{Key: sessionstore.KeyFromCookie("c"), Handle: "h-notify", Cause: sessionstore.CauseAdmin}
	if err := st.Publish(context.Background(), ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	receive(t, "first subscriber", ch1, ev)
	receive(t, "second subscriber", ch2, ev)

	cancel2()
	waitClosed(t, ch2)

	ev2 := sessionstore.Event{Key: "k2", Handle: "h-notify-2", Cause: sessionstore.CauseBackchannel}
	if err := st.Publish(context.Background(), ev2); err != nil {
		t.Fatalf("Publish after an unsubscribe: %v", err)
	}
	receive(t, "remaining subscriber", ch1, ev2)
	cancel()
	waitClosed(t, ch1)
}

func testInvalid(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	cases := map[string]func(s *sessionstore.Session){
		"empty key":    func(s *sessionstore.Session) { s.Key = "" },
		"empty handle": func(s *sessionstore.Session) { s.Handle = "" },
		"handle not derived from the key": func(s *sessionstore.Session) {
			s.Handle = sessionstore.HandleFromKey(sessionstore.KeyFromCookie("another cookie " + randText()))
		},
		"key not a session key": func(s *sessionstore.Session) { s.Key = "key-" + randText() },
		"empty subject":         func(s *sessionstore.Session) { s.Subject = "" },
		"no expiry":             func(s *sessionstore.Session) { s.ExpiresAt = time.Time{} },
		"huge claims": func(s *sessionstore.Session) {
			s.Claims["big"] = strings.Repeat("x", sessionstore.MaxRecordSize+1)
		},
		"many claims": func(s *sessionstore.Session) {
			for i := range 5000 {
				s.Claims[fmt.Sprintf("claim-%d", i)] = "value value value"
			}
		},
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			s := session(t, "sub-invalid", time.Hour)
			spoil(s)
			wantErr(t, "Create", st.Create(ctx, s), sessionstore.ErrInvalid)
			if s.Key != "" {
				_, err := st.Get(ctx, s.Key)
				wantErr(t, "Get of the refused session", err, sessionstore.ErrNotFound)
			}
			if s.Handle != "" {
				_, err := st.GetByHandle(ctx, s.Handle)
				wantErr(t, "GetByHandle of the refused session", err, sessionstore.ErrNotFound)
			}
		})
	}
	t.Run("nil session", func(t *testing.T) {
		wantErr(t, "Create(nil)", st.Create(ctx, nil), sessionstore.ErrInvalid)
	})
	t.Run("oversized update", func(t *testing.T) {
		s := session(t, "sub-invalid", time.Hour)
		mustCreate(t, st, s)
		want := clone(s)
		big := clone(s)
		big.Claims["big"] = strings.Repeat("y", sessionstore.MaxRecordSize+1)
		wantErr(t, "Update with huge claims", st.Update(ctx, big), sessionstore.ErrInvalid)
		sameSession(t, "Get after refused Update", mustGet(t, st, s.Key), want)
	})
	t.Run("nothing stored", func(t *testing.T) {
		list, err := st.ListBySubject(ctx, "sub-invalid")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Errorf("ListBySubject after refused Creates = %d sessions, want only the valid one", len(list))
		}
	})
}

func testPing(t *testing.T, h Harness) {
	st := h.New(t)
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// timedCase sets something up that expires after ttl; after the suite has
// waited settle, check looks at the result.
type timedCase struct {
	name  string
	setup func(t *testing.T, st sessionstore.Store) (check func(t *testing.T))
}

// testTimed runs every expiry check against one store with a single wait, so
// the suite stays fast.
func testTimed(t *testing.T, h Harness) {
	st := h.New(t)
	cases := []timedCase{
		{"SessionExpires", timedSessionExpires},
		{"TouchExtends", timedTouchExtends},
		{"UpdateExtends", timedUpdateExtends},
		{"TombstoneExpires", timedTombstoneExpires},
		{"LockExpires", timedLockExpires},
		{"RememberExpires", timedRememberExpires},
	}
	checks := make([]func(*testing.T), len(cases))
	start := time.Now()
	for i, c := range cases {
		t.Run(c.name+"/before", func(t *testing.T) { checks[i] = c.setup(t, st) })
	}
	if d := time.Since(start); d > ttl/2 {
		t.Logf("setting up the timed cases took %v, longer than half the TTL: results may be unreliable", d)
	}
	time.Sleep(settle)
	for i, c := range cases {
		if checks[i] != nil {
			t.Run(c.name+"/after", checks[i])
		}
	}
}

func timedSessionExpires(t *testing.T, st sessionstore.Store) func(*testing.T) {
	s := session(t, "sub-timed-expire", ttl)
	mustCreate(t, st, s)
	mustGet(t, st, s.Key)
	list, err := st.ListBySubject(context.Background(), s.Subject)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListBySubject before expiry = %v, %v", handles(list), err)
	}
	return func(t *testing.T) {
		goneEverywhere(t, st, s)
		ctx := context.Background()
		wantErr(t, "Touch after expiry", st.Touch(ctx, s.Key, time.Now(), time.Now().Add(time.Hour)), sessionstore.ErrNotFound)
		_, err := st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
		wantErr(t, "Delete after expiry", err, sessionstore.ErrNotFound)
		goneEverywhere(t, st, s)
	}
}

func timedTouchExtends(t *testing.T, st sessionstore.Store) func(*testing.T) {
	s := session(t, "sub-timed-touch", ttl)
	mustCreate(t, st, s)
	if err := st.Touch(context.Background(), s.Key, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	return func(t *testing.T) {
		got := mustGet(t, st, s.Key)
		if got.Version != 1 {
			t.Errorf("Version after Touch = %d, want 1", got.Version)
		}
		list, err := st.ListBySubject(context.Background(), s.Subject)
		if err != nil || len(list) != 1 {
			t.Errorf("ListBySubject of a touched session = %v, %v; want it", handles(list), err)
		}
		if _, err := st.GetByHandle(context.Background(), s.Handle); err != nil {
			t.Errorf("GetByHandle of a touched session: %v", err)
		}
	}
}

func timedUpdateExtends(t *testing.T, st sessionstore.Store) func(*testing.T) {
	s := session(t, "sub-timed-update", ttl)
	mustCreate(t, st, s)
	s.ExpiresAt = time.Now().Add(time.Hour)
	if err := st.Update(context.Background(), s); err != nil {
		t.Fatalf("Update: %v", err)
	}
	// And the other way round: an Update may shorten a session.
	short := session(t, "sub-timed-update-short", time.Hour)
	mustCreate(t, st, short)
	short.ExpiresAt = time.Now().Add(ttl)
	if err := st.Update(context.Background(), short); err != nil {
		t.Fatalf("Update: %v", err)
	}
	return func(t *testing.T) {
		if got := mustGet(t, st, s.Key); got.Version != 2 {
			t.Errorf("Version = %d, want 2", got.Version)
		}
		goneEverywhere(t, st, short)
	}
}

func timedTombstoneExpires(t *testing.T, st sessionstore.Store) func(*testing.T) {
	s := session(t, "sub-timed-tomb", time.Hour)
	mustCreate(t, st, s)
	if _, err := st.Delete(context.Background(), s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseRefreshDenied, At: time.Now(), TTL: ttl}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if tomb, err := st.Tombstone(context.Background(), s.Key); err != nil || tomb.Cause != sessionstore.CauseRefreshDenied {
		t.Fatalf("Tombstone = %+v, %v", tomb, err)
	}
	return func(t *testing.T) {
		_, err := st.Tombstone(context.Background(), s.Key)
		wantErr(t, "Tombstone after its TTL", err, sessionstore.ErrNotFound)
		goneEverywhere(t, st, s)
	}
}

func timedLockExpires(t *testing.T, st sessionstore.Store) func(*testing.T) {
	ctx := context.Background()
	dead, err := st.Lock(ctx, "refresh:dead-holder", ttl)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	_, err = st.Lock(ctx, "refresh:dead-holder", ttl)
	wantErr(t, "Lock while held", err, sessionstore.ErrLocked)
	return func(t *testing.T) {
		// The holder died without releasing; its lock ran out.
		next, err := st.Lock(ctx, "refresh:dead-holder", time.Minute)
		if err != nil {
			t.Fatalf("Lock after the holder's TTL: %v", err)
		}
		// The late holder wakes up and releases: the new lock must stay.
		if err := dead.Release(ctx); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
			t.Errorf("Release of an expired lock: %v, want nil or ErrNotFound", err)
		}
		_, err = st.Lock(ctx, "refresh:dead-holder", time.Minute)
		wantErr(t, "Lock after the expired holder's Release", err, sessionstore.ErrLocked)
		if err := next.Release(ctx); err != nil {
			t.Errorf("Release: %v", err)
		}
		if l, err := st.Lock(ctx, "refresh:dead-holder", time.Minute); err != nil {
			t.Errorf("Lock after Release: %v", err)
		} else {
			l.Release(ctx)
		}
	}
}

func timedRememberExpires(t *testing.T, st sessionstore.Store) func(*testing.T) {
	ctx := context.Background()
	if first, err := st.Remember(ctx, "jti-timed", ttl); err != nil || !first {
		t.Fatalf("Remember = %v, %v; want true", first, err)
	}
	if first, err := st.Remember(ctx, "jti-timed", ttl); err != nil || first {
		t.Fatalf("second Remember = %v, %v; want false", first, err)
	}
	return func(t *testing.T) {
		first, err := st.Remember(ctx, "jti-timed", time.Minute)
		if err != nil || !first {
			t.Errorf("Remember after its TTL = %v, %v; want true", first, err)
		}
		first, err = st.Remember(ctx, "jti-timed", time.Minute)
		if err != nil || first {
			t.Errorf("Remember again = %v, %v; want false", first, err)
		}
	}
}

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

// testNoClearTokens checks that what the backend holds yields neither a
// token nor a cookie: only the key derived from the cookie, and sealed tokens.
func testNoClearTokens(t *testing.T, h Harness) {
	st := h.New(t)
	ctx := context.Background()
	sealer := newSealer(t)
	var fixtures []*fixture
	for i := range 5 {
		f := newFixture(t, sealer, fmt.Sprintf("sub-dump-%d", i%2), time.Hour)
		mustCreate(t, st, f.s)
		fixtures = append(fixtures, f)
	}
	// Updated, touched and deleted sessions leave data behind too.
	upd := mustGet(t, st, fixtures[1].s.Key)
	newAccess := "access-token-rotated-" + randText()
	sealed, err := sealer.Seal(upd.Key, "access", tokenpack.Pack(newAccess))
	if err != nil {
		t.Fatal(err)
	}
	upd.AccessToken = sealed
	if err := st.Update(ctx, upd); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := st.Touch(ctx, fixtures[2].s.Key, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if _, err := st.Delete(ctx, fixtures[3].s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseUserLogout, At: time.Now(), TTL: time.Minute}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	l, err := st.Lock(ctx, "refresh:"+fixtures[0].s.Handle, time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	defer l.Release(ctx)
	if _, err := st.Remember(ctx, "jti-dump", time.Minute); err != nil {
		t.Fatalf("Remember: %v", err)
	}

	// The sealed values still open after the round trip.
	got := mustGet(t, st, fixtures[0].s.Key)
	plain, err := sealer.Open(got.Key, "access", got.AccessToken)
	if err != nil {
		t.Fatalf("stored access token does not open: %v", err)
	}
	if access, err := tokenpack.Unpack(plain); err != nil || access != fixtures[0].access {
		t.Errorf("stored access token unpacks to %q, %v; want the one stored", access, err)
	}

	dump := h.Dump(t, st)
	if len(dump) == 0 {
		t.Fatal("Dump returned nothing")
	}
	secret := func(what, v string) {
		if bytes.Contains(dump, []byte(v)) {
			t.Errorf("the store holds %s in clear", what)
		}
	}
	for _, f := range fixtures {
		secret("an access token", f.access)
		secret("a refresh token", f.refresh)
		secret("an ID token", f.idToken)
		secret("a cookie value", f.cookie)
	}
	secret("a rotated access token", newAccess)
	// Sanity: the dump really covers the sessions. A backend may hold a key
	// or handle as its text or as the raw bytes the text encodes.
	held := func(what, text string) {
		raw, err := base64.RawURLEncoding.DecodeString(text)
		if err != nil {
			t.Fatalf("%s %q is not base64url: %v", what, text, err)
		}
		if !bytes.Contains(dump, []byte(text)) && !bytes.Contains(dump, raw) {
			t.Errorf("Dump does not contain a stored session's %s: does it cover the store?", what)
		}
	}
	held("key", fixtures[0].s.Key)
	held("handle", fixtures[4].s.Handle)
}
