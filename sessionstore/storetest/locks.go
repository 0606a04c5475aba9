package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func testLock(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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

func testLockConcurrent(t *testing.T, st sessionstore.Store) {
	race(t, "Lock of one name", 10, sessionstore.ErrLocked, func(int) error {
		_, err := st.Lock(context.Background(), "refresh:race", time.Minute)
		return err
	})
}
