package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// TestMemoryPerSession measures what a session with a typical token set
// costs in Redis, all keys included (record, handle pointer, index
// entries). It writes 100k sessions, so it runs only with BFF_REDIS_MEMTEST=1:
//
//	BFF_REDIS_MEMTEST=1 go test -run TestMemoryPerSession -v ./sessionstore/redis/
func TestMemoryPerSession(t *testing.T) {
	if os.Getenv("BFF_REDIS_MEMTEST") != "1" {
		t.Skip("set BFF_REDIS_MEMTEST=1 to write 100k sessions and measure their memory")
	}
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BFF_REDIS_MEMTEST_N")); err == nil && v > 0 {
		n = v
	}
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
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	const workers = 32
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				s := realisticSession(t, sealer, i)
				if err := st.Create(ctx, s); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				if i == 0 {
					mu.Lock()
					sample = s
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
	size, _ := st.client.StrLen(ctx, st.recordKey(sample.Key)).Result()
	meta := size - headerSize - int64(len(sample.AccessToken)+len(sample.Secrets))
	t.Logf("one session: record %d bytes (value %d: header %d, sealed tokens %d + %d, the rest %d), handle pointer %d, subject index %d (shared by 2 sessions), IdP sid index %d",
		usage(st.recordKey(sample.Key)), size, headerSize, len(sample.AccessToken), len(sample.Secrets), meta,
		usage(st.handleKey(sample.Handle)), usage(st.subjectKey(sample.Subject)), usage(st.sidKey(sample.IdPSID)))
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

// fakeJWT returns a JWT-shaped string of about size bytes: base64url header,
// payload and signature, as an IdP would issue.
func fakeJWT(size int) string {
	seg := func(n int) string {
		b := make([]byte, n*3/4)
		rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	header := seg(100)
	sig := seg(342) // RS256
	return header + "." + seg(size-len(header)-len(sig)-2) + "." + sig
}

// realisticSession builds session i as the BFF would: a ~900-byte ID token,
// a ~800-byte JWT access token and a 40-byte refresh token, packed and
// sealed; the claims /bff/user shows; two sessions per subject.
func realisticSession(t *testing.T, sealer *sessionstore.Sealer, i int) *sessionstore.Session {
	// Cookie value and handle as the BFF makes them: base64url of 32 and 16
	// random bytes.
	key := sessionstore.KeyFromCookie(randomB64(32))
	// Packed and sealed as the BFF does it (bff/callback.go, setTokens).
	at, err := sealer.Seal(key, "access_token", sessionstore.PackToken(fakeJWT(800)))
	if err != nil {
		t.Error(err)
	}
	secrets, err := sessionstore.EncodeSecrets(sessionstore.Secrets{RefreshToken: rand.Text() + rand.Text()[:14], IDToken: fakeJWT(900)})
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
		Handle:  randomB64(16),
		Subject: fmt.Sprintf("5f0c3a4e-8d2b-4c1e-9a7f-%012d", i/2),
		Issuer:  "https://login.example.com/realms/main",
		IdPSID:  fmt.Sprintf("b1e2d3c4-a5b6-4789-8abc-%012d", i),
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
	}
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
