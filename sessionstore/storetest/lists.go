package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func testListBySubject(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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

func testListByIdPSID(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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
