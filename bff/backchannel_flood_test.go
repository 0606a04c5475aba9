package bff_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// countingTransport counts the requests to the IdP whose path ends in suffix.
type countingTransport struct {
	suffix string
	n      atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, c.suffix) {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Garbage from one address must not spend a budget that the IdP's real
// logout token needs: the real token ends the session after a flood from
// the very same address.
func TestBackchannelLogoutSurvivesAFloodOfBogusPosts(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	sid := st.idpSID(t, b)

	for i := range 300 {
		resp, _ := st.postLogoutToken(t, "flood")
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("bogus post %d: %d", i+1, resp.StatusCode)
		}
	}
	claims := st.op.LogoutTokenClaims(testClientID, "user-alice", sid)
	resp, body := st.postLogoutToken(t, st.sign(t, claims))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("real logout token after the flood: %d %s", resp.StatusCode, body)
	}
	assertUnauthenticated(t, b.api(t, "/bff/user"), "session_ended")
}

// A token signed by an unknown key makes the BFF fetch the IdP's key set
// (the key may be new). An address that keeps sending such tokens must not
// make the BFF fetch it again and again.
func TestBackchannelUnknownKeysDoNotFetchTheKeySetForEveryPost(t *testing.T) {
	jwks := &countingTransport{suffix: "/keys"}
	st := mustStartStack(t, stackOptions{idpClient: &http.Client{Transport: jwks}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice") // the IdP's key is known from here on
	before := jwks.n.Load()

	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
			Key: &jose.JSONWebKey{Key: foreign, KeyID: "forged-" + randomKid(t)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(st.op.LogoutTokenClaims(testClientID, "user-alice", ""))
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jws.CompactSerialize()
		resp, _ := st.postLogoutToken(t, tok)
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("forged token %d: %d", i+1, resp.StatusCode)
		}
	}
	if fetched := jwks.n.Load() - before; fetched > 35 {
		t.Errorf("100 tokens with unknown keys from one address fetched the key set %d times", fetched)
	}
	if resp := b.api(t, "/bff/user"); resp.StatusCode != http.StatusOK {
		t.Errorf("forged tokens ended the session: %d", resp.StatusCode)
	}
	// The IdP's real token is still accepted from that address.
	claims := st.op.LogoutTokenClaims(testClientID, "user-alice", "")
	if resp, body := st.postLogoutToken(t, st.sign(t, claims)); resp.StatusCode != http.StatusOK {
		t.Fatalf("real logout token after forged ones: %d %s", resp.StatusCode, body)
	}
	assertUnauthenticated(t, b.api(t, "/bff/user"), "session_ended")
}

func randomKid(t *testing.T) string {
	t.Helper()
	return rand.Text()[:12]
}
