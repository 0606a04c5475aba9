package bff_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// withRoutes adds routes to the demo API under other prefixes, each with
// its options, e.g. "/app/;token=client" (stripped to /api/ upstream).
func withRoutes(specs ...string) func(*bff.Config) {
	return func(cfg *bff.Config) {
		api := cfg.Routes[0].Upstream
		var entries []string
		for _, spec := range specs {
			prefix, opts, _ := strings.Cut(spec, ";")
			entry := prefix + "=" + api.String() + "/api;strip"
			if opts != "" {
				entry += ";" + opts
			}
			entries = append(entries, entry)
		}
		routes, err := bff.ParseRoutes(strings.Join(entries, ","))
		if err != nil {
			panic(err)
		}
		cfg.Routes = append(cfg.Routes, routes...)
	}
}

func decodeJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL.Path, err)
	}
	return v
}

func TestClientRouteCarriesClientCredentialsTokenAndNoUserToken(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: withRoutes("/app/;token=client")})

	// Signed out: the application's token, whoever calls.
	anon := st.newBrowser(t)
	resp := anon.api(t, "/app/whoami")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed out: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	who := decodeJSON(t, resp)
	if who["sub"] != testClientID {
		t.Errorf("client route: sub = %v, want the client %q", who["sub"], testClientID)
	}

	// Signed in: still the application's token, not the user's.
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	who = decodeJSON(t, b.api(t, "/app/whoami"))
	if who["sub"] != testClientID {
		t.Errorf("client route with a session: sub = %v, want %q", who["sub"], testClientID)
	}
	user := decodeJSON(t, b.api(t, "/api/whoami"))
	if user["sub"] == testClientID || user["sub"] == nil {
		t.Errorf("user route: sub = %v, want the user's", user["sub"])
	}

	// One token for every caller while it is fresh: no grant per request.
	before := st.op.GrantRequests("client_credentials")
	for range 5 {
		if resp := anon.api(t, "/app/whoami"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if after := st.op.GrantRequests("client_credentials"); after != before {
		t.Errorf("client_credentials grants during 5 calls with a fresh token: %d, want 0", after-before)
	}
	if before != 1 {
		t.Errorf("client_credentials grants for 3 calls of two browsers: %d, want 1", before)
	}
}

func TestOptionalRouteWorksSignedOutAndCarriesTheUsersTokenSignedIn(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: withRoutes("/maybe/;token=optional")})

	anon := st.newBrowser(t)
	resp := anon.api(t, "/maybe/headers")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed out: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if h := decodeJSON(t, resp); h["authorization"] != nil {
		t.Errorf("signed out: upstream got Authorization %v", h["authorization"])
	}

	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	who := decodeJSON(t, b.api(t, "/maybe/whoami"))
	if sub, _ := who["sub"].(string); sub == "" || sub == testClientID {
		t.Errorf("signed in: sub = %v, want the user's", who["sub"])
	}

	// A cookie of an ended session is signed out, not an error.
	sid := decodeJSON(t, b.api(t, "/bff/user"))["sid"].(string)
	cookie := b.sessionCookie(t)
	if resp := b.get(t, "/bff/logout?sid="+url.QueryEscape(sid), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	u, _ := url.Parse(st.bff.URL)
	anon.Jar.SetCookies(u, []*http.Cookie{{Name: "bff-session", Value: cookie, Path: "/"}})
	resp = anon.api(t, "/maybe/headers")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ended session's cookie: status %d", resp.StatusCode)
	}
	if h := decodeJSON(t, resp); h["authorization"] != nil {
		t.Errorf("ended session's cookie: upstream got Authorization %v", h["authorization"])
	}
	// token=user routes keep the 401 contract.
	if resp := anon.api(t, "/api/whoami"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("user route after logout: status %d, want 401", resp.StatusCode)
	}
}

// A client route's API asking for step-up is answered as it is: a sign-in
// would not change the application's token.
func TestClientRouteStepUpChallengePassesThrough(t *testing.T) {
	challenge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication", acr_values="urn:x"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	st := mustStartStack(t, stackOptions{upstream: challenge, configure: func(cfg *bff.Config) {
		cfg.Routes[0].Token = bff.TokenClient
	}})
	resp := st.newBrowser(t).api(t, "/api/x")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("client route: %d %q, want the API's own 401", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
