package sessionstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// Encode writes a small binary format rather than JSON: a session is kept
// for hours and every byte of it is held by the store (in Redis, in memory)
// for all that time. JSON spelled out six RFC 3339 times (about 40 bytes
// each, where a varint delta needs 1 to 7) and base64'd the sealed tokens,
// a third larger than their bytes. The format:
//
//	recordFormat (1 byte)
//	Handle, Subject, Issuer, IdPSID
//	              Issuer a uvarint length and the bytes, the others
//	              identifiers (see appendID)
//	Scope, UserAgent, ClientIP
//	              each a uvarint length and the bytes
//	Claims        a uvarint count, then key and value as above, keys sorted
//	AccessToken, Secrets
//	              each a uvarint length and the bytes
//	a presence byte, bit i set when time i is not the zero time, then for
//	each present time two zigzag varints: seconds and nanoseconds relative
//	to CreatedAt (CreatedAt itself relative to the Unix epoch)
//
//	RouteTokens   only when not empty: a uvarint length and the bytes (a
//	              record without it is one written before it existed, or
//	              of a session without route tokens)
//
// with the times in the order CreatedAt, LastSeen, AccessIssuedAt,
// AccessExpiresAt, AbsoluteExpiresAt, ExpiresAt. Deltas keep them short
// (times of one login are seconds or hours apart, with the same fraction),
// and exact to the nanosecond: time.Time.Equal holds after a round trip,
// though the zone is not kept (times come back in UTC) and neither is the
// monotonic reading.
const recordFormat = 0x01

// Encode turns a session into the bytes a backend stores. Key and Version
// are kept by the backend beside the record, not inside it.
func Encode(s *Session) ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	n := 64 + len(s.Handle) + len(s.Subject) + len(s.Issuer) + len(s.IdPSID) + len(s.Scope) +
		len(s.UserAgent) + len(s.ClientIP) + len(s.AccessToken) + len(s.Secrets) + len(s.RouteTokens)
	for k, v := range s.Claims {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
		if n > MaxRecordSize+64 {
			break // refused below; no need to count on
		}
	}
	if n > MaxRecordSize+64 {
		return nil, fmt.Errorf("%w: record of about %d bytes exceeds %d", ErrInvalid, n, MaxRecordSize)
	}
	b := make([]byte, 0, n)
	b = append(b, recordFormat)
	b = appendID(b, s.Handle)
	b = appendID(b, s.Subject)
	b = appendString(b, s.Issuer)
	b = appendID(b, s.IdPSID)
	for _, f := range []string{s.Scope, s.UserAgent, s.ClientIP} {
		b = appendString(b, f)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Claims)))
	for _, k := range slices.Sorted(maps.Keys(s.Claims)) {
		b = appendString(b, k)
		b = appendString(b, s.Claims[k])
	}
	b = appendString(b, string(s.AccessToken))
	b = appendString(b, string(s.Secrets))
	times := s.times()
	var present byte
	for i, t := range times {
		if !t.IsZero() {
			present |= 1 << i
		}
	}
	b = append(b, present)
	var baseSec, baseNsec int64 // the epoch, then CreatedAt
	for i, t := range times {
		if t.IsZero() {
			continue
		}
		sec, nsec := t.Unix(), int64(t.Nanosecond())
		b = binary.AppendVarint(b, int64(uint64(sec)-uint64(baseSec))) // wraps; Decode wraps back
		b = binary.AppendVarint(b, nsec-baseNsec)
		if i == 0 {
			baseSec, baseNsec = sec, nsec
		}
	}
	if len(s.RouteTokens) > 0 {
		b = appendString(b, string(s.RouteTokens))
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalid, len(b), MaxRecordSize)
	}
	return b, nil
}

