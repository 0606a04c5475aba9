package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

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
	waitReady(t, ctx, http.DefaultClient, "http://"+admin+"/readyz", exited, nil)

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
