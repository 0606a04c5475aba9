// Package sessionstore defines where the BFF keeps its sessions: the session
// record, the Store interface every backend implements, the sealing of tokens
// at rest, and the errors the backends share.
//
// The browser holds only a random cookie value. Backends never see it: every
// session is keyed by Key, the SHA-256 of that value (see KeyFromCookie), so a
// dump of the store cannot be replayed as a cookie. Tokens reach the store
// already sealed (see Sealer), so a dump yields no usable token either.
//
// Backends: memory (tests, throw-away), sqlite (single node, the default) and
// redis (many instances). All of them pass the suite in sessionstore/storetest.
package sessionstore

import (
	"context"
	"errors"
	"time"
)

// Errors shared by every backend. Compare with errors.Is; backends wrap them
// with context.
var (
	// ErrNotFound: no live session (or lock, or tombstone) under that key.
	// An expired session is not found.
	ErrNotFound = errors.New("sessionstore: not found")
	// ErrConflict: Update lost a compare-and-swap (the stored version moved on),
	// or Create found the key taken.
	ErrConflict = errors.New("sessionstore: version conflict")
	// ErrLocked: Lock found the lock held by someone else.
	ErrLocked = errors.New("sessionstore: lock held")
	// ErrInvalid: the record is malformed or too large to store.
	ErrInvalid = errors.New("sessionstore: invalid record")
	// ErrUnavailable: the backend could not be reached. The BFF answers 503
	// and keeps the session: an outage is not a logout.
	ErrUnavailable = errors.New("sessionstore: store unavailable")
)

// MaxRecordSize bounds an encoded session. A larger one is refused with
// ErrInvalid rather than stored, so a hostile IdP response cannot fill the store.
const MaxRecordSize = 64 << 10

// Store is what the BFF needs from a session backend. Every method takes a
// context first and is safe for concurrent use, also across processes that
// share the backend (redis; the sqlite backend is single-process).
type Store interface {
	Sessions
	Locker
	ReplayCache
	Notifier

	// Ping reports whether the backend is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the backend's resources. Every later call fails with
	// ErrUnavailable; closing again is no error.
	Close() error
}

// Sessions holds the session records and their indexes (by handle, by
// subject, by IdP session id).
type Sessions interface {
	// Create stores a new session with Version 1 and sets s.Version to 1.
	// A taken Key or Handle is ErrConflict; a Handle other than
	// HandleFromKey(Key) is ErrInvalid (see CheckHandle).
	Create(ctx context.Context, s *Session) error

	// Get returns the live session under key. A missing or expired session is
	// ErrNotFound.
	Get(ctx context.Context, key string) (*Session, error)

	// GetByHandle returns the live session with that public handle, or
	// ErrNotFound. An empty handle is ErrNotFound.
	GetByHandle(ctx context.Context, handle string) (*Session, error)

	// Update replaces the stored session if its stored version equals
	// s.Version, then sets s.Version to the new version. Key, Handle, Subject
	// and IdPSID never change after Create. A missing session is ErrNotFound
	// (Update never resurrects a deleted session); a moved-on version is
	// ErrConflict.
	Update(ctx context.Context, s *Session) error

	// Touch records activity: it sets LastSeen and ExpiresAt of a live
	// session without changing its version or anything else. A missing
	// session is ErrNotFound and nothing is written, so a request that was in
	// flight when its session was killed cannot bring it back.
	Touch(ctx context.Context, key string, lastSeen, expiresAt time.Time) error

	// Delete removes the session and its index entries atomically and leaves
	// a tombstone under the same key for tomb.TTL, so the next request with
	// that cookie learns why its session ended. It returns the deleted
	// session. Of several concurrent Deletes of one key exactly one gets the
	// session; the others get ErrNotFound. Deleting a missing session is
	// ErrNotFound and writes no tombstone.
	Delete(ctx context.Context, key string, tomb Tombstone) (*Session, error)

	// Tombstone returns the tombstone left under key, or ErrNotFound.
	Tombstone(ctx context.Context, key string) (Tombstone, error)

	// ListBySubject returns the live sessions of a subject, newest first.
	// An empty subject matches nothing (it is never "all sessions"). The cost
	// is the number of that subject's sessions, never a scan.
	ListBySubject(ctx context.Context, subject string) ([]*Session, error)

	// ListByIdPSID returns the live sessions carrying that IdP session id.
	// An empty sid matches nothing.
	ListByIdPSID(ctx context.Context, idpSID string) ([]*Session, error)

	// List pages through all live sessions in an order of the backend's
	// choosing. Pass "" to start and the returned cursor to go on; an empty
	// cursor means the end. limit <= 0 means a backend default.
	List(ctx context.Context, cursor string, limit int) (page []*Session, next string, err error)
}

// Locker provides short-lived named locks with a fencing value, so only one
// instance of a cluster refreshes a session's tokens at a time.
type Locker interface {
	// Lock takes the named lock for ttl, or fails with ErrLocked when someone
	// else holds it. A holder that dies is released when ttl runs out.
	Lock(ctx context.Context, name string, ttl time.Duration) (Lock, error)
}

// Lock is a held lock.
type Lock interface {
	// Release frees the lock if it is still held with this lock's fencing
	// value; releasing a lock that expired and was taken by someone else
	// leaves the new holder's lock alone.
	Release(ctx context.Context) error
}

// ReplayCache remembers one-time identifiers (a logout token's jti) across
// every instance that shares the backend.
type ReplayCache interface {
	// Remember records id for ttl. It returns true the first time an id is
	// seen and false if it was already remembered.
	Remember(ctx context.Context, id string, ttl time.Duration) (first bool, err error)
}

// Notifier fans events out to every instance that shares the backend, so a
// kill on one instance cuts the streams held open by another, and a
// refresh done by one instance releases the requests of the same session
// waiting for it on another.
type Notifier interface {
	// Publish sends ev to every subscriber, on every instance.
	Publish(ctx context.Context, ev Event) error
	// Subscribe delivers events until ctx ends, then closes the channel.
	// Delivery is best effort (a slow subscriber may miss events); the store
	// itself stays the truth, so a missed event delays a stream cut, never a
	// refusal of the cookie.
	Subscribe(ctx context.Context) (<-chan Event, error)
}

// Event tells every instance that a session ended, or, with Refreshed set,
// that its tokens were just refreshed.
type Event struct {
	Key    string `json:"key"`
	Handle string `json:"handle"`
	Cause  Cause  `json:"cause,omitempty"`
	// Refreshed marks a refresh notice: the session lives on, with new
	// tokens in the store. Cause is empty.
	Refreshed bool `json:"refreshed,omitempty"`
}

// Cause says why a session ended. It is shown to the session's browser
// (as the error of the 401 and the session-ended event) and in the audit log.
type Cause string

const (
	CauseUserLogout    Cause = "user_logout"
	CauseAdmin         Cause = "admin"
	CauseBackchannel   Cause = "backchannel"
	CauseRefreshDenied Cause = "refresh_denied"
	CauseExpired       Cause = "expired"
	CauseReplaced      Cause = "replaced" // a new login in the same browser
	// CauseUserRevoked: the user ended it from another of their sessions
	// ("your devices": sign out one device, or everywhere else).
	CauseUserRevoked Cause = "user_revoked"
)

// Tombstone is what remains of a deleted session for a short while.
type Tombstone struct {
	Cause Cause         `json:"cause"`
	At    time.Time     `json:"at"`
	TTL   time.Duration `json:"-"`
}
