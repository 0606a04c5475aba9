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
// With prefix P (Options.Prefix, default "bff:"), a session is stored as
//
//	P{k:<key>}       the record: one string, a fixed header (version, LastSeen,
//	                 ExpiresAt, index horizon) then the session with its sealed
//	                 tokens (sessionstore.Encode; see record.go)
//	P{k:<key>}:t     the tombstone (JSON), in the record's hash slot
//	P{h:<handle>}    string: the key of the session with that handle, packed
//	P{u:<subject>}   sorted set of packed keys, score = index horizon (Unix ms)
//	P{s:<idp sid>}   the same for the IdP session id
//	P{l:<name>}      a lock (random fence value)
//	P{r:<id>}        a replay-cache entry
//
// and events travel on the pub/sub channel P+"events". A packed key is the
// 32 bytes a session key (base64url) encodes, not its 43 characters: index
// members and handle pointers are most of what a session costs beside its
// record, and the shorter form puts each into a smaller allocator size
// class. Members and pointers written as text by earlier versions are
// still read, raised and removed (see packKey); an earlier version, though,
// takes a packed member for a stale one and removes it, so instances of
// both versions must not serve one Redis at the same time. The hash tags ({…})
// put a record and its tombstone into one Cluster slot, so every Lua script
// touches a single slot: Create, Update (compare-and-swap on v), Touch and
// Delete (read, delete and tombstone in one step) are each atomic on the
// record. Handle pointer and index sets live in other slots and are changed
// by separate commands; see "Indexes" for why that is still correct.
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
// In a Cluster the handle pointer and the index sets are in other slots than
// the record, so no script can change them together. Correctness rests on
// two rules instead:
//
//  1. Index entries are hints, written before the record exists and checked
//     against the record on every read. ListBySubject and ListByIdPSID read
//     the members, fetch their records and return only live records whose
//     subject (or IdP sid) really matches. A member whose record is gone is
//     removed, but only if its score is still the one that was read (a Lua
//     compare-and-remove): Create adds each member once before creating the
//     record and once more, one millisecond higher, after it, so a List that
//     saw the member in between cannot remove it from under a new session.
//     GetByHandle likewise checks that the record it reaches carries the
//     handle. A failed Create or a lost cleanup leaves only stale hints,
//     which cost a lookup and are removed when read or when they expire.
//
//  2. Every auxiliary key outlives its record. Each record carries an index
//     horizon x (the later of ExpiresAt and AbsoluteExpiresAt): the handle
//     pointer's TTL, the members' scores and the index sets' TTLs are at
//     least x, and they are raised (PEXPIREAT GT, ZADD XX GT, never lowered)
//     before x is raised in the record. Touch within the horizon, the usual
//     case since ExpiresAt never passes AbsoluteExpiresAt, is one script on
//     the record. Because a member's score is never below its record's
//     expiry, members whose score has passed belong to expired records and
//     are dropped wholesale (ZREMRANGEBYSCORE) before every read, and an
//     index set expires only after its last session. A session can thus
//     never be live without being reachable by subject, IdP sid and handle,
//     which is what a kill of all of a user's sessions relies on.
//
// Delete removes the record and writes the tombstone in one script, then
// removes the index members and the handle pointer; if that second step
// fails, the stale hints above are all that remains.
//
// Session keys are hashes of fresh random cookie values and are never reused
// while an earlier session under the same key could still be indexed, except
// deliberately after expiry or deletion; the compare-and-remove above keeps
// even that case correct for sequential use.
//
// # List and Cluster
//
// List walks the record keys with SCAN MATCH P{k:*} TYPE string. SCAN may
// return a key twice across calls and may return more keys than asked for;
// List removes duplicates within a call and keeps the surplus keys in the
// cursor it returns (so a cursor can be a few kilobytes for a large limit),
// so each page holds at most limit sessions. Sessions created or deleted
// while a walk is under way may or may not be listed. In a Cluster, List
// walks the primaries one after another (in address order, taken at each
// call): a failover or resharding during a walk may skip or repeat sessions.
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
	"encoding/base64"
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
	return &Store{client: client, prefix: prefix, subs: make(map[*goredis.PubSub]struct{})}
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

func (st *Store) recordKey(key string) string    { return st.prefix + "{k:" + key + "}" }
func (st *Store) tombKey(key string) string      { return st.recordKey(key) + ":t" }
func (st *Store) handleKey(handle string) string { return st.prefix + "{h:" + handle + "}" }
func (st *Store) subjectKey(sub string) string   { return st.prefix + "{u:" + sub + "}" }
func (st *Store) sidKey(sid string) string       { return st.prefix + "{s:" + sid + "}" }
func (st *Store) lockKey(name string) string     { return st.prefix + "{l:" + name + "}" }
func (st *Store) replayKey(id string) string     { return st.prefix + "{r:" + id + "}" }
func (st *Store) channel() string                { return st.prefix + "events" }

// Session keys inside index sets and handle pointers. A session key is
// KeyFromCookie's base64url of 32 bytes, 43 characters; there it is stored
// as those 32 bytes, so each index member and each handle pointer holds 11
// bytes less, which moves both into smaller allocator size classes (see the
// package comment). Any other key (tests use short ones) is stored as it
// is, behind a 0 byte when it could be taken for the packed form (32 bytes
// long) or for such an escape. A member or pointer written as text before
// keys were packed (43 characters) still reads as itself.
var b64 = base64.RawURLEncoding.Strict()

const packedKeySize = 32

func packKey(key string) string {
	if len(key) == 43 {
		if b, err := b64.DecodeString(key); err == nil {
			return string(b)
		}
	}
	if len(key) == packedKeySize || strings.HasPrefix(key, "\x00") {
		return "\x00" + key
	}
	return key
}

func unpackKey(m string) string {
	if len(m) == packedKeySize {
		return b64.EncodeToString([]byte(m))
	}
	return strings.TrimPrefix(m, "\x00")
}

// keyForms lists the forms key may be stored in: packed and, when that
// differs, as text (written before keys were packed).
func keyForms(key string) []any {
	if p := packKey(key); p != key {
		return []any{p, key}
	}
	return []any{key}
}

// recordPattern is the SCAN MATCH pattern of record keys (tombstones end in
// ":t", not "}", and do not match).
func (st *Store) recordPattern() string { return globEscape(st.prefix) + "{k:*}" }

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
