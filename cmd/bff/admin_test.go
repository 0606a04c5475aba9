package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestAdminAgainstDevBinary builds the real binary, runs bff dev, signs users
// in through the BFF and the embedded IdP like a browser, and drives the
// sessions through bff admin as a separate process.
func TestAdminAgainstDevBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bff")
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	public, op, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	data := filepath.Join(tmp, "data")
	logPath := filepath.Join(tmp, "dev.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	dev := exec.Command(bin, "dev", "--listen", public, "--op-listen", op, "--admin-listen", admin, "--data", data)
	dev.Env = cleanEnv(tmp)
	dev.Stdout, dev.Stderr = logFile, logFile
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	t.Cleanup(func() {
		_ = dev.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = dev.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("bff dev output:\n%s", b)
		}
	})
	waitHealthy(t, ctx, "http://"+admin+"/readyz", exited)

	tokenBytes, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))

	publicURL := "http://" + public
	alice1 := browserLogin(t, ctx, publicURL, "alice", "alice-pass")
	alice2 := browserLogin(t, ctx, publicURL, "alice", "alice-pass")
	bob := browserLogin(t, ctx, publicURL, "bob", "bob-pass")
	handle1 := userHandle(t, ctx, alice1, publicURL, "user-alice")
	handle2 := userHandle(t, ctx, alice2, publicURL, "user-alice")
	userHandle(t, ctx, bob, publicURL, "user-bob")

	// The admin CLI reads the token from the file bff dev wrote.
	adminEnv := append(cleanEnv(tmp), "BFF_ADMIN_URL=http://"+admin, "BFF_ADMIN_TOKEN_FILE="+filepath.Join(data, "admin-token"))
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"admin"}, args...)...)
		cmd.Env = adminEnv
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("bff admin %q: %v", args, err)
		}
		if strings.Contains(out.String()+errb.String(), token) {
			t.Errorf("bff admin %q printed the admin token", args)
		}
		return out.String(), errb.String(), code
	}

	out, stderr, code := cli("sessions", "--sub", "user-alice")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "HANDLE ") || !strings.Contains(out, handle1) || !strings.Contains(out, handle2) || strings.Contains(out, "user-bob") {
		t.Fatalf("sessions --sub user-alice: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(lines[1], "127.0.0.1") || !strings.Contains(lines[1], "Go-http-client") {
		t.Errorf("sessions row lacks client IP or user agent: %q", lines[1])
	}

	out, stderr, code = cli("--json", "sessions")
	var all struct {
		Sessions []struct{ Handle, Sub string } `json:"sessions"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &all) != nil || len(all.Sessions) != 3 {
		t.Fatalf("--json sessions: exit %d\n%s%s", code, out, stderr)
	}

	// "--" keeps a handle that starts with "-" from being read as a flag.
	out, stderr, code = cli("kill", "--", handle1)
	if code != 0 || out != "ended session "+handle1+"\n" {
		t.Errorf("kill: exit %d, %q %q", code, out, stderr)
	}
	expectUserStatus(t, ctx, alice1, publicURL, http.StatusUnauthorized)
	expectUserStatus(t, ctx, alice2, publicURL, http.StatusOK)

	out, stderr, code = cli("kill", "--", handle1)
	if want := "bff: admin: 404 not_found: no live session with that handle"; code != 1 || out != "" || !strings.HasPrefix(stderr, want) {
		t.Errorf("second kill: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, stderr, want)
	}

	out, stderr, code = cli("kill-user", "user-alice")
	if code != 0 || out != "ended 1 session of user-alice\n" {
		t.Errorf("kill-user: exit %d, %q %q", code, out, stderr)
	}
	expectUserStatus(t, ctx, alice2, publicURL, http.StatusUnauthorized)
	expectUserStatus(t, ctx, bob, publicURL, http.StatusOK)

	out, stderr, code = cli("--json", "kill-user", "user-alice")
	if code != 0 || strings.Join(strings.Fields(out), "") != `{"ended":0}` {
		t.Errorf("kill-user --json: exit %d, %q %q", code, out, stderr)
	}
	// Subjects with slashes or dots stay one path segment: nothing is ended.
	for _, sub := range []string{"user-bob/../user-bob", ".."} {
		out, stderr, code = cli("kill-user", sub)
		if code != 0 || out != "no live sessions of "+sub+"\n" {
			t.Errorf("kill-user %q: exit %d, %q %q", sub, code, out, stderr)
		}
	}
	expectUserStatus(t, ctx, bob, publicURL, http.StatusOK)

	out, stderr, code = cli("--token", "not-the-token", "sessions")
	if code != 1 || out != "" || !strings.Contains(stderr, "401 unauthorized") {
		t.Errorf("wrong token: exit %d, %q %q", code, out, stderr)
	}
	_, stderr, code = cli("kill", "")
	if code != 2 || !strings.Contains(stderr, "HANDLE must not be empty") {
		t.Errorf("empty handle: exit %d, %q", code, stderr)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cleanEnv is the test's environment without BFF_* settings, which would
// change what bff dev and bff admin do, and with HOME in the temp dir.
func cleanEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BFF_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home)
}

func waitHealthy(t *testing.T, ctx context.Context, healthURL string, exited <-chan error) {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("bff dev exited before it was healthy: %v", err)
		case <-ctx.Done():
			t.Fatalf("bff dev not healthy at %s: %v", healthURL, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// browserLogin signs a user in the way a browser does: /bff/login redirects
// to the IdP's login form, whose submission ends, through redirects, at the
// BFF's callback, which sets the session cookie. It returns the client
// holding that cookie.
func browserLogin(t *testing.T, ctx context.Context, publicURL, username, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}

	resp := doRequest(t, ctx, c, http.MethodGet, publicURL+"/bff/login", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: status %d: %s", resp.StatusCode, body)
	}
	action := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindSubmatch(body)
	id := regexp.MustCompile(`name="authRequestID" value="([^"]*)"`).FindSubmatch(body)
	if action == nil || id == nil {
		t.Fatalf("no login form at %s:\n%s", resp.Request.URL, body)
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(string(action[1])))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"authRequestID": {html.UnescapeString(string(id[1]))}, "username": {username}, "password": {password}}
	resp = doRequest(t, ctx, c, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	// The redirects end at the application, on the BFF's origin.
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), publicURL+"/") {
		t.Fatalf("login of %s ended at %s with status %d: %.300s", username, resp.Request.URL, resp.StatusCode, body)
	}
	return c
}

func doRequest(t *testing.T, ctx context.Context, c *http.Client, method, target string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

// getUser calls /bff/user as the SPA does, with the CSRF header.
func getUser(t *testing.T, ctx context.Context, c *http.Client, publicURL string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, publicURL+"/bff/user", nil)
	req.Header.Set("X-CSRF", "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

// userHandle returns the session handle the BFF reports to the SPA (sid).
func userHandle(t *testing.T, ctx context.Context, c *http.Client, publicURL, wantSub string) string {
	t.Helper()
	status, v := getUser(t, ctx, c, publicURL)
	sid, _ := v["sid"].(string)
	if status != http.StatusOK || v["sub"] != wantSub || sid == "" {
		t.Fatalf("/bff/user: status %d, %v; want %s", status, v, wantSub)
	}
	return sid
}

func expectUserStatus(t *testing.T, ctx context.Context, c *http.Client, publicURL string, want int) {
	t.Helper()
	if status, v := getUser(t, ctx, c, publicURL); status != want {
		t.Errorf("/bff/user: status %d (%v), want %d", status, v, want)
	}
}
