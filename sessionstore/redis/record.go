package redis

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// A record is stored as one string:
//
//	[0]        format, 3
//	[1,9)      version
//	[9,17)     LastSeen, Unix ns (0 for the zero time)
//	[17,25)    ExpiresAt, Unix ns
//	[25,33)    index horizon, Unix ms (see the package comment)
//	[33,65)    the 32 bytes of the session key, which the record key (the
//	           handle) names only half of; every read checks them
//	[65,…)     the session, tokens included, as sessionstore.Encode writes
//	           it, but without LastSeen (the header has it)
//
// with every number big-endian. One string rather than a hash because a
// hash with large values is a Redis hashtable whose per-field allocations
// cost hundreds of bytes a session more; a binary header because every byte
// can push the string into the allocator's next size class (1792 to 2048
// bytes for a typical session). The fields the scripts change (version,
// LastSeen+ExpiresAt, horizon) sit at fixed offsets, so Touch is a SETRANGE
// and a PEXPIREAT; the scripts read the horizon with struct.unpack, exact
// for milliseconds in Lua's doubles. ExpiresAt stays in the encoded session
// too (Encode requires it); the header's copy wins on read.
const (
	recordFormat = 3
	offVersion   = 1
	offTimes     = 9 // LastSeen then ExpiresAt
	offHorizon   = 25
	offKey       = 33
	headerSize   = offKey + keySize
	keySize      = 32
)

// loc is where the session of one key lives: its record and tombstone
// keys, and the 32 bytes of the key that the record and the tombstone
// carry.
type loc struct {
	rk, tk string
	kb     string
}

// locOf is where the session under key lives, and false if key is not a
// session key (as sessionstore.KeyFromCookie makes them), which no stored
// session can have.
func (st *Store) locOf(key string) (loc, bool) {
	h := sessionstore.HandleFromKey(key)
	if h == "" {
		return loc{}, false
	}
	kb, _ := ids.B64.DecodeString(key) // HandleFromKey checked it
	rk := st.recordKey(h)
	return loc{rk: rk, tk: rk + ":t", kb: string(kb)}, true
}

// member is the index member of the session with handle h: the 16 bytes h
// encodes.
func member(handle string) string {
	b, _ := ids.B64.DecodeString(handle)
	return string(b)
}

// record is a session about to be stored.
type record struct {
	l       loc    // where it goes
	b       []byte // the stored string
	expMs   int64  // PEXPIREAT of the record
	horizon int64  // index horizon
}

// encodeRecord validates s and lays it out with the given version. A
// session whose handle is not derived from its key is ErrInvalid: it has
// no place in this layout.
func (st *Store) encodeRecord(s *sessionstore.Session, version int64) (*record, error) {
	if err := sessionstore.CheckHandle(s); err != nil {
		return nil, err
	}
	l, _ := st.locOf(s.Key) // CheckHandle made sure it is a session key
	meta := *s
	meta.LastSeen = time.Time{}
	m, err := sessionstore.Encode(&meta)
	if err != nil {
		return nil, err
	}
	exp := ceilMs(s.ExpiresAt)
	r := &record{l: l, expMs: exp, horizon: max(exp, ceilMs(s.AbsoluteExpiresAt))}
	b := make([]byte, 0, headerSize+len(m))
	b = append(b, recordFormat)
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	b = binary.BigEndian.AppendUint64(b, uint64(nanos(s.LastSeen)))
	b = binary.BigEndian.AppendUint64(b, uint64(nanos(s.ExpiresAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(r.horizon))
	b = append(b, l.kb...)
	r.b = append(b, m...)
	return r, nil
}

// recordKeyOf returns the session key a record carries, and false if b is
// not a record.
func recordKeyOf(b []byte) (string, bool) {
	if len(b) < headerSize || b[0] != recordFormat {
		return "", false
	}
	return ids.B64.EncodeToString(b[offKey:headerSize]), true
}

// decodeRecord rebuilds the session a record holds.
func decodeRecord(b []byte) (*sessionstore.Session, error) {
	key, ok := recordKeyOf(b)
	if !ok {
		return nil, fmt.Errorf("%w: stored record: unknown format", sessionstore.ErrInvalid)
	}
	be := binary.BigEndian
	s, err := sessionstore.Decode(key, int64(be.Uint64(b[offVersion:])), b[headerSize:])
	if err != nil {
		return nil, err
	}
	s.LastSeen = fromNanos(int64(be.Uint64(b[offTimes:])))
	s.ExpiresAt = fromNanos(int64(be.Uint64(b[offTimes+8:])))
	return s, nil
}

// underHandle decodes b, read under handle, if it is the record of a
// session with that handle; nil if it is missing or of another key (whose
// handle collides, so it cannot be stored here anyway).
func underHandle(handle string, b []byte) (*sessionstore.Session, error) {
	if key, ok := recordKeyOf(b); !ok || sessionstore.HandleFromKey(key) != handle {
		return nil, nil
	}
	s, err := decodeRecord(b)
	if err != nil || s.Handle != handle {
		return nil, err
	}
	return s, nil
}

// ownRecord reports whether b, read at l, is the record of the session l
// is for.
func ownRecord(l loc, b []byte) bool {
	return len(b) >= headerSize && b[0] == recordFormat && string(b[offKey:headerSize]) == l.kb
}

// be64 is n as the 8 big-endian bytes the header and the scripts use.
func be64(n int64) string { return string(binary.BigEndian.AppendUint64(nil, uint64(n))) }

// nanos is t in Unix nanoseconds, exact for any session's lifetime (until
// 2262) and without the zone, which time.Time.Equal ignores; the zero time
// is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// ceilMs rounds t up to Unix milliseconds, so a key never expires before t.
func ceilMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	ns := t.UnixNano()
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return ms
}
