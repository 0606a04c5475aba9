package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func testInvalid(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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

func testPing(t *testing.T, st sessionstore.Store) {
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// testClosed checks a store after Close: closing again is no error, and
// every call fails with ErrUnavailable (the BFF answers 503), never with
// ErrNotFound (which would end the session) nor a panic.
func testClosed(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
	s := session(t, "sub-closed", time.Hour)
	mustCreate(t, st, s)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wantErr(t, "Ping after Close", st.Ping(ctx), sessionstore.ErrUnavailable)
	_, err := st.Get(ctx, s.Key)
	wantErr(t, "Get after Close", err, sessionstore.ErrUnavailable)
	wantErr(t, "Create after Close", st.Create(ctx, session(t, "sub-closed", time.Hour)), sessionstore.ErrUnavailable)
	_, err = st.Delete(ctx, s.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute})
	wantErr(t, "Delete after Close", err, sessionstore.ErrUnavailable)
	_, err = st.Lock(ctx, "refresh:closed", time.Minute)
	wantErr(t, "Lock after Close", err, sessionstore.ErrUnavailable)
	_, err = st.Remember(ctx, "jti-closed", time.Minute)
	wantErr(t, "Remember after Close", err, sessionstore.ErrUnavailable)
}
