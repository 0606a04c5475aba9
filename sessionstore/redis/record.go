package redis

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// A record is stored as one string:
//
//	[0]        format, 2
//	[1,9)      version
//	[9,17)     LastSeen, Unix ns (0 for the zero time)
//	[17,25)    ExpiresAt, Unix ns
//	[25,33)    index horizon, Unix ms (see the package comment)
//	[33,…)     the session, tokens included, as sessionstore.Encode writes
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
//
// Format 3 is format 2 with the 32 bytes of the session key at [33,65),
// before the session: it is written for a session stored under its derived
// handle (see the package comment), whose record key does not name the
// whole key, and every read checks that the record carries the key asked
// for.
const (
	recordFormat = 2
	offVersion   = 1
	offTimes     = 9 // LastSeen then ExpiresAt
	offHorizon   = 25
	headerSize   = 33

	recordFormatV3 = 3
	headerSizeV3   = headerSize + packedKeySize
)

// record is a session about to be stored.
type record struct {
	b       []byte // the stored string
	expMs   int64  // PEXPIREAT of the record
	horizon int64  // index horizon
}

// encodeRecord validates s and lays it out with the given version.
func encodeRecord(s *sessionstore.Session, version int64) (*record, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil session", sessionstore.ErrInvalid)
	}
	meta := *s
	meta.LastSeen = time.Time{}
	m, err := sessionstore.Encode(&meta)
	if err != nil {
		return nil, err
	}
	exp := ceilMs(s.ExpiresAt)
	r := &record{expMs: exp, horizon: max(exp, ceilMs(s.AbsoluteExpiresAt))}
	format, kb := byte(recordFormat), ""
	if derived(s) {
		format, kb = recordFormatV3, packKey(s.Key)
	}
	b := make([]byte, 0, headerSize+len(kb)+len(m))
	b = append(b, format)
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	b = binary.BigEndian.AppendUint64(b, uint64(nanos(s.LastSeen)))
	b = binary.BigEndian.AppendUint64(b, uint64(nanos(s.ExpiresAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(r.horizon))
	b = append(b, kb...)
	r.b = append(b, m...)
	return r, nil
}

// decodeRecord rebuilds the session stored under key.
func decodeRecord(key string, b []byte) (*sessionstore.Session, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: stored record: %s", sessionstore.ErrInvalid, what)
	}
	if len(b) < headerSize || (b[0] != recordFormat && b[0] != recordFormatV3) {
		return nil, bad("unknown format")
	}
	if b[0] == recordFormatV3 {
		if k, ok := embeddedKey(b); !ok || k != key {
			return nil, bad("record of another key")
		}
	}
	be := binary.BigEndian
	version := int64(be.Uint64(b[offVersion:]))
	lastSeen := int64(be.Uint64(b[offTimes:]))
	expires := int64(be.Uint64(b[offTimes+8:]))
	var s *sessionstore.Session
	var err error
	switch b[0] {
	case recordFormat:
		s, err = sessionstore.Decode(key, version, b[headerSize:])
	default: // recordFormatV3
		s, err = sessionstore.Decode(key, version, b[headerSizeV3:])
	}
	if err != nil {
		return nil, err
	}
	s.LastSeen, s.ExpiresAt = fromNanos(lastSeen), fromNanos(expires)
	return s, nil
}

// embeddedKey returns the session key a format 3 record carries, and
// false if b is not such a record (a handle pointer, say, which lives
// under the same names).
func embeddedKey(b []byte) (string, bool) {
	if len(b) < headerSizeV3 || b[0] != recordFormatV3 {
		return "", false
	}
	return b64.EncodeToString(b[headerSize:headerSizeV3]), true
}

// ownRecord reports whether b, read from l, is the record of the session
// l is for: for a location under a handle, a format 3 record carrying the
// key.
func ownRecord(l loc, b []byte) bool {
	if l.kb == "" {
		return len(b) > 0 && b[0] != recordFormatV3
	}
	return len(b) >= headerSizeV3 && b[0] == recordFormatV3 && string(b[headerSize:headerSizeV3]) == l.kb
}

// recordAt returns the key of the session whose record b is, read at l
// (nil if missing), and false if b is no such record. Under a key it is
// that key; under a handle it is the key the record carries, if the handle
// is derived from it.
func recordAt(l loc, key string, b []byte) (string, bool) {
	if b == nil {
		return "", false
	}
	if l.h == "" {
		return key, ownRecord(l, b)
	}
	k, ok := embeddedKey(b)
	if !ok || sessionstore.HandleFromKey(k) != l.h || (l.kb != "" && packKey(k) != l.kb) {
		return "", false
	}
	return k, true
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
