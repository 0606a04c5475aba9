package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

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
	// Strings, times and the version; times compare by instant and must
	// have been read back (no monotonic clock reading).
	fields := []struct {
		name      string
		got, want any
	}{
		{"Key", got.Key, want.Key}, {"Handle", got.Handle, want.Handle},
		{"Subject", got.Subject, want.Subject}, {"Issuer", got.Issuer, want.Issuer},
		{"IdPSID", got.IdPSID, want.IdPSID}, {"Scope", got.Scope, want.Scope},
		{"UserAgent", got.UserAgent, want.UserAgent}, {"ClientIP", got.ClientIP, want.ClientIP},
		{"AccessExpiresAt", got.AccessExpiresAt, want.AccessExpiresAt},
		{"AccessIssuedAt", got.AccessIssuedAt, want.AccessIssuedAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt}, {"LastSeen", got.LastSeen, want.LastSeen},
		{"AbsoluteExpiresAt", got.AbsoluteExpiresAt, want.AbsoluteExpiresAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt}, {"Version", got.Version, want.Version},
	}
	for _, f := range fields {
		g, isTime := f.got.(time.Time)
		switch {
		case isTime && !g.Equal(f.want.(time.Time)), !isTime && f.got != f.want:
			diffs = append(diffs, fmt.Sprintf("%s = %#v, want %#v", f.name, f.got, f.want))
		case isTime && g != g.Round(0):
			diffs = append(diffs, f.name+" carries a monotonic clock reading: it was not read back from the store")
		}
	}
	if !bytes.Equal(got.AccessToken, want.AccessToken) {
		diffs = append(diffs, "AccessToken differs")
	}
	if !bytes.Equal(got.Secrets, want.Secrets) {
		diffs = append(diffs, "Secrets differs")
	}
	if !bytes.Equal(got.RouteTokens, want.RouteTokens) {
		diffs = append(diffs, "RouteTokens differs")
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

// race runs op(0) to op(n-1) at once and checks that exactly one of them
// succeeds and every other fails with lose. It returns the winner, or -1.
func race(t *testing.T, what string, n int, lose error, op func(i int) error) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = op(i) })
	}
	wg.Wait()
	winner, wins := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner, wins = i, wins+1
		case errors.Is(err, lose):
		default:
			t.Errorf("concurrent %s: %v", what, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent calls of %s succeeded, want exactly 1", wins, what)
	}
	return winner
}
