package sessionstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Session is the server-side record of one browser's login.
//
// Identity fields never change after Create. Tokens are sealed (see Sealer):
// the access token on its own, because every proxied request needs it and
// nothing else, and the refresh and ID tokens together, because only refresh
// and logout need them.
type Session struct {
	// Key is KeyFromCookie(cookie value): the store's primary key.
	Key string `json:"-"`
	// Handle is the public name of the session, shown to the browser as
	// "sid" and to admins. It is random and is not the cookie value.
	Handle string `json:"h"`

	Subject string `json:"sub"`
	Issuer  string `json:"iss"`
	// IdPSID is the IdP's "sid" claim, kept for back-channel logout and never
	// sent to the browser.
	IdPSID string `json:"isid,omitempty"`
	// Claims holds the selected ID token claims shown by /bff/user.
	Claims map[string]string `json:"c,omitempty"`

	// AccessToken is the sealed access token.
	AccessToken []byte `json:"at"`
	// AccessExpiresAt is when the access token expires.
	AccessExpiresAt time.Time `json:"ate"`
	// AccessIssuedAt is when the access token was obtained, so the refresh
	// margin can be capped at half the token's lifetime.
	AccessIssuedAt time.Time `json:"ati"`
	// Secrets is the sealed refresh token and ID token (see Secrets).
	Secrets []byte `json:"st"`
	// Scope is the granted scope.
	Scope string `json:"sc,omitempty"`

	CreatedAt time.Time `json:"ca"`
	LastSeen  time.Time `json:"ls"`
	// AbsoluteExpiresAt is the hard end of the session, whatever the activity.
	AbsoluteExpiresAt time.Time `json:"ae"`
	// ExpiresAt is when the session ends if nothing happens: the first of
	// the idle deadline, AbsoluteExpiresAt and the refresh token's expiry.
	// Backends expire the record then.
	ExpiresAt time.Time `json:"exp"`

	UserAgent string `json:"ua,omitempty"`
	ClientIP  string `json:"ip,omitempty"`

	// Version increases with every Update; Update is a compare-and-swap on it.
	Version int64 `json:"-"`
}

// Secrets is the part of a token set that only refresh and logout need.
type Secrets struct {
	RefreshToken string `json:"rt,omitempty"`
	IDToken      string `json:"it,omitempty"`
}

// KeyFromCookie derives the store key from a session cookie value. Only the
// key is stored, so reading the store does not hand out usable cookies.
func KeyFromCookie(cookieValue string) string {
	sum := sha256.Sum256([]byte(cookieValue))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Live reports whether the session is still valid at now.
func (s *Session) Live(now time.Time) bool {
	return now.Before(s.ExpiresAt)
}

// Encode turns a session into the bytes a backend stores. Key and Version
// are kept by the backend beside the record, not inside it.
func Encode(s *Session) ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrInvalid, err)
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
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrInvalid, err)
	}
	s.Key, s.Version = key, version
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
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
