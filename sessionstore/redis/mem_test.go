package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// TestMemoryPerSession measures what a session with a typical token set
// costs in Redis, all keys included (record and index entries). It writes
// 100k sessions per variant, so it runs only with BFF_REDIS_MEMTEST=1:
//
//	BFF_REDIS_MEMTEST=1 go test -run TestMemoryPerSession -v ./sessionstore/redis/
//
// Two variants, each on its own prefix and measured on its own:
// "realistic" issues tokens shaped like an IdP's (base64url JSON header and
// claims, an RS256 signature), which is what the budget is about; "random"
// fills header and claims with random bytes, which nothing can compress, as
// a worst case. BFF_REDIS_MEMTEST_TOKENS=realistic (or random) runs one
// only, BFF_REDIS_MEMTEST_N sets the number of sessions.
func TestMemoryPerSession(t *testing.T) {
	if os.Getenv("BFF_REDIS_MEMTEST") != "1" {
		t.Skip("set BFF_REDIS_MEMTEST=1 to write 100k sessions and measure their memory")
	}
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BFF_REDIS_MEMTEST_N")); err == nil && v > 0 {
		n = v
	}
	only := os.Getenv("BFF_REDIS_MEMTEST_TOKENS")
	for _, v := range []struct {
		name string
		jwt  func(kind jwtKind, i int) string
	}{
		{"realistic", realisticJWT},
		{"random", func(kind jwtKind, _ int) string { return randomJWT(kind.size) }},
	} {
		if only != "" && only != v.name {
			continue
		}
		t.Run(v.name, func(t *testing.T) { measureSessions(t, n, v.jwt) })
	}
}

