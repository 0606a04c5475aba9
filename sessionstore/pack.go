package sessionstore

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Packed tokens.
//
// Tokens are sealed one by one (see Sealer), so what is sealed is all the
// store keeps of them, and every byte of it is paid for in every session.
// Most tokens are JWTs: three base64url segments, a third larger than the
// bytes they encode. PackToken therefore stores each segment decoded (a
// quarter smaller), and EncodeSecrets also deflates a JSON segment (the
// claims of a JWT) when that helps. Secrecy is unchanged, since the packed
// bytes are sealed like the token itself; only the size shrinks. Anything that is not made of
// clean base64url segments is kept byte for byte.
//
// A packed token starts with a format byte:
//
//	tokenRaw       the token's bytes follow unchanged
//	tokenSegments  a segment count n (1..maxSegments), a mask of the deflated
//	               segments, the stored lengths of the first n-1 segments
//	               (uvarints), then the stored segments; the last one runs to
//	               the end
//
// The format bytes are control characters, which no OAuth token starts with
// (RFC 6749 tokens are printable ASCII), so a value sealed before tokens
// were packed, the token itself, still unpacks: a first byte from '!' to
// '~' means an unpacked token. The empty token packs to nothing.
const (
	tokenRaw      = 0x01
	tokenSegments = 0x02

	// maxSegments bounds the dot-separated segments of a packed token:
	// enough for a JWS (3) and a JWE (5).
	maxSegments = 8
	// minDeflate is the shortest segment worth trying to deflate.
	minDeflate = 96
	// maxUnpacked bounds what a packed token may expand to, so a damaged
	// (or hostile) deflate stream cannot exhaust memory.
	maxUnpacked = MaxRecordSize
)

// b64 is the alphabet of JWT segments: base64url without padding. Strict,
// so that only canonical segments (unused bits zero) are packed and every
// packed segment encodes back to the very same text.
var b64 = base64.RawURLEncoding.Strict()

// PackToken turns a token into the bytes that are sealed for the store:
// JWTs and other base64url tokens decoded, anything else as it is (see
// above). UnpackToken restores the exact string.
//
// PackToken does not deflate: the access token is unpacked on every proxied
// request, where inflating would cost an allocation of tens of kilobytes,
// while the refresh and ID tokens (EncodeSecrets) are read only on refresh
// and logout.
func PackToken(token string) []byte { return packToken(token, false) }

func packToken(token string, squeeze bool) []byte {
	if token == "" {
		return nil
	}
	if b, ok := packSegments(token, squeeze); ok && len(b) < 1+len(token) {
		return b
	}
	return append([]byte{tokenRaw}, token...)
}

// packSegments stores the dot-separated base64url segments of token
// decoded, or reports false if token is not made of such segments. With
// squeeze, JSON segments are deflated when that makes them smaller.
func packSegments(token string, squeeze bool) ([]byte, bool) {
	n := strings.Count(token, ".") + 1
	if n > maxSegments {
		return nil, false
	}
	segs := make([][]byte, 0, n)
	var mask byte
	for i, seg := range strings.Split(token, ".") {
		if !isBase64URL(seg) {
			return nil, false
		}
		dec, err := b64.DecodeString(seg)
		if err != nil {
			return nil, false
		}
		if squeeze && len(dec) >= minDeflate && dec[0] == '{' {
			if z := deflate(dec); len(z) < len(dec) {
				dec = z
				mask |= 1 << i
			}
		}
		segs = append(segs, dec)
	}
	out := []byte{tokenSegments, byte(n), mask}
	for _, s := range segs[:n-1] {
		out = binary.AppendUvarint(out, uint64(len(s)))
	}
	for _, s := range segs {
		out = append(out, s...)
	}
	return out, true
}

// isBase64URL reports whether s uses only the base64url alphabet. The
// decoder alone is not enough: it skips '\r' and '\n'.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// deflate compresses b as a raw deflate stream. On the claims of a typical
// ID token it saves about a third of the decoded bytes (560 to 350). A
// writer costs about 0.7 ms and 800 KB of garbage whatever the level, paid
// once per login or refresh, beside a round trip to the IdP.
func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		return b
	}
	if _, err := w.Write(b); err != nil {
		return b
	}
	if err := w.Close(); err != nil {
		return b
	}
	return buf.Bytes()
}