// Decode reads a record written by Encode. Malformed bytes are ErrInvalid.
func Decode(key string, version int64, b []byte) (*Session, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalid, len(b), MaxRecordSize)
	}
	s, err := decodeBinary(b)
	if err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrInvalid, err)
	}
	s.Key, s.Version = key, version
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeBinary(b []byte) (*Session, error) {
	if len(b) == 0 || b[0] != recordFormat {
		return nil, errors.New("unknown format")
	}
	d := decoder{b: b[1:]}
	s := new(Session)
	s.Handle, s.Subject, s.Issuer, s.IdPSID = d.id(), d.id(), d.string(), d.id()
	for _, f := range []*string{&s.Scope, &s.UserAgent, &s.ClientIP} {
		*f = d.string()
	}
	// Each claim takes at least two bytes: a count beyond that is damage,
	// and must not size an allocation.
	if n := d.uvarint(); n > uint64(len(d.b)/2) {
		d.fail("claim count")
	} else if n > 0 {
		s.Claims = make(map[string]string, n)
		for range n {
			k, v := d.string(), d.string()
			if _, dup := s.Claims[k]; dup {
				d.fail("repeated claim")
			}
			s.Claims[k] = v
		}
	}
	s.AccessToken, s.Secrets = d.bytes(), d.bytes()
	present := d.byte()
	if present>>numTimes != 0 {
		d.fail("time flags")
	}
	times := s.timePtrs()
	var baseSec, baseNsec int64
	for i, t := range times {
		if present&(1<<i) == 0 {
			continue
		}
		sec := int64(uint64(baseSec) + uint64(d.varint()))
		nsec := baseNsec + d.varint()
		if nsec < 0 || nsec >= 1e9 {
			d.fail("time fraction")
			break
		}
		*t = time.Unix(sec, nsec).UTC()
		if t.IsZero() {
			d.fail("time") // encoded as absent, never as a value
		}
		if i == 0 {
			baseSec, baseNsec = sec, nsec
		}
	}
	if d.err == nil && len(d.b) > 0 {
		if s.RouteTokens = d.bytes(); s.RouteTokens == nil {
			d.fail("route tokens") // present, so not empty
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

const numTimes = 6

// times lists the session's times in record order.
func (s *Session) times() [numTimes]time.Time {
	return [numTimes]time.Time{s.CreatedAt, s.LastSeen, s.AccessIssuedAt, s.AccessExpiresAt, s.AbsoluteExpiresAt, s.ExpiresAt}
}

func (s *Session) timePtrs() [numTimes]*time.Time {
	return [numTimes]*time.Time{&s.CreatedAt, &s.LastSeen, &s.AccessIssuedAt, &s.AccessExpiresAt, &s.AbsoluteExpiresAt, &s.ExpiresAt}
}

// Identifiers (Handle, Subject, IdPSID) are usually random: a base64url
// handle, UUIDs from the IdP. appendID stores such a one decoded, 16 bytes
// for a UUID's 36 characters, behind a uvarint of its length and kind.
const (
	idRaw    = 0 // the bytes as they are
	idBase64 = 1 // canonical unpadded base64url, stored decoded
	idUUID   = 2 // a lowercase hyphenated UUID, stored as its 16 bytes
)

func appendID(b []byte, s string) []byte {
	if u, ok := ids.ParseUUID(s); ok {
		b = binary.AppendUvarint(b, 16<<2|idUUID)
		return append(b, u[:]...)
	}
	if ids.IsBase64URL(s) {
		if dec, err := ids.B64.DecodeString(s); err == nil && len(dec) < len(s) {
			b = binary.AppendUvarint(b, uint64(len(dec))<<2|idBase64)
			return append(b, dec...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<2|idRaw)
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a binary record; the first error sticks and every later
// read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New("bad " + what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 { return readVarint(d, binary.Uvarint, "length") }

func (d *decoder) varint() int64 { return readVarint(d, binary.Varint, "time") }

// readVarint reads one varint with read (binary.Uvarint or binary.Varint);
// what names the field when it is malformed.
func readVarint[T uint64 | int64](d *decoder, read func([]byte) (T, int), what string) T {
	v, n := read(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("end")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.raw()) }

// id reads what appendID wrote.
func (d *decoder) id() string {
	v := d.uvarint()
	n, kind := v>>2, v&3
	if n > uint64(len(d.b)) {
		d.fail("length")
		return ""
	}
	raw := d.b[:n]
	d.b = d.b[n:]
	switch {
	case kind == idRaw:
		return string(raw)
	case kind == idBase64 && n > 0:
		return ids.B64.EncodeToString(raw)
	case kind == idUUID && n == 16:
		return string(ids.AppendUUID(make([]byte, 0, 36), raw))
	}
	d.fail("identifier")
	return ""
}

// bytes copies, so the session does not pin the record it came from; an
// empty value is nil.
func (d *decoder) bytes() []byte {
	if v := d.raw(); len(v) > 0 {
		return bytes.Clone(v)
	}
	return nil
}
