package sessionstore

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"time"

	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// Session is the server-side record of one browser's login.
//
// Identity fields never change after Create. Tokens are sealed (see Sealer):
// the access token on its own, because every proxied request needs it and
// nothing else, and the refresh and ID tokens together, because only refresh
// and logout need them.
type Session struct {
	// Key is KeyFromCookie(cookie value): the store's primary key.
	Key string
	// Handle is the public name of the session, shown to the browser as
	// "sid" and to admins. It is not the cookie value but derived from Key:
	// it must be HandleFromKey(Key) (see CheckHandle).
	Handle string

	Subject string
	Issuer  string
	// IdPSID is the IdP's "sid" claim, kept for back-channel logout and never
	// sent to the browser.
	IdPSID string
	// Claims holds the selected ID token claims shown by /bff/user.
	Claims map[string]string

	// AccessToken is the sealed access token.
	AccessToken []byte
	// AccessExpiresAt is when the access token expires.
	AccessExpiresAt time.Time
	// AccessIssuedAt is when the access token was obtained, so the refresh
	// margin can be capped at half the token's lifetime.
	AccessIssuedAt time.Time
	// Secrets is the sealed refresh token and ID token (see Secrets).
	Secrets []byte
	// Scope is the granted scope.
	Scope string
	// RouteTokens is the sealed set of the session's other access tokens:
	// one per resource (RFC 8707) or down-scoped scope set of a route that
	// asks for its own token. Nil unless such routes are configured and
	// used, so a session without them costs nothing more.
	RouteTokens []byte

	CreatedAt time.Time
	LastSeen  time.Time
	// AbsoluteExpiresAt is the hard end of the session, whatever the activity.
	AbsoluteExpiresAt time.Time
	// ExpiresAt is when the session ends if nothing happens: the first of
	// the idle deadline, AbsoluteExpiresAt and the refresh token's expiry.
	// Backends expire the record then.
	ExpiresAt time.Time

	UserAgent string
	ClientIP  string

	// Version increases with every Update; Update is a compare-and-swap on it.
	Version int64
}

// Clone copies s deeply enough that the copy's claims and sealed tokens
// may be changed without changing s. Stores that keep decoded records use
// it to hand out copies.
func (s *Session) Clone() *Session {
	cp := *s
	cp.Claims = maps.Clone(s.Claims)
	cp.AccessToken = bytes.Clone(s.AccessToken)
	cp.Secrets = bytes.Clone(s.Secrets)
	cp.RouteTokens = bytes.Clone(s.RouteTokens)
	return &cp
}

// Secrets is the part of a token set that only refresh and logout need.
// tokenpack.EncodeSecrets turns it into the bytes sealed into
// Session.Secrets.
type Secrets struct {
	RefreshToken string
	IDToken      string
}

// KeyFromCookie derives the store key from a session cookie value. Only the
// key is stored, so reading the store does not hand out usable cookies.
func KeyFromCookie(cookieValue string) string {
	sum := sha256.Sum256([]byte(cookieValue))
	return ids.B64.EncodeToString(sum[:])
}

// HandleFromKey returns the handle the BFF gives the session stored under
// key: the first 16 of the 32 bytes key encodes, base64url (22
// characters); "" if key is not such a key (as KeyFromCookie makes them).
//
// Deriving the handle costs nothing in secrecy. The handle is public anyway
// (the browser sees it as "sid", admins see it), and it is half of a
// SHA-256 of a 256-bit random cookie value: it does not help to find the
// cookie value (that would be a preimage of the hash), nor the other half
// of the key, which the store needs besides the handle. Two sessions get
// the same handle only by a random collision of 128-bit values, about 2^64
// sessions away; should it happen anyway, Create refuses a taken handle
// with ErrConflict and the BFF starts over with a new cookie value.
func HandleFromKey(key string) string {
	if len(key) != 43 {
		return ""
	}
	b, err := ids.B64.DecodeString(key)
	if err != nil || len(b) != 32 {
		return ""
	}
	return ids.B64.EncodeToString(b[:16])
}

// CheckHandle returns an error wrapping ErrInvalid unless s.Handle is
// HandleFromKey(s.Key). Every backend's Create calls it: the BFF derives
// every handle, so all backends hold sessions of one shape, and a backend
// may find a session by its handle through that relation (the Redis
// backend keeps each record under its handle, with nothing that maps a
// handle to a key).
func CheckHandle(s *Session) error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil session", ErrInvalid)
	case s.Handle == "" || s.Handle != HandleFromKey(s.Key):
		return fmt.Errorf("%w: handle is not derived from the key", ErrInvalid)
	}
	return nil
}

// Live reports whether the session is still valid at now.
func (s *Session) Live(now time.Time) bool {
	return now.Before(s.ExpiresAt)
}

func (s *Session) validate() error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: nil session", ErrInvalid)
	case s.Key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case s.Handle == "":
		return fmt.Errorf("%w: empty handle", ErrInvalid)
	case s.Subject == "":
		return fmt.Errorf("%w: empty subject", ErrInvalid)
	case s.ExpiresAt.IsZero():
		return fmt.Errorf("%w: no expiry", ErrInvalid)
	}
	return nil
}