func inflate(b []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxUnpacked+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxUnpacked {
		return nil, fmt.Errorf("expands beyond %d bytes", maxUnpacked)
	}
	return out, nil
}

// UnpackToken reverses PackToken. Bytes that PackToken cannot have made are
// an error wrapping ErrInvalid.
func UnpackToken(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	switch c := b[0]; {
	case c == tokenRaw:
		return string(b[1:]), nil
	case c == tokenSegments:
		return unpackSegments(b[1:])
	case '!' <= c && c <= '~':
		return string(b), nil // sealed before tokens were packed
	default:
		return "", fmt.Errorf("%w: packed token: unknown format %#x", ErrInvalid, c)
	}
}

func unpackSegments(b []byte) (string, error) {
	bad := func(what string) (string, error) {
		return "", fmt.Errorf("%w: packed token: %s", ErrInvalid, what)
	}
	if len(b) < 2 {
		return bad("truncated")
	}
	n, mask := int(b[0]), b[1]
	if n < 1 || n > maxSegments || mask>>n != 0 {
		return bad("bad segment header")
	}
	b = b[2:]
	lens := make([]uint64, n)
	for i := range n - 1 {
		l, k := binary.Uvarint(b)
		if k <= 0 {
			return bad("bad segment length")
		}
		lens[i], b = l, b[k:]
	}
	var sb strings.Builder
	for i := range n {
		seg := b
		if i < n-1 {
			if lens[i] > uint64(len(b)) {
				return bad("segment beyond the end")
			}
			seg, b = b[:lens[i]], b[lens[i]:]
		}
		if mask&(1<<i) != 0 {
			z, err := inflate(seg)
			if err != nil {
				return bad("segment " + fmt.Sprint(i) + ": " + err.Error())
			}
			seg = z
		}
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(b64.EncodeToString(seg))
		if sb.Len() > maxUnpacked {
			return bad("too large")
		}
	}
	return sb.String(), nil
}

// Packed secrets: secretsFormat, the length of the packed refresh token
// (uvarint), the packed refresh token, the packed ID token. Values written
// before this format are JSON objects and still decode.
const secretsFormat = 0x01

// EncodeSecrets turns the refresh and ID token into the bytes that are
// sealed for the store, each token packed like PackToken and its JSON
// segments (the claims of a JWT) deflated when that helps: a typical JWT ID
// token shrinks by 40% and more, where JSON would keep it whole.
// DecodeSecrets reverses it.
func EncodeSecrets(s Secrets) ([]byte, error) {
	rt, it := packToken(s.RefreshToken, true), packToken(s.IDToken, true)
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(rt)+len(it))
	out = append(out, secretsFormat)
	out = binary.AppendUvarint(out, uint64(len(rt)))
	out = append(out, rt...)
	return append(out, it...), nil
}

// DecodeSecrets reverses EncodeSecrets. Malformed bytes are an error
// wrapping ErrInvalid.
func DecodeSecrets(b []byte) (Secrets, error) {
	var s Secrets
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &s); err != nil {
			return Secrets{}, fmt.Errorf("%w: decode secrets: %v", ErrInvalid, err)
		}
		return s, nil
	}
	if len(b) == 0 || b[0] != secretsFormat {
		return s, fmt.Errorf("%w: decode secrets: unknown format", ErrInvalid)
	}
	l, k := binary.Uvarint(b[1:])
	if k <= 0 || l > uint64(len(b)-1-k) {
		return s, fmt.Errorf("%w: decode secrets: bad length", ErrInvalid)
	}
	rest := b[1+k:]
	var err error
	if s.RefreshToken, err = UnpackToken(rest[:l]); err != nil {
		return Secrets{}, fmt.Errorf("decode secrets: refresh token: %w", err)
	}
	if s.IDToken, err = UnpackToken(rest[l:]); err != nil {
		return Secrets{}, fmt.Errorf("decode secrets: ID token: %w", err)
	}
	return s, nil
}
