package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func testDelete(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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

func testDeleteConcurrent(t *testing.T, st sessionstore.Store) {
	s := session(t, "sub-delete-race", time.Hour)
	mustCreate(t, st, s)
	got := make([]*sessionstore.Session, 10)
	winner := race(t, "Delete of one key", len(got), sessionstore.ErrNotFound, func(i int) (err error) {
		got[i], err = st.Delete(context.Background(), s.Key, sessionstore.Tombstone{
			Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Minute,
		})
		return err
	})
	if winner >= 0 && (got[winner] == nil || got[winner].Key != s.Key) {
		t.Errorf("winning Delete returned %+v", got[winner])
	}
	goneEverywhere(t, st, s)
}

// testAlreadyExpired covers sessions whose ExpiresAt is already past: they
// are never returned, and their key and handle are free again.
func testAlreadyExpired(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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
