package sessionstore

import (
	"net/url"
	"strings"
)

// redacted replaces every credential RedactURL removes.
const redacted = "xxxxx"

// RedactURL returns a store URL fit for a log line or an error message: the
// password of its userinfo (or the whole userinfo, when it has no ":"), the
// value of every query parameter named like a credential (password,
// sentinel_password, any name holding pass, pwd, secret, token, key, auth,
// cred), and any fragment are replaced. It is the one redactor for every
// store URL the BFF prints.
//
// It never parses the URL as a URL: the Sentinel and Cluster forms (several
// hosts) are not URLs net/url accepts, and a password with an unescaped "/",
// "?" or "#" would make a parser cut the userinfo short and print the rest
// of the password as the host or path. The userinfo is everything between
// "://" and the last "@", whatever it contains. When in doubt (an "@" inside
// a query value), more is hidden, never less.
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	} else {
		scheme += "://"
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, _, hasPass := strings.Cut(rest[:at], ":")
		if hasPass && !strings.ContainsAny(user, "/?#") {
			rest = user + ":" + redacted + rest[at:]
		} else {
			rest = redacted + rest[at:]
		}
	}
	fragment := ""
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, fragment = rest[:i], "#"+redacted
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i+1] + redactQuery(rest[i+1:])
	}
	return scheme + rest + fragment
}

func redactQuery(q string) string {
	params := strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range params {
		name, _, hasValue := strings.Cut(p, "=")
		if hasValue && secretName(name) {
			params[i] = name + "=" + redacted
		}
	}
	return strings.Join(params, "&")
}

// secretName reports whether a query parameter's name suggests a credential.
func secretName(name string) bool {
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	name = strings.ToLower(name)
	for _, s := range []string{"pass", "pwd", "secret", "token", "key", "auth", "cred"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}
