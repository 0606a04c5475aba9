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
//   - After Close, calls fail with ErrUnavailable, never ErrNotFound.
//   - Malformed records are ErrInvalid on Create and Update (including a nil
//     session), never a panic; empty keys, handles, subjects and sids match
//     nothing.
package storetest

import (
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
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
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, h.New(t)) })
	t.Run("CreateConflict", func(t *testing.T) { testCreateConflict(t, h.New(t)) })
	t.Run("HandleCollision", func(t *testing.T) { testHandleCollision(t, h.New(t)) })
	t.Run("CreateConcurrent", func(t *testing.T) { testCreateConcurrent(t, h.New(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, h.New(t)) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, h.New(t)) })
	t.Run("UpdateConcurrent", func(t *testing.T) { testUpdateConcurrent(t, h.New(t)) })
	t.Run("Touch", func(t *testing.T) { testTouch(t, h.New(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, h.New(t)) })
	t.Run("DeleteConcurrent", func(t *testing.T) { testDeleteConcurrent(t, h.New(t)) })
	t.Run("AlreadyExpired", func(t *testing.T) { testAlreadyExpired(t, h.New(t)) })
	t.Run("ListBySubject", func(t *testing.T) { testListBySubject(t, h.New(t)) })
	t.Run("ListByIdPSID", func(t *testing.T) { testListByIdPSID(t, h.New(t)) })
	t.Run("List", func(t *testing.T) { testList(t, h) })
	t.Run("Lock", func(t *testing.T) { testLock(t, h.New(t)) })
	t.Run("LockConcurrent", func(t *testing.T) { testLockConcurrent(t, h.New(t)) })
	t.Run("Remember", func(t *testing.T) { testRemember(t, h.New(t)) })
	t.Run("Notifier", func(t *testing.T) { testNotifier(t, h.New(t)) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, h.New(t)) })
	t.Run("Ping", func(t *testing.T) { testPing(t, h.New(t)) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, h.New(t)) })
	t.Run("Timed", func(t *testing.T) { testTimed(t, h.New(t)) })
	t.Run("Count", func(t *testing.T) { testCount(t, h.New(t)) })
	if h.Peer != nil {
		t.Run("Peer", func(t *testing.T) { testPeer(t, h) })
	}
	if h.Dump != nil {
		t.Run("NoClearTokens", func(t *testing.T) { testNoClearTokens(t, h) })
	} else {
		t.Run("NoClearTokens", func(t *testing.T) { t.Skip("Harness.Dump not set") })
	}
}
