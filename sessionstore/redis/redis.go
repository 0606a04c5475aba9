// Package redis is the session store for many BFF instances that share one
// Redis: a single server, a Sentinel-managed primary or a Redis Cluster, all
// through one code path (go-redis's UniversalClient). It needs Redis 7.0 or
// later (PEXPIREAT GT, PEXPIRETIME, ZADD GT).
//
// # URLs
//
// Open and ParseURL accept:
//
//	redis://[user:pass@]host[:port][/db]                  one server (port 6379, db 0 by default)
//	rediss://[user:pass@]host[:port][/db]                 the same over TLS
//	redis+sentinel://[user:pass@]host1[:port],host2[:port]/mastername[/db]
//	rediss+sentinel://…                                   Sentinel over TLS (sentinel port 26379 by default)
//	redis+cluster://[user:pass@]host1[:port],host2[:port] Cluster (seed nodes; no db: Cluster has only db 0)
//	rediss+cluster://…                                    Cluster over TLS
//
// User and password are percent-decoded and are those of the data nodes. For
// Sentinel, the sentinels' own credentials, when they differ, go in the
// query: ?sentinel_username=…&sentinel_password=…. Other query parameters:
// dial_timeout, read_timeout, write_timeout (Go durations such as 2s),
// pool_size and client_name. Anything else is refused with an error naming
// it, so a typo does not silently fall back to a default.
//
// # Keys
//
// Every session has the handle derived from its key
// (sessionstore.HandleFromKey; Create refuses any other), and with prefix P
// (Options.Prefix, default "bff:") it is stored as
//
//	P{h:<handle>}    the record: one string, a fixed header (version, LastSeen,
//	                 ExpiresAt, index horizon), the 32 bytes of the session
//	                 key, then the session with its sealed tokens
//	                 (sessionstore.Encode; see record.go)
//	P{h:<handle>}:t  the tombstone: the 32 bytes of the key, then JSON
//	P{u:<subject>}   sorted set of the 16 bytes each handle encodes,
//	                 score = index horizon (Unix ms)
//	P{s:<idp sid>}   the same for the IdP session id
//
// beside
//
//	P{l:<name>}      a lock (random fence value)
//	P{r:<id>}        a replay-cache entry
//
// and events travel on the pub/sub channel P+"events".
//
// A derived handle is the first half of the key, so the record can live
// under it: Get and GetByHandle are each one read of one key, and no
// pointer from handle to key is needed. A record carries the whole key
// and every read checks it (Get, Touch, Update, Delete and Tombstone treat
// a record or tombstone of another key found there as missing), so two
// keys whose handles collide (2^-128 per pair, and Create refuses a taken
// handle anyway) never read each other's session. Index members are the
// 16 bytes a handle encodes rather than its 22 characters: they are most of
// what a session costs beside its record. The hash tags ({…}) put a record
// and its tombstone into one Cluster slot, so every Lua script touches a
// single slot: Create, Update (compare-and-swap on the version), Touch and
// Delete (read, delete and tombstone in one step) are each atomic on the
// record. The index sets live in other slots and are changed by separate
// commands; see "Indexes" for why that is still correct.
//
// LastSeen and ExpiresAt sit at fixed offsets in the header (they override
// the encoded session's copies on read), so Touch is a SETRANGE and a
// PEXPIREAT without decoding anything.
//
// # Expiry
//
// Every key carries a TTL; none is ever written without one. The record
// expires at ExpiresAt (PEXPIREAT, rounded up to the millisecond; reads also
// check ExpiresAt, so a session is never returned late). Create with an
// ExpiresAt already past is refused with ErrInvalid before anything is
// written. Update and Touch may set an ExpiresAt in the past: that ends the
// session at once (PEXPIREAT in the past deletes the key), with no tombstone.
// A tombstone lives for Tombstone.TTL; a TTL <= 0 writes no tombstone.
//
// # Indexes
//
// In a Cluster the index sets are in other slots than the record, so no
// script can change them together. Correctness rests on two rules instead:
//
//  1. Index entries are hints, written before the record exists and checked
//     against the record on every read. ListBySubject and ListByIdPSID read
//     the members, fetch the records under those handles and return only
//     live records whose subject (or IdP sid) really matches and whose key
//     derives the handle. A member whose record is gone is removed, but
//     only if its score is still the one that was read (a Lua
//     compare-and-remove): Create adds each member once before creating the
//     record and once more, one millisecond higher, after it, so a List that
//     saw the member in between cannot remove it from under a new session.
//     A failed Create or a lost cleanup leaves only stale hints, which cost
//     a lookup and are removed when read or when they expire.
//
//  2. Every index entry outlives its record. Each record carries an index
//     horizon x (the later of ExpiresAt and AbsoluteExpiresAt): the
//     members' scores and the index sets' TTLs are at least x, and they are
//     raised (PEXPIREAT GT, ZADD XX GT, never lowered) before x is raised in
//     the record. Touch within the horizon, the usual case since ExpiresAt
//     never passes AbsoluteExpiresAt, is one script on the record. Because
//     a member's score is never below its record's expiry, members whose
//     score has passed belong to expired records and are dropped wholesale
//     (ZREMRANGEBYSCORE) before every read, and an index set expires only
//     after its last session. A session can thus never be live without
//     being reachable by subject and IdP sid, which is what a kill of all
//     of a user's sessions relies on.
//
// Delete removes the record and writes the tombstone in one script, then
// removes the index members; if that second step fails, the stale hints
// above are all that remains.
//
// Session keys are hashes of fresh random cookie values and are never reused
// while an earlier session under the same key could still be indexed, except
// deliberately after expiry or deletion; the compare-and-remove above keeps
// even that case correct for sequential use.
//
// # List and Cluster
//
// List walks the record keys with SCAN MATCH P{h:*} TYPE string
// (tombstones end in ":t" and do not match). SCAN may return a key twice
// across calls and may return more keys than asked for; List removes
// duplicates within a call and keeps the surplus handles in the cursor it
// returns (so a cursor can be a few kilobytes for a large limit), so each
// page holds at most limit sessions. Sessions created or deleted while a
// walk is under way may or may not be listed. In a Cluster, List walks the
// primaries one after another (in address order, taken at each call): a
// failover or resharding during a walk may skip or repeat sessions.
//
// # Errors
//
// A network error, a timeout or a server that is loading, read-only, down or
// out of memory is wrapped in sessionstore.ErrUnavailable (the BFF answers
// 503 and keeps the session). A missing key is sessionstore.ErrNotFound.
// Every error names the operation.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/sessionstore"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "bff:"

