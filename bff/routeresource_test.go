package bff_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/sessionstore"
)

const (
	ordersResource  = "https://orders.example.test/"
	billingResource = "https://billing.example.test/"
)

// audienceAPI is an upstream that verifies the bearer token's signature at
// the OP (any audience) and answers with its aud, sub and scope.
func audienceAPI(t *testing.T, issuer string) *httptest.Server {
	t.Helper()
	var (
		once     sync.Once
		verifier *oidc.IDTokenVerifier
		err      error
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			var p *oidc.Provider
			if p, err = oidc.NewProvider(t.Context(), issuer); err == nil {
				verifier = p.Verifier(&oidc.Config{SkipClientIDCheck: true})
			}
		})
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if err != nil || !ok {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		tok, verr := verifier.Verify(r.Context(), raw)
		if verr != nil {
			http.Error(w, "bad token: "+verr.Error(), http.StatusUnauthorized)
			return
		}
		var claims struct {
			Scope string `json:"scope"`
		}
		_ = tok.Claims(&claims)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"aud": tok.Audience, "sub": tok.Subject, "scope": claims.Scope})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func withAudienceRoutes(api **httptest.Server, specs ...string) func(*bff.Config) {
	return func(cfg *bff.Config) {
		var entries []string
		for _, spec := range specs {
			prefix, opts, _ := strings.Cut(spec, ";")
			entries = append(entries, prefix+"="+(*api).URL+";"+opts)
		}
		routes, err := bff.ParseRoutes(strings.Join(entries, ","))
		if err != nil {
			panic(err)
		}
		cfg.Routes = append(cfg.Routes, routes...)
	}
}

type audienceAnswer struct {
	Aud   []string `json:"aud"`
	Sub   string   `json:"sub"`
	Scope string   `json:"scope"`
}

func (b *browser) audience(t *testing.T, path string) audienceAnswer {
	t.Helper()
	resp := b.api(t, path)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
	}
	var a audienceAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestResourceRoutesGetTokensForTheirOwnResourceOnly(t *testing.T) {
	var api *httptest.Server
	st := mustStartStack(t, stackOptions{configure: func(cfg *bff.Config) {
		withAudienceRoutes(&api, "/orders/;resource="+ordersResource, "/billing/;resource="+billingResource)(cfg)
	}, beforeConfigure: func(st *stack) { api = audienceAPI(t, st.op.Issuer()) }})

	// Every resource is asked for at authorization.
	b := st.newBrowser(t)
	resp := b.get(t, "/bff/login", nil)
	if got := mustQuery(t, resp.Header.Get("Location"))["resource"]; !slices.Equal(got, []string{ordersResource, billingResource}) {
		t.Errorf("authorization request resources = %v", got)
	}

	b.mustLogin(t, "alice")
	sess := st.sessionOf(t, b)
	if sess.RouteTokens != nil {
		t.Error("a new session already holds route tokens")
	}

	// A storm on each resource route: one grant per resource, no more.
	before := st.op.RefreshGrants()
	var wg sync.WaitGroup
	answers := make(chan audienceAnswer, 40)
	for i := range 40 {
		path := "/orders/x"
		if i%2 == 1 {
			path = "/billing/x"
		}
		wg.Go(func() { answers <- b.audience(t, path) })
	}
	wg.Wait()
	close(answers)
	if n := st.op.RefreshGrants() - before; n != 2 {
		t.Errorf("refresh grants for a storm on two resources: %d, want 2", n)
	}
	for a := range answers {
		if len(a.Aud) != 1 || (a.Aud[0] != ordersResource && a.Aud[0] != billingResource) || a.Sub != "user-alice" {
			t.Errorf("upstream got a token for %v (sub %s), want exactly one resource", a.Aud, a.Sub)
		}
	}
	orders, billing := b.audience(t, "/orders/x"), b.audience(t, "/billing/x")
	if !slices.Equal(orders.Aud, []string{ordersResource}) || !slices.Equal(billing.Aud, []string{billingResource}) {
		t.Errorf("orders route's token is for %v, billing route's for %v", orders.Aud, billing.Aud)
	}
	if n := st.op.RefreshGrants() - before; n != 2 {
		t.Errorf("refresh grants after more calls with fresh tokens: %d, want 2", n)
	}
	// The session's own token still serves the default route.
	if who := decodeJSON(t, b.api(t, "/api/whoami")); who["sub"] != "user-alice" {
		t.Errorf("default route: %v", who)
	}
	// Sealed in the session: nothing readable in the record.
	sess = st.sessionOf(t, b)
	if len(sess.RouteTokens) == 0 || strings.Contains(string(sess.RouteTokens), "orders.example") {
		t.Errorf("route tokens in the record: %d bytes, or not sealed", len(sess.RouteTokens))
	}

	// Revoked with the session: the grant behind every route token ends.
	sid := decodeJSON(t, b.api(t, "/bff/user"))["sid"].(string)
	b.get(t, "/bff/logout?sid="+url.QueryEscape(sid), nil)
	if n := st.op.ActiveRefreshTokens("user-alice"); n != 0 {
		t.Errorf("live refresh tokens after logout: %d, want 0", n)
	}
}

func TestScopeRouteGetsADownScopedTokenRefreshedBeforeExpiry(t *testing.T) {
	var api *httptest.Server
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second, configure: func(cfg *bff.Config) {
		withAudienceRoutes(&api, "/profile/;scope=profile")(cfg)
	}, beforeConfigure: func(st *stack) { api = audienceAPI(t, st.op.Issuer()) }})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	before := st.op.RefreshGrants()
	a := b.audience(t, "/profile/x")
	if a.Scope != "profile" {
		t.Errorf("scope route's token has scope %q, want %q", a.Scope, "profile")
	}
	b.audience(t, "/profile/x")
	if n := st.op.RefreshGrants() - before; n != 1 {
		t.Fatalf("grants for two calls: %d, want 1", n)
	}
	// Past half its lifetime the route token is replaced; the rotated
	// refresh token keeps the session alive for its own refresh too.
	time.Sleep(1200 * time.Millisecond)
	if a := b.audience(t, "/profile/x"); a.Scope != "profile" {
		t.Errorf("refreshed route token has scope %q", a.Scope)
	}
	if n := st.op.RefreshGrants() - before; n != 2 {
		t.Errorf("grants after the route token's margin: %d, want 2", n)
	}
	if who := decodeJSON(t, b.api(t, "/api/whoami")); who["sub"] != "user-alice" {
		t.Errorf("default route after route-token refreshes: %v", who)
	}
}

// sessionOf reads the browser's session record from the store.
func (st *stack) sessionOf(t *testing.T, b *browser) *sessionstore.Session {
	t.Helper()
	sess, err := st.store.Get(t.Context(), sessionstore.KeyFromCookie(b.sessionCookie(t)))
	if err != nil {
		t.Fatalf("session of the browser: %v", err)
	}
	return sess
}
