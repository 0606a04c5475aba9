package bff_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/internal/syncbuf"
	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/memory"
	"github.com/bffproxy/bff/static"
)

const (
	testClientID     = "bff-test"
	testClientSecret = "bff-test-secret"
	testAdminToken   = "test-admin-token-0123456789"
)

// stack is a BFF in front of a real embedded OP and the demo API, over
// real HTTP on loopback.
type stack struct {
	op     *devstack.OP
	api    *httptest.Server
	bff    *httptest.Server
	admin  *httptest.Server
	server *bff.Server
	store  sessionstore.Store
	cfg    bff.Config
	logs   *syncbuf.Buffer
}

type stackOptions struct {
	accessTokenLifetime time.Duration
	store               sessionstore.Store
	configure           func(*bff.Config)
	beforeConfigure     func(*stack) // runs once the OP is up, before configure
	tokenExchange       bool         // the OP offers RFC 8693 token exchange
	upstream            http.Handler // replaces the demo API behind /api/
	tamperProvider      func(*bff.Provider)
	tls                 bool                 // serve the BFF over https with an https public URL
	idpClient           *http.Client         // the BFF's client for calls to the IdP; nil: the default
	tracing             *bff.Tracing         // nil: tracing off
	registry            *prometheus.Registry // nil: a private one
}

func mustStartStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	st := &stack{logs: &syncbuf.Buffer{}}
	st.bff = httptest.NewUnstartedServer(nil)
	publicURL := "http://" + st.bff.Listener.Addr().String()
	if opts.tls {
		publicURL = "https://" + st.bff.Listener.Addr().String()
	}

	if opts.accessTokenLifetime == 0 {
		opts.accessTokenLifetime = time.Minute
	}
	op, err := devstack.StartOP(ctx, devstack.OPConfig{
		AccessTokenLifetime: opts.accessTokenLifetime,
		TokenExchange:       opts.tokenExchange,
		Clients: []devstack.Client{{
			ID: testClientID, Secret: testClientSecret,
			RedirectURIs:           []string{publicURL + "/bff/callback"},
			PostLogoutRedirectURIs: []string{publicURL + "/"},
		}},
	})
	if err != nil {
		t.Fatalf("start OP: %v", err)
	}
	t.Cleanup(func() { op.Close() })
	st.op = op
	if opts.beforeConfigure != nil {
		opts.beforeConfigure(st)
	}

	upstream := opts.upstream
	if upstream == nil {
		upstream, err = devstack.NewDemoAPI(ctx, op.Issuer(), testClientID)
		if err != nil {
			t.Fatalf("demo API: %v", err)
		}
	}
	st.api = httptest.NewServer(upstream)
	t.Cleanup(st.api.Close)
	apiURL, _ := url.Parse(st.api.URL)

	key := make([]byte, 32)
	rand.Read(key)
	cfg := bff.DefaultConfig()
	cfg.Issuer = op.Issuer()
	cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	cfg.PublicURL = publicURL
	cfg.Keys = [][]byte{key}
	cfg.Routes = []bff.Route{{Prefix: "/api/", Upstream: apiURL, Token: bff.TokenUser}}
	cfg.AdminToken = testAdminToken
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	st.cfg = cfg

	st.store = opts.store
	if st.store == nil {
		st.store = memory.New(memory.Options{})
		t.Cleanup(func() { st.store.Close() })
	}
	logger := slog.New(slog.NewTextHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	provider, err := bff.Discover(ctx, logger, &cfg, opts.idpClient)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if opts.tamperProvider != nil {
		opts.tamperProvider(provider)
	}
	st.server, err = bff.New(ctx, bff.Deps{Logger: logger, Config: cfg, Store: st.store, Provider: provider, Static: static.FS(), Tracing: opts.tracing, Registry: opts.registry})
	if err != nil {
		t.Fatalf("bff.New: %v", err)
	}
	st.bff.Config.Handler = st.server.Handler()
	if opts.tls {
		st.bff.StartTLS()
	} else {
		st.bff.Start()
	}
	t.Cleanup(st.bff.Close)
	st.admin = httptest.NewServer(st.server.AdminHandler())
	t.Cleanup(st.admin.Close)
	return st
}

// browser is a cookie-keeping HTTP client that does not follow redirects,
// so that every 302 and Set-Cookie can be asserted. It records every
// response it gets from the BFF.
type browser struct {
	*http.Client
	st *stack

	mu        sync.Mutex
	responses []recorded
}

type recorded struct {
	url     string
	status  int
	headers http.Header
	body    []byte
}

func (st *stack) newBrowser(t testing.TB) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{st: st}
	next := http.DefaultTransport
	if st.bff.TLS != nil {
		next = st.bff.Client().Transport // trusts the test certificate
	}
	b.Client = &http.Client{
		Jar:           jar,
		Transport:     &recordingTransport{b: b, next: next},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	return b
}

type recordingTransport struct {
	b    *browser
	next http.RoundTripper
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.String(), rt.b.st.bff.URL) {
		return resp, err
	}
	if resp.Header.Get("Content-Type") == "text/event-stream" || resp.StatusCode == http.StatusSwitchingProtocols {
		rt.b.record(req, resp, nil)
		return resp, nil
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	rt.b.record(req, resp, body)
	return resp, nil
}

func (b *browser) record(req *http.Request, resp *http.Response, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.responses = append(b.responses, recorded{url: req.URL.String(), status: resp.StatusCode, headers: resp.Header.Clone(), body: body})
}

// login runs the whole browser flow: /bff/login → OP login form →
// /bff/callback, and returns the callback's response.
func (b *browser) login(t testing.TB, username, password, returnTo string) *http.Response {
	t.Helper()
	resp := b.get(t, "/bff/login?returnTo="+url.QueryEscape(returnTo), nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d, want 302", resp.StatusCode)
	}
	authorize := resp.Header.Get("Location")
	if !strings.HasPrefix(authorize, b.st.op.Issuer()) {
		t.Fatalf("login redirects to %q, not the OP", authorize)
	}
	opResp, err := b.st.op.Login(context.Background(), b.Client, authorize, username, password)
	if err != nil {
		t.Fatalf("OP login: %v", err)
	}
	callback := opResp.Header.Get("Location")
	if !strings.HasPrefix(callback, b.st.bff.URL+"/bff/callback") {
		t.Fatalf("OP redirects to %q, not the callback", callback)
	}
	return b.getURL(t, callback, nil)
}

func (b *browser) mustLogin(t testing.TB, username string) {
	t.Helper()
	resp := b.login(t, username, username+"-pass", "/")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: status %d, want 302", resp.StatusCode)
	}
}

func (b *browser) get(t testing.TB, path string, header http.Header) *http.Response {
	t.Helper()
	return b.getURL(t, b.st.bff.URL+path, header)
}

func (b *browser) getURL(t testing.TB, u string, header http.Header) *http.Response {
	t.Helper()
	return b.do(t, http.MethodGet, u, header)
}

func (b *browser) do(t testing.TB, method, u string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// api calls a BFF path the way the SPA does, with the CSRF header.
func (b *browser) api(t testing.TB, path string) *http.Response {
	t.Helper()
	return b.get(t, path, http.Header{"X-Csrf": {"1"}})
}

func csrf() http.Header { return http.Header{"X-Csrf": {"1"}} }

// apiLater sends an API call in the background; the channel gets its
// status, or 0 when no response came.
func (b *browser) apiLater(path string) <-chan int {
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, b.st.bff.URL+path, nil)
		req.Header.Set("X-Csrf", "1")
		resp, err := b.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}
