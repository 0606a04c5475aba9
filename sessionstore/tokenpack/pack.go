// Package tokenpack shrinks the tokens of a session before they are sealed
// for the store (see sessionstore.Sealer), and restores them byte for byte:
// Pack and Unpack for the access token, EncodeSecrets and DecodeSecrets for
// the refresh and ID token. The formats below are part of what a store
// holds: change them only with a new format byte.
package tokenpack

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// Tokens are sealed one by one (see sessionstore.Sealer), so what is sealed is all the
// store keeps of them, and every byte of it is paid for in every session.
// Most tokens are JWTs: three base64url segments, a third larger than the
// bytes they encode. Pack therefore stores each segment decoded (a
// quarter smaller), and shrinks the JSON segments (header and claims) too,
// which are mostly the same text in every token: Pack codes them (see
// encodeJSON), cheap to undo on every request, and EncodeSecrets deflates
// them against a dictionary of that text (jwtDict), smaller but about
// 10 µs to undo, paid only on refresh and logout. Secrecy is unchanged,
// since the packed bytes are sealed like the token itself; only the size
// shrinks. Anything that is not made of clean base64url segments is kept
// byte for byte.
//
// A packed token starts with a format byte:
//
//	tokenRaw       the token's bytes follow unchanged
//	tokenSegments  a segment count n (1..maxSegments), a mask of the shrunk
//	               segments, the stored lengths of the first n-1 segments
//	               (uvarints), then the stored segments; the last one runs to
//	               the end; no segment is shrunk (the mask is 0)
//	tokenDict      as tokenSegments, shrunk segments deflated against jwtDict
//	tokenCoded     as tokenSegments, shrunk segments coded (encodeJSON)
//
// Pack and EncodeSecrets write tokenSegments when no segment shrinks.
// The empty token packs to nothing.
const (
	tokenRaw      = 0x01
	tokenSegments = 0x02
	tokenDict     = 0x03
	tokenCoded    = 0x04

	// maxSegments bounds the dot-separated segments of a packed token:
	// enough for a JWS (3) and a JWE (5).
	maxSegments = 8
	// minShrink is the shortest segment worth trying to shrink: a JWT
	// header, about 40 bytes and more, already is.
	minShrink = 16
	// maxUnpacked bounds what a packed token may expand to, so a damaged
	// (or hostile) deflate stream cannot exhaust memory.
	maxUnpacked = sessionstore.MaxRecordSize
)

// Pack turns a token into the bytes that are sealed for the store:
// JWTs and other base64url tokens decoded, anything else as it is (see
// above). Unpack restores the exact string.
//
// Pack codes JSON segments rather than deflating them: the access
// token is unpacked on every proxied request, where inflating would cost
// about 10 µs (building each segment's Huffman tables) and coding costs
// under 1 µs, while the refresh and ID tokens (EncodeSecrets) are read only
// on refresh and logout.
func Pack(token string) []byte { return packToken(token, false) }

func packToken(token string, squeeze bool) []byte {
	if token == "" {
		return nil
	}
	b, ok := packSegments(token, false)
	if squeeze && ok {
		// Coding beats deflate where the JSON is mostly UUIDs and hex.
		if z, _ := packSegments(token, true); len(z) < len(b) {
			b = z
		}
	}
	if ok && len(b) < 1+len(token) {
		return b
	}
	return append([]byte{tokenRaw}, token...)
}

// packSegments stores the dot-separated base64url segments of token
// decoded, or reports false if token is not made of such segments. JSON
// segments are shrunk when that makes them smaller: deflated against
// jwtDict with squeeze, else coded. With squeeze, packToken keeps the
// smaller of the two.
func packSegments(token string, squeeze bool) ([]byte, bool) {
	n := strings.Count(token, ".") + 1
	if n > maxSegments {
		return nil, false
	}
	segs := make([][]byte, 0, n)
	var mask byte
	for i, seg := range strings.Split(token, ".") {
		if !ids.IsBase64URL(seg) {
			return nil, false
		}
		dec, err := ids.B64.DecodeString(seg)
		if err != nil {
			return nil, false
		}
		if len(dec) >= minShrink && dec[0] == '{' {
			z, ok := []byte(nil), false
			if squeeze {
				z = deflate(dec)
				ok = len(z) < len(dec)
			} else {
				z, ok = encodeJSON(dec)
				ok = ok && len(z) < len(dec)
			}
			if ok {
				dec = z
				mask |= 1 << i
			}
		}
		segs = append(segs, dec)
	}
	format := byte(tokenSegments)
	switch {
	case mask != 0 && squeeze:
		format = tokenDict
	case mask != 0:
		format = tokenCoded
	}
	out := []byte{format, byte(n), mask}
	for _, s := range segs[:n-1] {
		out = binary.AppendUvarint(out, uint64(len(s)))
	}
	for _, s := range segs {
		out = append(out, s...)
	}
	return out, true
}

// deflate compresses b as a raw deflate stream against jwtDict, with a
// pooled writer: a new one costs about 0.7 ms and 800 KB of garbage, more
// than compressing a token takes.
func deflate(b []byte) []byte {
	w, _ := writers.Get().(*flate.Writer)
	var buf bytes.Buffer
	buf.Grow(len(b))
	if w == nil {
		var err error
		if w, err = flate.NewWriterDict(&buf, flate.BestCompression, jwtDictBytes); err != nil {
			return b
		}
	} else {
		w.Reset(&buf) // keeps the dictionary
	}
	defer writers.Put(w)
	if _, err := w.Write(b); err != nil {
		return b
	}
	if err := w.Close(); err != nil {
		return b
	}
	return buf.Bytes()
}

