package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAdmin implements the admin API's shape (bff/admin.go) over a list of
// sessions, and records every request so tests can check what the CLI sent.
type fakeAdmin struct {
	token    string
	pageSize int // the server's page size, whatever limit the client asks for

	mu       sync.Mutex
	sessions []map[string]any
	requests []adminRequest
}

type adminRequest struct {
	Method      string
	EscapedPath string
	Query       url.Values
	Auth        string
	PathValue   string // {handle} or {sub}, decoded by the router
}

func newFakeAdmin(t *testing.T, sessions ...map[string]any) (*fakeAdmin, *httptest.Server) {
	t.Helper()
	f := &fakeAdmin{token: "secret-token-123", pageSize: 1000, sessions: sessions}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAdmin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/sessions", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var out []map[string]any
		next := ""
		if q.Has("sub") {
			for _, s := range f.sessions {
				if s["sub"] == q.Get("sub") {
					out = append(out, s)
				}
			}
		} else {
			start, _ := strconv.Atoi(q.Get("cursor"))
			limit, _ := strconv.Atoi(q.Get("limit"))
			limit = min(max(limit, 1), f.pageSize)
			end := min(start+limit, len(f.sessions))
			out = f.sessions[start:end]
			if end < len(f.sessions) {
				next = strconv.Itoa(end)
			}
		}
		if out == nil {
			out = []map[string]any{}
		}
		writeTestJSON(w, http.StatusOK, map[string]any{"sessions": out, "next": next})
	})
	mux.HandleFunc("DELETE /admin/sessions/{handle}", func(w http.ResponseWriter, r *http.Request) {
		h := r.PathValue("handle")
		f.recordPathValue(h)
		for i, s := range f.sessions {
			if s["handle"] == h {
				f.sessions = slices.Delete(f.sessions, i, i+1)
				writeTestJSON(w, http.StatusOK, map[string]int{"ended": 1})
				return
			}
		}
		writeTestJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no live session with that handle", "requestId": "req-1"})
	})
	mux.HandleFunc("DELETE /admin/users/{sub}/sessions", func(w http.ResponseWriter, r *http.Request) {
		f.recordPathValue(r.PathValue("sub"))
		n := len(f.sessions)
		f.sessions = slices.DeleteFunc(f.sessions, func(s map[string]any) bool { return s["sub"] == r.PathValue("sub") })
		writeTestJSON(w, http.StatusOK, map[string]int{"ended": n - len(f.sessions)})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no such route"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests = append(f.requests, adminRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Query: r.URL.Query(), Auth: r.Header.Get("Authorization")})
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			writeTestJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "message": "a valid admin bearer token is required", "requestId": "req-401"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// recordPathValue notes the {handle} or {sub} the router decoded, as the
// real server's router would; called with f.mu held.
func (f *fakeAdmin) recordPathValue(v string) {
	f.requests[len(f.requests)-1].PathValue = v
}

func (f *fakeAdmin) recorded() []adminRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func testSession(handle, sub, ua, ip string) map[string]any {
	s := map[string]any{
		"handle": handle, "sub": sub, "idpSid": "sid-" + handle,
		"created":  "2026-01-02T03:04:05Z",
		"lastSeen": "2026-01-02T04:00:00Z",
		"expires":  "2026-01-02T15:04:05Z",
	}
	if ua != "" {
		s["userAgent"] = ua
	}
	if ip != "" {
		s["clientIp"] = ip
	}
	return s
}

// runAdminCLI runs "bff admin args…" through run, as main does, with env as
// the whole environment.
func runAdminCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err = run(t.Context(), append([]string{"admin"}, args...), getenv, &out, &errb)
	return out.String(), errb.String(), err
}

func TestAdminSessionsBySubTable(t *testing.T) {
	f, srv := newFakeAdmin(t,
		testSession("h1", "user-alice", "Mozilla/5.0 (X11)", "192.0.2.1"),
		testSession("h2", "user-bob", "curl/8", "192.0.2.2"),
		testSession("h3", "user-alice", "", ""),
	)
	out, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": f.token}, "--url", srv.URL, "sessions", "--sub", "user-alice")
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"HANDLE  SUB         CREATED               LAST SEEN             EXPIRES               CLIENT IP  USER AGENT\n" +
		"h1      user-alice  2026-01-02T03:04:05Z  2026-01-02T04:00:00Z  2026-01-02T15:04:05Z  192.0.2.1  Mozilla/5.0 (X11)\n" +
		"h3      user-alice  2026-01-02T03:04:05Z  2026-01-02T04:00:00Z  2026-01-02T15:04:05Z  -          -\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	reqs := f.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Method != http.MethodGet || r.EscapedPath != "/admin/sessions" || r.Query.Get("sub") != "user-alice" || r.Auth != "Bearer "+f.token {
		t.Errorf("request %+v", r)
	}
}

