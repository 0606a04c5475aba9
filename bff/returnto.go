package bff

import (
	"encoding/json"
	"net/url"
	"strings"
)

// safeReturnTo accepts a returnTo value only if it is a path on this origin,
// and otherwise returns "/".
//
// The attack is an open redirect: /bff/login?returnTo=//evil.example sends
// the user, just signed in and trusting the page, to a look-alike site.
// Browsers and Go disagree on edge cases, so anything a browser might read as
// another host is refused, not repaired: "//host" and "/\host" (browsers
// treat "\" as "/"), "https:/host" and other schemes (Go calls it a path,
// browsers navigate to the host), control characters and tabs (browsers strip
// them, turning "/\t/host" into "//host"), and percent-encoded forms of any of
// these, checked after decoding once more.
//
// It is also bounded in size as it is stored: the login-state cookie holds it
// JSON-encoded, where "<" becomes six bytes, and a cookie over the browser's
// limit could not be set at all.
func safeReturnTo(raw string) string {
	const fallback = "/"
	if raw == "" || len(raw) > maxReturnTo {
		return fallback
	}
	if enc, err := json.Marshal(raw); err != nil || len(enc) > maxReturnTo+2 {
		return fallback
	}
	for _, candidate := range []string{raw, decodeOnce(raw)} {
		if !isLocalPath(candidate) {
			return fallback
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return fallback
	}
	return raw
}

// maxReturnTo bounds returnTo, JSON-encoded and without its quotes.
const maxReturnTo = 1024

func isLocalPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func decodeOnce(s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		return "" // not a local path, so refused
	}
	return d
}
