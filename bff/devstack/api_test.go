package devstack

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"
)

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// apiStack starts an OP, logs alice in, and serves the demo API.
func apiStack(t *testing.T, cfg OPConfig) (*OP, *httptest.Server, *oauth2.Token) {
	t.Helper()
	o := startTestOP(t, cfg)
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	r := rp.login("alice", "alice-pass")
	h, err := NewDemoAPI(t.Context(), o.Issuer(), testClientID)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return o, srv, r.token
}

func apiGet(t *testing.T, u, bearer string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestDemoAPIWhoami(t *testing.T) {
	_, srv, tok := apiStack(t, OPConfig{AccessTokenLifetime: 30 * time.Second})

	resp, body := apiGet(t, srv.URL+"/api/whoami", tok.AccessToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), tok.AccessToken) {
		t.Fatal("whoami echoed the token")
	}
	var out struct {
		Sub       string         `json:"sub"`
		Claims    map[string]any `json:"claims"`
		ExpiresAt string         `json:"expiresAt"`
		ExpiresIn int            `json:"expiresIn"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Sub != aliceSub || out.Claims["sid"] == nil || out.ExpiresIn <= 0 || out.ExpiresIn > 30 {
		t.Errorf("whoami = %s", body)
	}
	if _, err := time.Parse(time.RFC3339, out.ExpiresAt); err != nil {
		t.Errorf("expiresAt: %v", err)
	}

	for name, bearer := range map[string]string{"missing": "", "garbage": "not-a-jwt", "tampered": tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA"} {
		resp, body := apiGet(t, srv.URL+"/api/whoami", bearer, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s token: %d %v %s", name, resp.StatusCode, resp.Header, body)
		}
	}
}

func TestDemoAPIRejectsOtherAudienceAndExpired(t *testing.T) {
	o, _, tok := apiStack(t, OPConfig{AccessTokenLifetime: time.Second})
	h, err := NewDemoAPI(t.Context(), o.Issuer(), "another-api")
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewServer(h)
	defer other.Close()
	if resp, body := apiGet(t, other.URL+"/api/whoami", tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong audience: %d %s", resp.StatusCode, body)
	}

	same, _ := NewDemoAPI(t.Context(), o.Issuer(), testClientID)
	srv := httptest.NewServer(same)
	defer srv.Close()
	time.Sleep(2100 * time.Millisecond)
	resp, body := apiGet(t, srv.URL+"/api/whoami", tok.AccessToken, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "expired") {
		t.Errorf("expired token: %d %s", resp.StatusCode, body)
	}
}

func TestDemoAPIHeaders(t *testing.T) {
	_, srv, tok := apiStack(t, OPConfig{})
	resp, body := apiGet(t, srv.URL+"/api/headers", tok.AccessToken, map[string]string{"X-Test": "1", "Cookie": "a=b"})
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), tok.AccessToken) {
		t.Fatalf("headers: %d %s", resp.StatusCode, body)
	}
	var h map[string]string
	_ = json.Unmarshal(body, &h)
	if h["authorization"] != "Bearer <valid for sub "+aliceSub+">" || h["x-test"] != "1" || h["cookie"] != "a=b" || h["host"] == "" {
		t.Errorf("headers = %v", h)
	}

	_, body = apiGet(t, srv.URL+"/api/headers", "forged", nil)
	_ = json.Unmarshal(body, &h)
	if h["authorization"] != "invalid" || strings.Contains(string(body), "forged") {
		t.Errorf("invalid token described as %q (%s)", h["authorization"], body)
	}
	_, body = apiGet(t, srv.URL+"/api/headers", "", nil)
	h = nil
	_ = json.Unmarshal(body, &h)
	if _, ok := h["authorization"]; ok {
		t.Errorf("no Authorization sent, got %q", h["authorization"])
	}
}

func TestDemoAPIEvents(t *testing.T) {
	_, srv, tok := apiStack(t, OPConfig{})
	if resp, _ := apiGet(t, srv.URL+"/api/events", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events without token: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events?interval=50ms", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var ticks []string
	for sc.Scan() && len(ticks) < 3 {
		line := sc.Text()
		if line == "event: tick" {
			if len(ticks) == 0 && time.Since(start) > 500*time.Millisecond {
				t.Errorf("first event after %v, want it at once", time.Since(start))
			}
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			ticks = append(ticks, data)
		}
	}
	if len(ticks) != 3 || !strings.Contains(ticks[0], `"n":1`) || !strings.Contains(ticks[2], `"n":3`) {
		t.Fatalf("ticks = %v (scan err %v)", ticks, sc.Err())
	}

	// The default cadence is one per second.
	req2, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	req2.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp2, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	sc2 := bufio.NewScanner(resp2.Body)
	start = time.Now()
	n := 0
	for sc2.Scan() && n < 2 {
		if strings.HasPrefix(sc2.Text(), "data: ") {
			n++
		}
	}
	if d := time.Since(start); d < 800*time.Millisecond || d > 3*time.Second {
		t.Errorf("two events took %v, want about 1s", d)
	}
}

func TestDemoAPIWebSocket(t *testing.T) {
	_, srv, tok := apiStack(t, OPConfig{})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/ws"
	ctx := t.Context()

	_, resp, err := websocket.Dial(ctx, wsURL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without token: err=%v resp=%v", err, resp)
	}

	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Origin": {"http://bff.example"}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	for _, msg := range []string{"hello", "world"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(got) != msg {
			t.Fatalf("echo: %v %v %q", err, typ, got)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestDemoAPIWithoutOP answers 503, not 401, when it cannot reach the OP to
// check a token: the token may well be valid.
func TestDemoAPIWithoutOP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	api, err := NewDemoAPI(t.Context(), issuer, testClientID)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/whoami", nil)
	req.Header.Set("Authorization", "Bearer x.y.z")
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("API without OP: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/nope", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown route: %d", rec.Code)
	}
}

// TestSharedListenerWithIssuerPath serves the OP under a path of another
// server, built before that server listens (as `bff dev` may do), with the
// demo API discovering lazily.
func TestSharedListenerWithIssuerPath(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/oidc"
	o, err := NewOP(OPConfig{Issuer: issuer, Clients: []Client{testClient()}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewDemoAPI(t.Context(), issuer, testClientID)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/oidc/", o.Handler())
	mux.Handle("/api/", api)
	srv.Config.Handler = mux

	srv.Start()
	defer srv.Close()
	if o.Issuer() != issuer {
		t.Fatalf("Issuer = %q", o.Issuer())
	}
	rp := newRP(t, o, oauth2.AuthStyleInHeader)
	r := rp.login("alice", "alice-pass")
	resp, body := apiGet(t, srv.URL+"/api/whoami", r.token.AccessToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	if _, err := rp.refresh(r.token.RefreshToken); err != nil || o.RefreshGrants() != 1 {
		t.Fatalf("refresh under a path: %v (grants %d)", err, o.RefreshGrants())
	}
}