func measureSessions(t *testing.T, n int, jwt func(jwtKind, int) string) {
	// A prefix as long as the default "bff:", so key names cost what they
	// cost in production.
	st := newTestStoreWithPrefix(t, rand.Text()[:3]+":")
	ctx := context.Background()
	k := make([]byte, sessionstore.KeySize)
	rand.Read(k)
	sealer, err := sessionstore.NewSealer([][]byte{k})
	if err != nil {
		t.Fatal(err)
	}

	before := usedMemory(t, st)
	var sample *sessionstore.Session
	var idLen, atLen int
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	const workers = 64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				s, il, al := realisticSession(t, sealer, i, jwt)
				if err := st.Create(ctx, s); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				if i == 0 {
					mu.Lock()
					sample, idLen, atLen = s, il, al
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	after := usedMemory(t, st)
	per := float64(after-before) / float64(n)
	t.Logf("%d sessions: used_memory %d -> %d, %.0f bytes per session", n, before, after, per)

	usage := func(key string) int64 {
		v, _ := st.client.MemoryUsage(ctx, key, 0).Result()
		return v
	}
	rk := st.recordKey(sample.Handle)
	size, _ := st.client.StrLen(ctx, rk).Result()
	meta := size - headerSize - int64(len(sample.AccessToken)+len(sample.Secrets))
	t.Logf("one session: ID token %d chars, access token %d chars; record %d bytes (value %d: header %d, sealed tokens %d + %d, the rest %d), subject index %d (shared by 2 sessions), IdP sid index %d",
		idLen, atLen, usage(rk), size, headerSize, len(sample.AccessToken), len(sample.Secrets), meta,
		usage(st.subjectKey(sample.Subject)), usage(st.sidKey(sample.IdPSID)))
	if per > 2048 {
		t.Logf("over the 2 KB budget by %.0f bytes", per-2048)
	}
}

func usedMemory(t *testing.T, st *Store) int64 {
	t.Helper()
	info, err := st.client.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

// jwtKind says which token to make: the ID token or the access token, and
// the size a typical IdP's comes to.
type jwtKind struct {
	id   bool
	size int
}

var (
	idTokenKind     = jwtKind{id: true, size: 900}
	accessTokenKind = jwtKind{size: 800}
)

// randomJWT returns a JWT-shaped string of about size bytes whose header
// and payload are random bytes: the worst case for packing.
func randomJWT(size int) string {
	header := randomB64(75)
	sig := randomB64(256) // RS256
	return header + "." + randomB64((size-len(header)-len(sig)-2)*3/4) + "." + sig
}

// realisticJWT returns a token shaped as an IdP (Keycloak here) issues it
// for user i/2: a JSON header with a key id, JSON claims with fresh random
// uuids, nonce and hashes per session, and a 256-byte RS256 signature. The
// ID token comes to about 900 bytes, the access token to about 800.
func realisticJWT(kind jwtKind, i int) string {
	now := time.Now().Unix()
	user := i / 2
	iss := "https://login.example.com/realms/main"
	// The registered claims every token starts with, in an IdP's order.
	type registered struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Iat int64  `json:"iat"`
	}
	var claims any
	if kind.id {
		claims = struct {
			registered
			AuthTime      int64  `json:"auth_time"`
			Nonce         string `json:"nonce"`
			Sid           string `json:"sid"`
			AtHash        string `json:"at_hash"`
			Name          string `json:"name"`
			Email         string `json:"email"`
			Username      string `json:"preferred_username"`
			EmailVerified bool   `json:"email_verified"`
		}{registered{iss, userUUID(user), "bff", now + 300, now}, now - 2, randomB64(32), uuid(), randomB64(16),
			"Ada Lovelace", fmt.Sprintf("user%d@example.org", user), fmt.Sprintf("user%d", user), true}
	} else {
		claims = struct {
			registered
			Jti      string `json:"jti"`
			Scope    string `json:"scope"`
			ClientID string `json:"client_id"`
			Sid      string `json:"sid"`
		}{registered{iss, userUUID(user), "https://api.example.com", now + 300, now}, uuid(),
			"openid profile email offline_access", "bff", uuid()}
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": hex.EncodeToString(kid[:]), "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(header) + "." +
		base64.RawURLEncoding.EncodeToString(payload) + "." + randomB64(256)
}

// kid is the IdP's signing key id, the same in every token.
var kid = sha1.Sum([]byte("signing key"))

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// userUUID is the subject of user u, as an IdP's uuid.
func userUUID(u int) string { return fmt.Sprintf("5f0c3a4e-8d2b-4c1e-9a7f-%012d", u) }

// realisticSession builds session i as the BFF would, with tokens from
// jwt: an ID token, an access token and a 40-byte refresh token, packed
// and sealed; the claims /bff/user shows; two sessions per subject. It
// also returns the lengths of the ID and access token.
func realisticSession(t *testing.T, sealer *sessionstore.Sealer, i int, jwt func(jwtKind, int) string) (*sessionstore.Session, int, int) {
	// Cookie value and handle as the BFF makes them: base64url of 32 random
	// bytes, and the handle derived from the key.
	key := sessionstore.KeyFromCookie(randomB64(32))
	idToken, accessToken := jwt(idTokenKind, i), jwt(accessTokenKind, i)
	// Packed and sealed as the BFF does it (bff/callback.go, setTokens).
	at, err := sealer.Seal(key, "access_token", tokenpack.Pack(accessToken))
	if err != nil {
		t.Error(err)
	}
	secrets, err := tokenpack.EncodeSecrets(sessionstore.Secrets{RefreshToken: rand.Text() + rand.Text()[:14], IDToken: idToken})
	if err != nil {
		t.Error(err)
	}
	sealed, err := sealer.Seal(key, "secrets", secrets)
	if err != nil {
		t.Error(err)
	}
	now := time.Now()
	return &sessionstore.Session{
		Key:     key,
		Handle:  sessionstore.HandleFromKey(key),
		Subject: userUUID(i / 2),
		Issuer:  "https://login.example.com/realms/main",
		IdPSID:  uuid(),
		Claims: map[string]string{
			"name":               "Ada Lovelace",
			"email":              fmt.Sprintf("user%d@example.org", i/2),
			"preferred_username": fmt.Sprintf("user%d", i/2),
		},
		AccessToken:       at,
		AccessExpiresAt:   now.Add(5 * time.Minute),
		AccessIssuedAt:    now,
		Secrets:           sealed,
		Scope:             "openid profile email offline_access",
		CreatedAt:         now,
		LastSeen:          now,
		AbsoluteExpiresAt: now.Add(8 * time.Hour),
		ExpiresAt:         now.Add(30 * time.Minute),
		UserAgent:         "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		ClientIP:          "203.0.113.47",
	}, len(idToken), len(accessToken)
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