var writers, readers sync.Pool

// inflate reverses deflate; with dict false it reads the segments of
// tokenSegments, which were deflated without a dictionary. Readers are
// pooled because a new one allocates about 40 KB, many times the token.
func inflate(b []byte) ([]byte, error) {
	src := bytes.NewReader(b)
	r, _ := readers.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(nil)
	}
	if err := r.(flate.Resetter).Reset(src, jwtDictBytes); err != nil {
		return nil, err
	}
	defer readers.Put(r)
	// A JWT's JSON is rarely more than three times its deflated size; the
	// buffer grows beyond that if it must, up to maxUnpacked.
	out := bytes.NewBuffer(make([]byte, 0, min(4*len(b)+64, maxUnpacked)))
	if _, err := out.ReadFrom(io.LimitReader(r, maxUnpacked+1)); err != nil {
		return nil, err
	}
	if out.Len() > maxUnpacked {
		return nil, fmt.Errorf("expands beyond %d bytes", maxUnpacked)
	}
	return out.Bytes(), nil
}

// Unpack reverses Pack. Bytes that Pack cannot have made are
// an error wrapping sessionstore.ErrInvalid.
func Unpack(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	switch c := b[0]; {
	case c == tokenRaw:
		return string(b[1:]), nil
	case c == tokenSegments || c == tokenDict || c == tokenCoded:
		return unpackSegments(b[1:], c)
	default:
		return "", fmt.Errorf("%w: packed token: unknown format %#x", sessionstore.ErrInvalid, c)
	}
}

func unpackSegments(b []byte, format byte) (string, error) {
	bad := func(what string) (string, error) {
		return "", fmt.Errorf("%w: packed token: %s", sessionstore.ErrInvalid, what)
	}
	if len(b) < 2 {
		return bad("truncated")
	}
	n, mask := int(b[0]), b[1]
	if n < 1 || n > maxSegments || mask>>n != 0 || (format == tokenSegments && mask != 0) {
		return bad("bad segment header")
	}
	b = b[2:]
	var lens [maxSegments]uint64
	var scratch [1024]byte // for a coded segment; a larger one allocates
	for i := range n - 1 {
		l, k := binary.Uvarint(b)
		if k <= 0 {
			return bad("bad segment length")
		}
		lens[i], b = l, b[k:]
	}
	// The token is built on the stack, then copied once into its string:
	// the access token is unpacked on every request. A token beyond 2 KB
	// grows out onto the heap.
	var buf [2048]byte
	out := buf[:0]
	for i := range n {
		seg := b
		if i < n-1 {
			if lens[i] > uint64(len(b)) {
				return bad("segment beyond the end")
			}
			seg, b = b[:lens[i]], b[lens[i]:]
		}
		// plain is its own variable, not seg, so that scratch can stay on
		// the stack: seg goes to inflate, which keeps it.
		plain := seg
		if mask&(1<<i) != 0 {
			var err error
			if format == tokenCoded {
				plain, err = decodeJSON(scratch[:0], seg)
			} else {
				plain, err = inflate(seg)
			}
			if err != nil {
				return bad("segment " + fmt.Sprint(i) + ": " + err.Error())
			}
		}
		if len(out)+1+ids.B64.EncodedLen(len(plain)) > maxUnpacked {
			return bad("too large")
		}
		if i > 0 {
			out = append(out, '.')
		}
		out = ids.B64.AppendEncode(out, plain)
	}
	return string(out), nil
}

// Packed secrets: secretsFormat, the length of the packed refresh token
// (uvarint), the packed refresh token, the packed ID token.
const secretsFormat = 0x01

// EncodeSecrets turns the refresh and ID token into the bytes that are
// sealed for the store, each token packed like Pack but its JSON
// segments (header and claims of a JWT) deflated against jwtDict when that
// makes it smaller than coding: a typical JWT ID token shrinks by half, where JSON would keep it
// whole.
// DecodeSecrets reverses it.
func EncodeSecrets(s sessionstore.Secrets) ([]byte, error) {
	rt, it := packToken(s.RefreshToken, true), packToken(s.IDToken, true)
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(rt)+len(it))
	out = append(out, secretsFormat)
	out = binary.AppendUvarint(out, uint64(len(rt)))
	out = append(out, rt...)
	return append(out, it...), nil
}

// DecodeSecrets reverses EncodeSecrets. Malformed bytes are an error
// wrapping sessionstore.ErrInvalid.
func DecodeSecrets(b []byte) (sessionstore.Secrets, error) {
	var s sessionstore.Secrets
	if len(b) == 0 || b[0] != secretsFormat {
		return s, fmt.Errorf("%w: decode secrets: unknown format", sessionstore.ErrInvalid)
	}
	l, k := binary.Uvarint(b[1:])
	if k <= 0 || l > uint64(len(b)-1-k) {
		return s, fmt.Errorf("%w: decode secrets: bad length", sessionstore.ErrInvalid)
	}
	rest := b[1+k:]
	var err error
	if s.RefreshToken, err = Unpack(rest[:l]); err != nil {
		return sessionstore.Secrets{}, fmt.Errorf("decode secrets: refresh token: %w", err)
	}
	if s.IDToken, err = Unpack(rest[l:]); err != nil {
		return sessionstore.Secrets{}, fmt.Errorf("decode secrets: ID token: %w", err)
	}
	return s, nil
}
