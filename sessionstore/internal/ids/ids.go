// Package ids reads and writes the text forms that identifiers and tokens
// take — base64url without padding and lowercase hyphenated UUIDs — so that
// the record codec, the token packing and the Redis key layout store them
// as the bytes they encode and restore the very same text.
package ids

import "encoding/base64"

// B64 is base64url without padding, the alphabet of session keys, handles
// and JWT segments. Strict, so that only canonical text (unused bits zero)
// decodes, and every decoded value encodes back to the very same text.
var B64 = base64.RawURLEncoding.Strict()

// IsBase64URL reports whether s uses only the base64url alphabet. The
// decoder alone is not enough: it skips '\r' and '\n'.
func IsBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ParseUUID accepts only the form AppendUUID writes (lowercase,
// hyphenated), so that every UUID it accepts is restored exactly.
func ParseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 {
		return u, false
	}
	j := 0
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return u, false
			}
			continue
		}
		h, ok := LowerHex(s[i])
		if !ok {
			return u, false
		}
		u[j/2] |= h << (4 * (1 - j%2))
		j++
	}
	return u, true
}

// AppendUUID appends the 16 bytes u as a lowercase hyphenated UUID,
// without allocating.
func AppendUUID(out, u []byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return out
}

// LowerHex is the value of a lowercase hex digit, and false for any other
// byte.
func LowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
