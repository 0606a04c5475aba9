package storetest

import (
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// testCount checks the optional SessionCounter: live sessions are counted,
// deleted and expired ones are not, and tombstones do not count.
func testCount(t *testing.T, st sessionstore.Store) {
	counter, ok := st.(sessionstore.SessionCounter)
	if !ok {
		t.Skip("the backend does not count sessions")
	}
	ctx := t.Context()
	count := func(what string, want int) {
		t.Helper()
		got, err := counter.CountSessions(ctx)
		if err != nil {
			t.Fatalf("%s: CountSessions: %v", what, err)
		}
		if got != want {
			t.Fatalf("%s: CountSessions = %d, want %d", what, got, want)
		}
	}
	count("empty store", 0)
	a := session(t, "count-a", time.Hour)
	b := session(t, "count-b", time.Hour)
	c := session(t, "count-c", time.Hour)
	// Long enough to be counted live even on a loaded machine; the wait
	// below is measured from its own deadline.
	short := session(t, "count-d", 2*time.Second)
	for _, s := range []*sessionstore.Session{a, b, c, short} {
		mustCreate(t, st, s)
	}
	count("four sessions", 4)
	if _, err := st.Delete(ctx, b.Key, sessionstore.Tombstone{Cause: sessionstore.CauseAdmin, At: time.Now(), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	count("after a delete (its tombstone stays)", 3)
	time.Sleep(time.Until(short.ExpiresAt) + 500*time.Millisecond)
	count("after one expired", 2)
}
