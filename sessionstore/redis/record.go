package redis

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// A record is stored as one string:
//
//	[0]        format, 1
//	[1,9)      version
//	[9,17)     LastSeen, Unix ns (0 for the zero time)
//	[17,25)    ExpiresAt, Unix ns
//	[25,33)    index horizon, Unix ms (see the package comment)
//	[33,37)    length of the encoded session
//	[37,41)    length of the sealed access token
//	[41,…)     the encoded session (sessionstore.Encode, without tokens),
//	           the sealed access token, the sealed secrets
//
// with every number big-endian. One string rather than a hash because a
// hash with large values is a Redis hashtable whose per-field allocations
// cost hundreds of bytes a session more; a binary header because every byte
// can push the string into the allocator's next size class (2560 to 3072
// bytes for a typical session). The fields the scripts change (version,
// LastSeen+ExpiresAt, horizon) sit at fixed offsets, so Touch is a SETRANGE
// and a PEXPIREAT; the scripts read the horizon with struct.unpack, exact
// for milliseconds in Lua's doubles. The tokens stay out of the JSON so they
// are stored as raw bytes rather than base64, a third smaller.
const (
	recordFormat = 1
	offVersion   = 1
	offTimes     = 9 // LastSeen then ExpiresAt
	offHorizon   = 25
	offLenMeta   = 33
	offLenAccess = 37
	headerSize   = 41
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
	meta.AccessToken, meta.Secrets = nil, nil
	m, err := sessionstore.Encode(&meta)
	if err != nil {
		return nil, err
	}
	if n := len(m) + len(s.AccessToken) + len(s.Secrets); n > sessionstore.MaxRecordSize {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", sessionstore.ErrInvalid, n, sessionstore.MaxRecordSize)
	}
	exp := ceilMs(s.ExpiresAt)
	r := &record{expMs: exp, horizon: max(exp, ceilMs(s.AbsoluteExpiresAt))}
	b := make([]byte, 0, headerSize+len(m)+len(s.AccessToken)+len(s.Secrets))
	b = append(b, recordFormat)
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	b = binary.BigEndian.AppendUint64(b, uint64(nanos(s.LastSeen)))
	b = binary.BigEndian.AppendUint64(b, uint64(nanos(s.ExpiresAt)))
	b = binary.BigEndian.AppendUint64(b, uint64(r.horizon))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.AccessToken)))
	b = append(b, m...)
	b = append(b, s.AccessToken...)
	b = append(b, s.Secrets...)
	r.b = b
	return r, nil
}

// decodeRecord rebuilds the session stored under key.
func decodeRecord(key string, b []byte) (*sessionstore.Session, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: stored record: %s", sessionstore.ErrInvalid, what)
	}
	if len(b) < headerSize || b[0] != recordFormat {
		return nil, bad("unknown format")
	}
	be := binary.BigEndian
	version := int64(be.Uint64(b[offVersion:]))
	lastSeen := int64(be.Uint64(b[offTimes:]))
	expires := int64(be.Uint64(b[offTimes+8:]))
	lm, la := int(be.Uint32(b[offLenMeta:])), int(be.Uint32(b[offLenAccess:]))
	if lm > len(b)-headerSize || la > len(b)-headerSize-lm {
		return nil, bad("bad header")
	}
	rest := b[headerSize:]
	s, err := sessionstore.Decode(key, version, rest[:lm])
	if err != nil {
		return nil, err
	}
	s.LastSeen, s.ExpiresAt = fromNanos(lastSeen), fromNanos(expires)
	// Copies, so the caller may change them without touching b.
	s.AccessToken = bytesOrNil(rest[lm : lm+la])
	s.Secrets = bytesOrNil(rest[lm+la:])
	return s, nil
}

func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
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
