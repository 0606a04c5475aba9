package bff

import (
	"cmp"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// The session cookie is the browser's only credential. It is 32 random
// bytes, HttpOnly, SameSite=Strict, Path=/ and without Domain; over https it
// is Secure and carries the __Host- prefix, which makes the browser refuse
// any version of it set by a sibling subdomain or over plain http.
//
// The cookie is managed here rather than by a session library: the session
// lifecycle (rotation at login, compare-and-swap writes, throttled touches,
// deletion that nothing resurrects) lives in sessionstore, and what remains
// for the cookie — a random value and its attributes — is these few lines.
// The store only ever sees the SHA-256 of the value (sessionstore.KeyFromCookie).

// cookieNames are derived once from the public URL.
type cookieNames struct {
	session     string
	loginPrefix string
	secure      bool
}

func newCookieNames(publicURL string) cookieNames {
	u, _ := url.Parse(publicURL)
	if u != nil && u.Scheme == "https" {
		return cookieNames{session: "__Host-bff-session", loginPrefix: "__Host-bff-login-", secure: true}
	}
	return cookieNames{session: "bff-session", loginPrefix: "bff-login-"}
}

// newCookieValue returns a fresh session cookie value.
func newCookieValue() string { return randomString(32) }

// randomString returns n random bytes, base64url encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms; if it ever did,
		// carrying on with a predictable value would be worse than stopping.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxCookieValueLen bounds what is hashed and looked up: a genuine value is
// 43 characters.
const maxCookieValueLen = 128

// sessionCookieValue returns the session cookie's value, or "" when the
// request has none or one that cannot be ours.
func (s *Server) sessionCookieValue(r *http.Request) string {
	c, err := r.Cookie(s.cookies.session)
	if err != nil || c.Value == "" || len(c.Value) > maxCookieValueLen {
		return ""
	}
	return c.Value
}

func (s *Server) setSessionCookie(w http.ResponseWriter, value string, expires time.Time) {
	c := s.sessionCookie(value, int(time.Until(expires).Seconds()))
	c.Expires = expires
	http.SetCookie(w, c)
}

func (s *Server) expireSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.sessionCookie("", -1))
}

// sessionCookie carries the session cookie's attributes, the same for
// setting and expiring it (a browser only replaces a cookie whose name,
// path and domain match).
func (s *Server) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cookies.session,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.cookies.secure,
		SameSite: http.SameSiteStrictMode,
	}
}

// loginState is what the BFF remembers between /login and /callback. It
// lives in the browser, encrypted and authenticated with securecookie, in a
// cookie named after its state so that several tabs can log in at once.
type loginState struct {
	State    string
	Nonce    string
	Verifier string
	ReturnTo string
	// Started orders the pending sign-ins of a browser (Unix nanoseconds).
	Started int64
	// Replaces is the store key of the session the browser had when the
	// sign-in started (the hash of its cookie, never the cookie): the
	// callback ends it, as its Strict cookie does not come along there.
	Replaces string `json:",omitempty"`
	// ACRValues, MaxAge and Prompt are what the sign-in asked the IdP
	// for; the callback checks the ID token against the first two, and
	// handles a refused prompt=none.
	ACRValues []string `json:",omitempty"`
	MaxAge    *int64   `json:",omitempty"`
	Prompt    string   `json:",omitempty"`
}

// request is what the sign-in asked the IdP for.
func (st loginState) request() loginRequest {
	lr := loginRequest{ACRValues: st.ACRValues, MaxAge: -1, Prompt: st.Prompt}
	if st.MaxAge != nil {
		lr.MaxAge = *st.MaxAge
	}
	return lr
}

// stepUp reports whether the sign-in asked for an authentication level
// or age: the callback then keeps the session of the same user rather
// than starting a new one.
func (st loginState) stepUp() bool {
	return len(st.ACRValues) > 0 || st.MaxAge != nil
}

const (
	// loginStateLifetime is how long a login may take at the IdP.
	loginStateLifetime = 10 * time.Minute
	// maxPendingLogins bounds the login-state cookies of one browser. Each
	// is sent with every request until it expires; without a bound, a page
	// that navigates to /bff/login a dozen times fills the browser's
	// request headers until every request fails with 431.
	maxPendingLogins = 5
)

