package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// fixture is a session together with the secrets the store must never see
// in clear.
type fixture struct {
	cookie  string
	access  string
	refresh string
	idToken string
	s       *sessionstore.Session
}

func randText() string { return rand.Text() }

// newSealer returns a Sealer with a fresh random key.
func newSealer(t *testing.T) *sessionstore.Sealer {
	t.Helper()
	k := make([]byte, sessionstore.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	s, err := sessionstore.NewSealer([][]byte{k})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newFixture builds a live session of subject, expiring in life, as the BFF
// makes it: the key from a random cookie value, the handle derived from the
// key, the tokens packed and sealed. Times carry a monotonic reading on purpose: a store must not depend
// on it.
func newFixture(t *testing.T, sealer *sessionstore.Sealer, subject string, life time.Duration) *fixture {
	t.Helper()
	f := &fixture{
		cookie:  "cookie-" + randText(),
		access:  "access-token-" + randText(),
		refresh: "refresh-token-" + randText(),
		idToken: "id-token-" + randText(),
	}
	key := sessionstore.KeyFromCookie(f.cookie)
	at, err := sealer.Seal(key, "access", tokenpack.Pack(f.access))
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := tokenpack.EncodeSecrets(sessionstore.Secrets{RefreshToken: f.refresh, IDToken: f.idToken})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sealer.Seal(key, "secrets", secrets)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.s = &sessionstore.Session{
		Key:               key,
		Handle:            sessionstore.HandleFromKey(key),
		Subject:           subject,
		Issuer:            "https://issuer.example/",
		IdPSID:            "isid-" + randText(),
		Claims:            map[string]string{"name": "Ada Lovelace", "email": "ada@example.org", "unicode": "Grüße ✓"},
		AccessToken:       at,
		AccessExpiresAt:   now.Add(5 * time.Minute),
		AccessIssuedAt:    now,
		Secrets:           st,
		Scope:             "openid profile offline_access",
		CreatedAt:         now,
		LastSeen:          now,
		AbsoluteExpiresAt: now.Add(8 * time.Hour),
		ExpiresAt:         now.Add(life),
		UserAgent:         "Mozilla/5.0 (storetest)",
		ClientIP:          "192.0.2.7",
	}
	return f
}

// session is newFixture for tests that do not care about the secrets.
func session(t *testing.T, subject string, life time.Duration) *sessionstore.Session {
	t.Helper()
	return newFixture(t, newSealer(t), subject, life).s
}

func clone(s *sessionstore.Session) *sessionstore.Session {
	c := *s
	if s.Claims != nil {
		c.Claims = make(map[string]string, len(s.Claims))
		for k, v := range s.Claims {
			c.Claims[k] = v
		}
	}
	c.AccessToken = bytes.Clone(s.AccessToken)
	c.Secrets = bytes.Clone(s.Secrets)
	c.RouteTokens = bytes.Clone(s.RouteTokens)
	return &c
}

// keySharingHandle returns a session key other than key that derives the
// same handle (the same first 16 bytes), as two keys do only by a 2^-128
// chance.
func keySharingHandle(t *testing.T, key string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		t.Fatalf("%q is not a session key: %v", key, err)
	}
	raw[31] ^= 1
	other := base64.RawURLEncoding.EncodeToString(raw)
	if sessionstore.HandleFromKey(other) != sessionstore.HandleFromKey(key) {
		t.Fatal("keySharingHandle: the handles differ")
	}
	return other
}
