package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// timedCase sets something up that expires after ttl; after the suite has
// waited settle, check looks at the result.
type timedCase struct {
	name  string
	setup func(t *testing.T, st sessionstore.Store) (check func(t *testing.T))
}

// testTimed runs every expiry check against one store with a single wait, so
// the suite stays fast.
func testTimed(t *testing.T, st sessionstore.Store) {
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
