package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestAdminTokenSources(t *testing.T) {
	f, srv := newFakeAdmin(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("  "+f.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"BFF_ADMIN_URL": srv.URL}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	ok := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", with(), []string{"--token", f.token}},
		{"flag beats env", with("BFF_ADMIN_TOKEN", "wrong"), []string{"--token", f.token}},
		{"token-file flag", with(), []string{"--token-file", good}},
		{"env", with("BFF_ADMIN_TOKEN", f.token, "BFF_ADMIN_TOKEN_FILE", bad), nil},
		{"env file, trimmed", with("BFF_ADMIN_TOKEN_FILE", good), nil},
	}
	for _, tc := range ok {
		if _, _, err := runAdminCLI(t, tc.env, append(tc.args, "sessions")...); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	n := len(f.recorded())
	fails := []struct {
		name, want string
		env        map[string]string
	}{
		{"none", "no admin token", with()},
		{"missing file", "BFF_ADMIN_TOKEN_FILE: open", with("BFF_ADMIN_TOKEN_FILE", filepath.Join(dir, "missing"))},
		{"empty file", "is empty", with("BFF_ADMIN_TOKEN_FILE", empty)},
		{"control characters", "non-printable", with("BFF_ADMIN_TOKEN", "a\x00b")},
	}
	for _, tc := range fails {
		_, _, err := runAdminCLI(t, tc.env, "sessions")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	if got := len(f.recorded()); got != n {
		t.Errorf("token errors sent %d requests", got-n)
	}
}

func TestAdminUnauthorizedDoesNotPrintToken(t *testing.T) {
	_, srv := newFakeAdmin(t)
	const wrong = "wrong-token-XYZZY"
	out, stderr, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_URL": srv.URL}, "--token", wrong, "kill-user", "user-alice")
	if err == nil || !strings.Contains(err.Error(), "admin: 401 unauthorized: a valid admin bearer token is required") {
		t.Fatalf("error %v", err)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d", exitCode(err))
	}
	if strings.Contains(out+stderr+err.Error(), wrong) {
		t.Error("the token was printed")
	}
}

func TestAdminUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, _, err = runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": "tok-SECRET"}, "--url", "http://"+addr, "sessions")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at http://"+addr) {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "tok-SECRET") {
		t.Error("the token was printed")
	}
}

func TestAdminBadURL(t *testing.T) {
	for _, u := range []string{"127.0.0.1:9091", "ftp://host", "http://", "http://h/?x=1", "http://user:pw@h"} {
		_, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": "t"}, "--url", u, "sessions")
		if !errors.Is(err, errUsage) {
			t.Errorf("--url %q: %v, want a usage error", u, err)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("--url %q: password printed: %v", u, err)
		}
	}
}

func TestAdminDoesNotFollowRedirects(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	_, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": "t", "BFF_ADMIN_URL": srv.URL}, "kill", "h1")
	if err == nil || !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), "admin listener") {
		t.Errorf("error %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("%d requests, want 1", hits)
	}
}

func TestAdminNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down\x1b[2J", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	_, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": "t", "BFF_ADMIN_URL": srv.URL}, "sessions")
	if err == nil || err.Error() != "admin: 502 Bad Gateway: upstream down?[2J" {
		t.Errorf("error %v", err)
	}
}

func TestAdminPlainHTTPWarning(t *testing.T) {
	c := &adminClient{}
	for raw, want := range map[string]bool{
		"http://127.0.0.1:9091": false, "http://localhost:9091": false, "http://[::1]:9091": false,
		"https://admin.example.com": false, "http://admin.example.com": true, "http://10.0.0.5:9091": true,
	} {
		c.base, _ = url.Parse(raw)
		if got := c.cleartextRemote(); got != want {
			t.Errorf("%s: cleartextRemote %v, want %v", raw, got, want)
		}
	}
}