// Options configure a Store.
type Options struct {
	// Prefix starts every key and the pub/sub channel, so several
	// deployments (or tests) can share one Redis. Default "bff:".
	Prefix string
}

// Store is the Redis backend. It is safe for concurrent use by many
// goroutines and many processes.
type Store struct {
	client goredis.UniversalClient
	// owned says whether Close closes client: yes when Open created it, no
	// when the caller passed it to NewFromClient and may still use it.
	owned  bool
	prefix string
	// gets batches the session reads of concurrent requests.
	gets *getBatcher
	// decoded saves decoding records that did not change since last read.
	decoded *decodedRecords

	mu     sync.Mutex
	closed bool
	subs   map[*goredis.PubSub]struct{}
}

var _ sessionstore.Store = (*Store)(nil)

// Open connects to the Redis that rawURL names (see the package comment for
// the forms) and pings it. An unreachable server is an error wrapping
// sessionstore.ErrUnavailable, a malformed URL one that names the mistake.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	uo, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	client := goredis.NewUniversalClient(uo)
	st := NewFromClient(client, opts)
	st.owned = true
	if err := st.Ping(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: open %s: %w", redactURL(rawURL), err)
	}
	return st, nil
}

// NewFromClient wraps a client the caller configured. Close does not close
// it: the caller still owns it.
func NewFromClient(client goredis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{client: client, prefix: prefix, gets: &getBatcher{client: client},
		decoded: &decodedRecords{records: make(map[string]decodedRecord)}, subs: make(map[*goredis.PubSub]struct{})}
}

// Ping reports whether Redis answers.
func (st *Store) Ping(ctx context.Context) error {
	if err := st.client.Ping(ctx).Err(); err != nil {
		return st.fail("ping", err)
	}
	return nil
}

// Close ends every subscription and, if Open created the client, closes it.
func (st *Store) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	subs := st.subs
	st.subs = nil
	st.mu.Unlock()
	for ps := range subs {
		ps.Close()
	}
	if st.owned {
		return st.client.Close()
	}
	return nil
}

// Key names. The braces are Cluster hash tags: see the package comment.

func (st *Store) recordKey(handle string) string { return st.prefix + "{h:" + handle + "}" }
func (st *Store) subjectKey(sub string) string   { return st.prefix + "{u:" + sub + "}" }
func (st *Store) sidKey(sid string) string       { return st.prefix + "{s:" + sid + "}" }
func (st *Store) lockKey(name string) string     { return st.prefix + "{l:" + name + "}" }
func (st *Store) replayKey(id string) string     { return st.prefix + "{r:" + id + "}" }
func (st *Store) channel() string                { return st.prefix + "events" }

// recordPattern is the SCAN MATCH pattern of record keys (tombstones end
// in ":t", not "}", and do not match).
func (st *Store) recordPattern() string { return globEscape(st.prefix) + "{h:*}" }

// globEscape quotes the characters that SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fail wraps a client error for operation op: redis.Nil becomes
// ErrNotFound, anything that means "Redis cannot serve right now" becomes
// ErrUnavailable, and other server replies (a bug, a foreign key of the wrong
// type) stay plain errors.
func (st *Store) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return fmt.Errorf("redis: %s: %w", op, sessionstore.ErrNotFound)
	case isPermanentServerError(err):
		return fmt.Errorf("redis: %s: %w", op, err)
	default:
		return fmt.Errorf("redis: %s: %w: %w", op, sessionstore.ErrUnavailable, err)
	}
}

// transientReplies are error replies that mean the server cannot serve now,
// not that the command was wrong.
var transientReplies = []string{
	"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "OOM",
	"BUSY", "NOREPLICAS", "NOAUTH", "WRONGPASS", "NOPERM", "MOVED", "ASK",
}

func isPermanentServerError(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false
	}
	msg := strings.TrimPrefix(re.Error(), "ERR ")
	for _, p := range transientReplies {
		if strings.HasPrefix(msg, p) {
			return false
		}
	}
	return true
}