// newLoginCodecs derives the login-cookie keys from the configured keys, so
// rotating BFF_KEYS rotates them too. HKDF keeps these keys independent of
// the token-sealing keys derived from the same secrets.
func newLoginCodecs(keys [][]byte) ([]securecookie.Codec, error) {
	pairs := make([][]byte, 0, 2*len(keys))
	for _, k := range keys {
		hashKey, err := hkdf.Key(sha256.New, k, nil, "bff login-state mac", 32)
		if err != nil {
			return nil, fmt.Errorf("derive login-state key: %w", err)
		}
		blockKey, err := hkdf.Key(sha256.New, k, nil, "bff login-state enc", 32)
		if err != nil {
			return nil, fmt.Errorf("derive login-state key: %w", err)
		}
		pairs = append(pairs, hashKey, blockKey)
	}
	codecs := securecookie.CodecsFromPairs(pairs...)
	for _, c := range codecs {
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(int(loginStateLifetime.Seconds()))
		sc.SetSerializer(securecookie.JSONEncoder{})
	}
	return codecs, nil
}

// loginCookieName binds the cookie to its state. The state is random and
// URL-safe, so part of it makes a valid, unguessable cookie name.
func (s *Server) loginCookieName(state string) string {
	return s.cookies.loginPrefix + state[:16]
}

func (s *Server) setLoginCookie(w http.ResponseWriter, st loginState) error {
	name := s.loginCookieName(st.State)
	value, err := securecookie.EncodeMulti(name, st, s.loginCodecs...)
	if err != nil {
		return fmt.Errorf("seal login state: %w", err)
	}
	http.SetCookie(w, s.loginCookie(name, value, int(loginStateLifetime.Seconds())))
	return nil
}

// dropOldLoginStates makes room for one more sign-in: of the login-state
// cookies the request carries, it expires those that no longer open
// (expired, or sealed with a retired key) and the oldest of the rest, so that
// with the new one the browser holds at most maxPendingLogins.
func (s *Server) dropOldLoginStates(w http.ResponseWriter, r *http.Request) {
	type pending struct {
		name    string
		started int64
	}
	var live []pending
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, s.cookies.loginPrefix) {
			continue
		}
		var st loginState
		if err := securecookie.DecodeMulti(c.Name, c.Value, &st, s.loginCodecs...); err != nil || s.loginCookieName(st.State) != c.Name {
			http.SetCookie(w, s.loginCookie(c.Name, "", -1))
			continue
		}
		live = append(live, pending{c.Name, st.Started})
	}
	if len(live) < maxPendingLogins {
		return
	}
	slices.SortFunc(live, func(a, b pending) int { return cmp.Compare(a.started, b.started) })
	for _, p := range live[:len(live)-maxPendingLogins+1] {
		http.SetCookie(w, s.loginCookie(p.name, "", -1))
	}
}

// readLoginCookie finds and opens the login state for exactly state, and tells the
// browser to drop the cookie whatever the outcome: a login state is used once.
func (s *Server) readLoginCookie(w http.ResponseWriter, r *http.Request, state string) (loginState, bool) {
	var st loginState
	if len(state) < 16 || len(state) > 128 || strings.ContainsAny(state, "=;, ") {
		return st, false
	}
	name := s.loginCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return st, false
	}
	http.SetCookie(w, s.loginCookie(name, "", -1))
	// The name holds only a prefix of the state: the whole state must match.
	if err := securecookie.DecodeMulti(name, c.Value, &st, s.loginCodecs...); err != nil ||
		subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return loginState{}, false
	}
	return st, true
}

// loginCookie carries a login-state cookie's attributes, the same for
// setting and dropping it.
//
// Path is "/", not the callback's path: RFC 6265bis makes browsers drop a
// __Host- cookie with any other path, and the prefix is what stops a sibling
// subdomain from planting a login state of its own (login CSRF). The cookie's
// name binds it to its state, and only the callback reads it.
func (s *Server) loginCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.cookies.secure,
		// Lax, not Strict: the IdP's redirect back is a cross-site top-level
		// navigation, and a Strict cookie would not come with it.
		SameSite: http.SameSiteLaxMode,
	}
}
