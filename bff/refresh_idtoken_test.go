package bff_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// idTokenSwap replaces the ID token of refresh responses from the IdP with
// one made by forge: a fault no honest IdP produces, so it is injected into
// the BFF's client for the IdP.
type idTokenSwap struct {
	forge   atomic.Pointer[func(claims map[string]any) string]
	swapped atomic.Int64
}

func (s *idTokenSwap) RoundTrip(req *http.Request) (*http.Response, error) {
	var form url.Values
	if req.Body != nil && strings.HasSuffix(req.URL.Path, "/token") {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ = url.ParseQuery(string(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	forge := s.forge.Load()
	if err != nil || forge == nil || form.Get("grant_type") != "refresh_token" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, err
	}
	idt, _ := body["id_token"].(string)
	parts := strings.Split(idt, ".")
	if len(parts) != 3 {
		return nil, io.ErrUnexpectedEOF
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	body["id_token"] = (*forge)(claims)
	s.swapped.Add(1)
	raw, _ = json.Marshal(body)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return resp, nil
}

// An ID token that arrives with a refresh replaces the stored one only if
// it verifies as the login's did (signature, iss, aud, azp) and names the
// same user. Otherwise the response is not trusted: its tokens are not
// used, and the session ends.
func TestRefreshedIDTokenIsVerified(t *testing.T) {
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signForeign := func(claims map[string]any) string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: &jose.JSONWebKey{Key: foreign, KeyID: "foreign"}}, nil)
		payload, _ := json.Marshal(claims)
		jws, _ := signer.Sign(payload)
		s, _ := jws.CompactSerialize()
		return s
	}
	cases := []struct {
		name    string
		change  func(c map[string]any)
		foreign bool
		ok      bool
	}{
		{"unchanged", func(c map[string]any) {}, false, true},
		{"another user", func(c map[string]any) { c["sub"] = "user-bob" }, false, false},
		{"another issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, false, false},
		{"another audience", func(c map[string]any) { c["aud"] = []string{"other-client"} }, false, false},
		{"several audiences, no azp", func(c map[string]any) { c["aud"] = []string{testClientID, "other-client"}; delete(c, "azp") }, false, false},
		{"several audiences, azp of another", func(c map[string]any) { c["aud"] = []string{testClientID, "other-client"}; c["azp"] = "other-client" }, false, false},
		{"several audiences, our azp", func(c map[string]any) { c["aud"] = []string{testClientID, "other-client"}; c["azp"] = testClientID }, false, true},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, false, false},
		{"foreign key", func(c map[string]any) {}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			swap := &idTokenSwap{}
			st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second, idpClient: &http.Client{Transport: swap}})
			forge := func(claims map[string]any) string {
				c.change(claims)
				claims["iat"] = time.Now().Unix()
				if c.foreign {
					return signForeign(claims)
				}
				return st.sign(t, claims)
			}
			swap.forge.Store(&forge)
			b := st.newBrowser(t)
			b.mustLogin(t, "alice")
			before := storedIDToken(t, st)
			time.Sleep(2100 * time.Millisecond)

			resp := b.api(t, "/api/whoami")
			if swap.swapped.Load() != 1 {
				t.Fatalf("refreshes with a swapped ID token: %d, want 1", swap.swapped.Load())
			}
			if c.ok {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("call after the refresh: %d", resp.StatusCode)
				}
				if after := storedIDToken(t, st); after == before {
					t.Error("the refreshed ID token did not replace the stored one")
				}
				return
			}
			assertUnauthenticated(t, resp, "session_expired")
			if list, _ := st.store.ListBySubject(t.Context(), "user-alice"); len(list) != 0 {
				t.Errorf("the session survived a refresh with a bad ID token")
			}
			if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
				t.Errorf("the refresh token of the refused response is still live (%d)", n)
			}
		})
	}
}

func storedIDToken(t *testing.T, st *stack) string {
	t.Helper()
	toks := sessionTokens(t, st, "user-alice")
	return toks[len(toks)-1]
}
