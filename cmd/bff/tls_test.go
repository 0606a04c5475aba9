package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/internal/syncbuf"
)

// TestServeOverTLS runs `serve` with its own TLS listeners (public and
// admin) and an https public URL: a sign-in over HTTP/2 stores the
// __Host- session cookie, /bff/user and a proxied API call work, every
// response carries HSTS, TLS below 1.2 is refused, the health check speaks
// TLS to the admin listener, and a renewed certificate is served without a
// restart (a broken renewal keeps the current one).
func TestServeOverTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	pubCert := writeTestCert(t, dir, "public", 1)
	admCert := writeTestCert(t, dir, "admin", 100)
	public, admin := freeAddr(t), freeAddr(t)
	publicURL := "https://" + public
	op, err := devstack.StartOP(ctx, devstack.OPConfig{Clients: []devstack.Client{{
		ID: "tls-test", Secret: "tls-test-secret",
		RedirectURIs:           []string{publicURL + "/bff/callback"},
		PostLogoutRedirectURIs: []string{publicURL + "/"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	api, err := devstack.NewDemoAPI(ctx, op.Issuer(), "tls-test")
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()

	env := map[string]string{
		"BFF_ISSUER":         op.Issuer(),
		"BFF_CLIENT_ID":      "tls-test",
		"BFF_CLIENT_SECRET":  "tls-test-secret",
		"BFF_PUBLIC_URL":     publicURL,
		"BFF_LISTEN":         public,
		"BFF_TLS_CERT":       pubCert.certPath,
		"BFF_TLS_KEY":        pubCert.keyPath,
		"BFF_ADMIN_LISTEN":   admin,
		"BFF_ADMIN_TLS_CERT": admCert.certPath,
		"BFF_ADMIN_TLS_KEY":  admCert.keyPath,
		"BFF_ADMIN_TOKEN":    "tls-test-admin-token",
		"BFF_KEYS":           newKey(),
		"BFF_STORE":          "memory:",
		"BFF_ROUTES":         "/api/=" + apiSrv.URL,
	}
	getenv := func(k string) string { return env[k] }
	var logs syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenv, &logs, &logs) }()

	adminClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsClientConfig(admCert)}}
	waitReady(t, ctx, adminClient, "https://"+admin+"/readyz", done, &logs)

	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: tlsClientConfig(pubCert), ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp := mustGet(t, c, publicURL+"/bff/login?returnTo=/x", nil)
	if resp.ProtoMajor != 2 {
		t.Errorf("public listener spoke %s, want HTTP/2", resp.Proto)
	}
	assertHSTS(t, resp, "/bff/login")
	opResp, err := op.Login(ctx, c, resp.Header.Get("Location"), "alice", "alice-pass")
	if err != nil {
		t.Fatal(err)
	}
	resp = mustGet(t, c, opResp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/x" {
		t.Fatalf("callback over https: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-bff-session" {
			session = ck
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "" || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over https: %+v", session)
	}

	resp = mustGet(t, c, publicURL+"/bff/user", http.Header{"X-Csrf": {"1"}})
	var user struct{ Sub, LogoutURL string }
	_ = json.NewDecoder(resp.Body).Decode(&user)
	if resp.StatusCode != http.StatusOK || user.Sub != "user-alice" {
		t.Fatalf("/bff/user over https: %d %+v", resp.StatusCode, user)
	}
	assertHSTS(t, resp, "/bff/user")
	resp = mustGet(t, c, publicURL+"/api/whoami", http.Header{"X-Csrf": {"1"}})
	var who map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&who)
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(jsonString(who)), "user-alice") {
		t.Fatalf("API call over https: %d %v", resp.StatusCode, who)
	}
	assertHSTS(t, resp, "/api/whoami")
	resp = mustGet(t, c, publicURL+"/no-such-thing", http.Header{"Accept": {"application/json"}})
	assertHSTS(t, resp, "a 404")

	// TLS 1.1 and below: no handshake.
	old := &tls.Config{RootCAs: tlsClientConfig(pubCert).RootCAs, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", public, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
	}

	// The health check reads the same configuration and speaks TLS to the
	// admin listener, accepting only the certificate in its own file.
	var out syncbuf.Buffer
	if err := run(ctx, []string{"healthcheck"}, getenv, &out, &out); err != nil {
		t.Errorf("healthcheck over TLS: %v\n%s", err, out.String())
	}
	other := writeTestCert(t, dir, "other", 7)
	err = run(ctx, []string{"healthcheck"}, func(k string) string {
		if k == "BFF_ADMIN_TLS_CERT" {
			return other.certPath
		}
		return env[k]
	}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "BFF_ADMIN_TLS_CERT") {
		t.Errorf("healthcheck against a certificate other than its own: %v, want a refusal naming BFF_ADMIN_TLS_CERT", err)
	}

	// Renewal: new files, same paths; new connections get the new
	// certificate without a restart.
	if got := peerSerial(t, public); got != 1 {
		t.Fatalf("serial before renewal = %d, want 1", got)
	}
	writeTestCert(t, dir, "public", 2)
	waitSerial(t, public, 2)
	// A renewal caught half-written keeps the certificate in use.
	writeFileAtomic(t, pubCert.certPath, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"))
	time.Sleep(certCheckInterval + 200*time.Millisecond)
	if got := peerSerial(t, public); got != 2 {
		t.Errorf("after a broken renewal the server presents serial %d, want 2 (kept)", got)
	}
	if !strings.Contains(logs.String(), "cannot be loaded") {
		t.Errorf("a broken renewal was not logged:\n%s", logs.String())
	}

	resp = mustGet(t, c, publicURL+user.LogoutURL, nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), op.Issuer()) {
		t.Errorf("logout over https: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(logs.String(), session.Value) {
		t.Error("the session cookie value reached the log")
	}
}

// TestServeTLSSettingsAreChecked: every TLS mistake stops start-up with a
// message naming its setting.
func TestServeTLSSettingsAreChecked(t *testing.T) {
	dir := t.TempDir()
	cert := writeTestCert(t, dir, "c", 1)
	base := map[string]string{
		"BFF_ISSUER": "http://127.0.0.1:1", "BFF_CLIENT_ID": "x", "BFF_CLIENT_SECRET": "y",
		"BFF_PUBLIC_URL": "https://127.0.0.1:1", "BFF_KEYS": newKey(), "BFF_ADMIN_LISTEN": "off",
		"BFF_STORE": "memory:", "BFF_LISTEN": freeAddr(t),
	}
	cases := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"cert without key", map[string]string{"BFF_TLS_CERT": cert.certPath}, "BFF_TLS_CERT"},
		{"key without cert", map[string]string{"BFF_TLS_KEY": cert.keyPath}, "BFF_TLS_CERT"},
		{"admin cert without key", map[string]string{"BFF_ADMIN_TLS_CERT": cert.certPath}, "BFF_ADMIN_TLS_CERT"},
		{"http public URL with TLS", map[string]string{"BFF_TLS_CERT": cert.certPath, "BFF_TLS_KEY": cert.keyPath, "BFF_PUBLIC_URL": "http://127.0.0.1:1"}, "BFF_PUBLIC_URL"},
		{"missing certificate file", map[string]string{"BFF_TLS_CERT": filepath.Join(dir, "nope.crt"), "BFF_TLS_KEY": cert.keyPath}, "BFF_TLS_CERT"},
		{"key of another certificate", map[string]string{"BFF_TLS_CERT": cert.certPath, "BFF_TLS_KEY": writeTestCert(t, dir, "d", 2).keyPath}, "BFF_TLS_CERT"},
		{"HSTS typo", map[string]string{"BFF_HSTS": "max-age=1y"}, "BFF_HSTS"},
		{"HSTS unknown directive", map[string]string{"BFF_HSTS": "max-age=60; includeSubdomain"}, "BFF_HSTS"},
		{"shutdown timeout", map[string]string{"BFF_SHUTDOWN_TIMEOUT": "0s"}, "BFF_SHUTDOWN_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out syncbuf.Buffer
			err := run(ctx, []string{"serve"}, func(k string) string {
				if v, ok := tc.set[k]; ok {
					return v
				}
				return base[k]
			}, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func assertHSTS(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("%s: Strict-Transport-Security = %q, want max-age=31536000", what, got)
	}
}

func waitSerial(t *testing.T, addr string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := peerSerial(t, addr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server still presents serial %d, want %d", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
