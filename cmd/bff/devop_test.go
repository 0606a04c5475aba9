//go:build !nodev

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/bffproxy/bff/internal/syncbuf"
)

// TestDevOPOnly runs `bff dev --op-only`, the embedded OP and demo API for a
// BFF started with `bff serve` (the browser tests do so): discovery at the
// printed issuer, the demo API refusing a call without a token, and the
// control listener sending a logout token signed with the OP's key to the
// BFF's back-channel endpoint.
func TestDevOPOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	received := make(chan url.Values, 1)
	fakeBFF := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bff/backchannel-logout" || r.ParseForm() != nil {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		received <- r.PostForm
	}))
	defer fakeBFF.Close()

	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--op-only", "--op-listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0",
			"--public-url", fakeBFF.URL, "--client-id", "op-only-test", "--client-secret", "op-only-secret"},
			func(string) string { return "" }, out, io.Discard)
	}()
	ready := regexp.MustCompile(`ready issuer=(\S+) api=(\S+) control=(\S+)`)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; {
		if m = ready.FindStringSubmatch(out.String()); m == nil {
			if time.Now().After(deadline) {
				t.Fatalf("no ready line: %q", out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	issuer, api, control := m[1], m[2], m[3]

	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery at %s: %v", issuer, err)
	}
	if resp, err := http.Get(api + "/api/whoami"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("demo API without a token: %v %v", resp, err)
	}
	resp, err := http.Get(control + "/tokens")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /tokens: %v %v", resp, err)
	}
	var tokens []map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&tokens); err != nil || len(tokens) != 0 {
		t.Fatalf("tokens before any login: %v %v", tokens, err)
	}

	if resp, _ := http.Post(control+"/backchannel-logout", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("back-channel logout without sub: %d, want 400", resp.StatusCode)
	}
	resp, err = http.Post(control+"/backchannel-logout?sub=user-alice", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "bff answered 200") {
		t.Fatalf("back-channel logout: %d %s", resp.StatusCode, body)
	}
	form := <-received
	var jwks struct {
		URI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&jwks); err != nil {
		t.Fatal(err)
	}
	payload, err := oidc.NewRemoteKeySet(ctx, jwks.URI).VerifySignature(ctx, form.Get("logout_token"))
	if err != nil {
		t.Fatalf("logout token not signed by the OP: %v", err)
	}
	var claims struct {
		Iss    string         `json:"iss"`
		Sub    string         `json:"sub"`
		Aud    any            `json:"aud"`
		Events map[string]any `json:"events"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != issuer || claims.Sub != "user-alice" || claims.Aud != "op-only-test" ||
		claims.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
		t.Errorf("logout token claims: %+v", claims)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev --op-only: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("dev --op-only did not stop")
	}
}

func TestDevOPOnlyRefusesBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--op-only"}, // no --public-url
		{"dev", "--op-only", "--public-url", "http://127.0.0.1:1", "--op-listen", "0.0.0.0:0"},
		{"dev", "--op-only", "--public-url", "http://127.0.0.1:1", "--control-listen", "0.0.0.0:0"},
	} {
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
