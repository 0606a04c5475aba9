package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

func testRemember(t *testing.T, st sessionstore.Store) {
	ctx := t.Context()
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

	errSeen := errors.New("already remembered")
	race(t, "Remember of one id", 10, errSeen, func(int) error {
		first, err := st.Remember(context.Background(), "jti-race", time.Minute)
		if err == nil && !first {
			return errSeen
		}
		return err
	})
}
