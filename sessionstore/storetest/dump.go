package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

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
