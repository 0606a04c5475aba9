package tokenpack

import (
	"errors"
	"strings"

	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// Coded JSON (tokenCoded): a cheap compression for the JSON segments of
// the access token.
//
// The access token is unpacked on every proxied request, and inflating it
// costs about 10 µs, most of it building the Huffman tables of each
// segment's block. Coding instead costs a single pass: the bytes below 0x20,
// which JSON never holds unescaped, stand for the text common to JWTs, so a
// segment that holds none of them can use them as codes:
//
//	0x01..0x1d  one of jsonWords
//	0x1e n      a run of n lowercase hex digits (n from 1 to 255; key ids,
//	            hashes, and timestamps too), two a byte, high nibble
//	            first, the last byte's low nibble zero when n is odd
//	0x1f        a lowercase hyphenated UUID, as its 16 bytes
//
// Every other byte stands for itself. A segment with a byte below 0x20 is
// not coded. Like jwtDict, jsonWords are part of the format and must never
// change; new words need a new format byte.
const (
	codeHex  = 0x1e
	codeUUID = 0x1f
	// minHexRun is the shortest hex run worth a code: 6 digits take 5
	// bytes coded.
	minHexRun = 6
)

// jsonWords are the words of codes 0x01 to 0x1d, the claim names of access
// and ID tokens with the JSON punctuation around them, and the headers.
var jsonWords = [codeHex - 1]string{
	`{"alg":"RS256","kid":"`,
	`{"alg":"RS256","typ":"JWT","kid":"`,
	`","typ":"JWT"}`,
	`{"typ":"at+jwt","alg":"`,
	`","typ":"at+jwt"}`,
	`{"iss":"https://`,
	`","iss":"https://`,
	`{"exp":`,
	`","exp":`,
	`,"iat":`,
	`,"nbf":`,
	`,"auth_time":`,
	`,"jti":"`,
	`","sub":"`,
	`","aud":"`,
	`","azp":"`,
	`","sid":"`,
	`","scope":"`,
	`openid profile email`,
	` offline_access`,
	`","client_id":"`,
	`","typ":"Bearer","azp":"`,
	`","session_state":"`,
	`","nonce":"`,
	`","at_hash":"`,
	`","email":"`,
	`","preferred_username":"`,
	`"email_verified":`,
	`"}`,
}

// encodeJSON codes b, or reports false if b holds a byte below 0x20. It
// takes at each position the UUID, the hex run or the longest word that
// starts there.
func encodeJSON(b []byte) ([]byte, bool) {
	s := string(b)
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] < 0x20 {
			return nil, false
		}
		if u, ok := ids.ParseUUID(s[i:min(i+36, len(s))]); ok {
			out = append(append(out, codeUUID), u[:]...)
			i += 36
			continue
		}
		if n := hexRun(s[i:]); n >= minHexRun {
			out = append(out, codeHex, byte(n))
			for j := 0; j < n; j += 2 {
				h, _ := ids.LowerHex(s[i+j])
				var l byte
				if j+1 < n {
					l, _ = ids.LowerHex(s[i+j+1])
				}
				out = append(out, h<<4|l)
			}
			i += n
			continue
		}
		best := -1
		for k, w := range jsonWords {
			if strings.HasPrefix(s[i:], w) && (best < 0 || len(w) > len(jsonWords[best])) {
				best = k
			}
		}
		if best >= 0 {
			out = append(out, byte(best+1))
			i += len(jsonWords[best])
			continue
		}
		out = append(out, s[i])
		i++
	}
	return out, true
}

// hexRun is the number of lowercase hex digits s starts with, at most 255.
func hexRun(s string) int {
	n := 0
	for n < len(s) && n < 255 {
		if _, ok := ids.LowerHex(s[n]); !ok {
			break
		}
		n++
	}
	return n
}

var errCoded = errors.New("bad coded JSON")

// decodeJSON reverses encodeJSON, appending to out: the caller's scratch
// space, so that unpacking the access token on every request need not
// allocate for it.
func decodeJSON(out, b []byte) ([]byte, error) {
	const hex = "0123456789abcdef"
	out = out[:0]
	for i := 0; i < len(b); {
		// Literal text in one copy, up to the next code.
		j := i
		for j < len(b) && b[j] >= 0x20 {
			j++
		}
		out = append(out, b[i:j]...)
		if j == len(b) {
			break
		}
		c := b[j]
		i = j + 1
		switch {
		case c == codeUUID:
			if len(b)-i < 16 {
				return nil, errCoded
			}
			out = ids.AppendUUID(out, b[i:i+16])
			i += 16
		case c == codeHex:
			if i >= len(b) || b[i] == 0 {
				return nil, errCoded
			}
			n := int(b[i])
			i++
			k := (n + 1) / 2
			if len(b)-i < k || n%2 == 1 && b[i+k-1]&0x0f != 0 {
				return nil, errCoded
			}
			for _, h := range b[i : i+n/2] {
				out = append(out, hex[h>>4], hex[h&0x0f])
			}
			if n%2 == 1 {
				out = append(out, hex[b[i+k-1]>>4])
			}
			i += k
		case c >= 1:
			out = append(out, jsonWords[c-1]...)
		default:
			return nil, errCoded
		}
		if len(out) > maxUnpacked {
			return nil, errCoded
		}
	}
	return out, nil
}