func TestAdminSessionsAllPagesJSON(t *testing.T) {
	var sessions []map[string]any
	for i := range 5 {
		sessions = append(sessions, testSession(fmt.Sprintf("h%d", i), "user-"+strconv.Itoa(i%2), "", ""))
	}
	sessions[0]["futureField"] = "kept" // --json prints what the server sent
	f, srv := newFakeAdmin(t, sessions...)
	f.pageSize = 2

	out, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL + "/"}, "--json", "sessions")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sessions []map[string]any `json:"sessions"`
		Next     *string          `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not one JSON document: %v\n%s", err, out)
	}
	if len(doc.Sessions) != 5 || doc.Next == nil || *doc.Next != "" {
		t.Fatalf("got %d sessions, next %v; want 5 and \"\"", len(doc.Sessions), doc.Next)
	}
	for i, s := range doc.Sessions {
		if s["handle"] != fmt.Sprintf("h%d", i) {
			t.Errorf("session %d is %v", i, s["handle"])
		}
	}
	if doc.Sessions[0]["futureField"] != "kept" {
		t.Errorf("unknown field dropped: %v", doc.Sessions[0])
	}

	reqs := f.recorded()
	var cursors []string
	for _, r := range reqs {
		if r.Method != http.MethodGet || r.EscapedPath != "/admin/sessions" || r.Query.Has("sub") || r.Query.Get("limit") == "" {
			t.Errorf("request %+v", r)
		}
		cursors = append(cursors, r.Query.Get("cursor"))
	}
	if want := []string{"", "2", "4"}; !slices.Equal(cursors, want) {
		t.Errorf("cursors %q, want %q", cursors, want)
	}
}

func TestAdminSessionsEmpty(t *testing.T) {
	f, srv := newFakeAdmin(t)
	env := map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL}
	out, _, err := runAdminCLI(t, env, "sessions", "--sub", "nobody")
	if err != nil || out != "no live sessions of nobody\n" {
		t.Errorf("sessions --sub: %q, %v", out, err)
	}
	out, _, err = runAdminCLI(t, env, "sessions", "--json")
	if err != nil || out != "{\n  \"sessions\": [],\n  \"next\": \"\"\n}\n" {
		t.Errorf("sessions --json: %q, %v", out, err)
	}
}

func TestAdminSessionsSanitizesTerminalOutput(t *testing.T) {
	f, srv := newFakeAdmin(t, testSession("h1", "user\x1b]0;pwned\x07", "evil\x1b[31m\tagent\nnext", "192.0.2.1"))
	out, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": f.token}, "--url", srv.URL, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b\x07\t") || strings.Count(out, "\n") != 2 {
		t.Errorf("control characters reached the table:\n%q", out)
	}
	if !strings.Contains(out, "evil?[31m?agent?next") {
		t.Errorf("user agent not shown sanitized:\n%s", out)
	}
}

func TestAdminKill(t *testing.T) {
	f, srv := newFakeAdmin(t, testSession("h1", "user-alice", "", ""), testSession("h2", "user-alice", "", ""))
	env := map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL}

	out, _, err := runAdminCLI(t, env, "kill", "h1")
	if err != nil || out != "ended session h1\n" {
		t.Errorf("kill: %q, %v", out, err)
	}
	out, _, err = runAdminCLI(t, env, "--json", "kill", "h2")
	if err != nil || out != "{\n  \"ended\": 1\n}\n" {
		t.Errorf("--json kill: %q, %v", out, err)
	}
	// A handle may start with "-": after "--" it is not a flag.
	_, _, err = runAdminCLI(t, env, "kill", "--", "-h3")
	if err == nil || !strings.Contains(err.Error(), "404 not_found") {
		t.Errorf("kill -- -h3: %v", err)
	}

	reqs := f.recorded()
	var paths []string
	for _, r := range reqs {
		if r.Method != http.MethodDelete || r.Auth != "Bearer "+f.token {
			t.Errorf("request %+v", r)
		}
		paths = append(paths, r.EscapedPath)
	}
	if want := []string{"/admin/sessions/h1", "/admin/sessions/h2", "/admin/sessions/-h3"}; !slices.Equal(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
}

func TestAdminKillUnknownHandle(t *testing.T) {
	f, srv := newFakeAdmin(t)
	out, stderr, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL}, "kill", "nope")
	if err == nil {
		t.Fatal("kill of an unknown handle succeeded")
	}
	if want := "admin: 404 not_found: no live session with that handle (request req-1)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", exitCode(err))
	}
	if out != "" || stderr != "" {
		t.Errorf("printed %q / %q; main prints the error", out, stderr)
	}
}

func TestAdminKillUserEscapesPath(t *testing.T) {
	for _, sub := range []string{"user-alice", "a/b", "..", ".", "a b", "x?y#z", "%2F", "ü"} {
		t.Run(sub, func(t *testing.T) {
			f, srv := newFakeAdmin(t, testSession("h1", sub, "", ""), testSession("h2", sub, "", ""), testSession("h3", "other", "", ""))
			out, _, err := runAdminCLI(t, map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL}, "kill-user", sub)
			if err != nil {
				t.Fatal(err)
			}
			if want := "ended 2 sessions of " + sub + "\n"; out != want {
				t.Errorf("output %q, want %q", out, want)
			}
			reqs := f.recorded()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodDelete || r.PathValue != sub || !strings.HasSuffix(r.EscapedPath, "/sessions") || r.Auth != "Bearer "+f.token {
				t.Errorf("request %+v, want DELETE of user %q", r, sub)
			}
			if strings.Count(r.EscapedPath, "/") != 4 {
				t.Errorf("path %q has extra segments", r.EscapedPath)
			}
		})
	}
}

func TestAdminKillUserCounts(t *testing.T) {
	f, srv := newFakeAdmin(t, testSession("h1", "user-bob", "", ""))
	env := map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL}
	if out, _, err := runAdminCLI(t, env, "kill-user", "user-bob"); err != nil || out != "ended 1 session of user-bob\n" {
		t.Errorf("first: %q, %v", out, err)
	}
	if out, _, err := runAdminCLI(t, env, "kill-user", "user-bob"); err != nil || out != "no live sessions of user-bob\n" {
		t.Errorf("second: %q, %v", out, err)
	}
	if out, _, err := runAdminCLI(t, env, "kill-user", "--json", "user-bob"); err != nil || out != "{\n  \"ended\": 0\n}\n" {
		t.Errorf("--json: %q, %v", out, err)
	}
}

func TestAdminUsageErrorsSendNothing(t *testing.T) {
	f, srv := newFakeAdmin(t, testSession("h1", "user-alice", "", ""))
	env := map[string]string{"BFF_ADMIN_TOKEN": f.token, "BFF_ADMIN_URL": srv.URL}
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"kill"},
		{"kill", ""},
		{"kill", " "},
		{"kill", "a", "b"},
		{"kill", "h1", "--json"},
		{"kill-user"},
		{"kill-user", ""},
		{"sessions", "user-alice"},
		{"sessions", "--sub", ""},
		{"--nope", "sessions"},
		{"sessions", "--sub"},
	} {
		out, stderr, err := runAdminCLI(t, env, args...)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("%q: error %v (exit %d), want a usage error", args, err, exitCode(err))
		}
		if out != "" || stderr != "" {
			t.Errorf("%q printed %q / %q", args, out, stderr)
		}
	}
	if reqs := f.recorded(); len(reqs) != 0 {
		t.Errorf("usage errors sent requests: %+v", reqs)
	}
}

func TestAdminHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"sessions", "--help"}, {"help"}} {
		out, _, err := runAdminCLI(t, nil, args...)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: %v", args, err)
		}
		if err != nil && exitCode(err) != 0 {
			t.Errorf("%q: exit code %d", args, exitCode(err))
		}
		for _, want := range []string{"Usage: bff admin", "sessions [--sub SUB]", "kill HANDLE", "kill-user SUB", "BFF_ADMIN_TOKEN_FILE"} {
			if !strings.Contains(out, want) {
				t.Errorf("%q: usage lacks %q:\n%s", args, want, out)
			}
		}
	}
}
