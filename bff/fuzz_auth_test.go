package bff

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/securecookie"
)

// FuzzSafeReturnTo: whatever safeReturnTo keeps is a path on this origin to
// every reader — Go's URL parser, a browser resolving it against the page
// (tabs and newlines stripped, "\" read as "/"), and after one more round
// of percent-decoding — and it fits the login-state cookie.
func FuzzSafeReturnTo(f *testing.F) {
	for _, seed := range []string{
		"/", "/dashboard?x=1#y", "//evil.example", "/\\evil.example", "https:/evil.example",
		"/%2F%2Fevil.example", "/%5Cevil", "/\t/evil", "/caf%C3%A9", "/" + strings.Repeat("%3C", 1000),
		"/" + strings.Repeat("<", 200), "javascript:alert(1)", "/a/../..//evil", "/%252F%252Fevil", "/?next=//evil",
	} {
		f.Add(seed)
	}
	page, _ := url.Parse("https://app.example/some/page")
	f.Fuzz(func(t *testing.T, raw string) {
		got := safeReturnTo(raw)
		if got == "/" {
			return
		}
		if got != raw {
			t.Fatalf("safeReturnTo(%q) = %q: neither the input nor /", raw, got)
		}
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		for _, candidate := range []string{got, browser, decodeOnce(got)} {
			if !strings.HasPrefix(candidate, "/") || strings.HasPrefix(candidate, "//") {
				t.Fatalf("safeReturnTo(%q) kept a value read as %q", raw, candidate)
			}
			u, err := url.Parse(candidate)
			if err != nil {
				continue
			}
			if dest := page.ResolveReference(u); dest.Host != page.Host || dest.Scheme != page.Scheme || dest.User != nil {
				t.Fatalf("safeReturnTo(%q) kept a value that leads to %s", raw, dest.Redacted())
			}
		}
		if enc, _ := json.Marshal(got); len(enc) > maxReturnTo+2 {
			t.Fatalf("safeReturnTo kept %d bytes as stored", len(enc))
		}
	})
}

// FuzzPrecheckLogoutToken: the checks before the signature never panic,
// and what they pass has the shape, issuer, audience and claims a logout
// token must have (the signature is verified next).
func FuzzPrecheckLogoutToken(f *testing.F) {
	const issuer, client = "https://idp.example", "bff"
	now := time.Unix(1_800_000_000, 0)
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	claims := map[string]any{
		"iss": issuer, "aud": client, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": "j1", "sid": "s1",
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	header := seg(map[string]any{"alg": "RS256", "kid": "k1", "typ": "logout+jwt"})
	f.Add(header + "." + seg(claims) + ".c2ln")
	for _, change := range []func(map[string]any){
		func(c map[string]any) { c["aud"] = []string{"other", client} },
		func(c map[string]any) { c["events"] = map[string]any{backchannelEvent: nil} },
		func(c map[string]any) { c["nonce"] = "n" },
		func(c map[string]any) { delete(c, "iat") },
		func(c map[string]any) { c["iat"] = "soon" },
		func(c map[string]any) { c["iss"] = "https://evil.example" },
		func(c map[string]any) { delete(c, "sid") },
	} {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		f.Add(header + "." + seg(c) + ".c2ln")
	}
	for _, seed := range []string{"", "flood", "a.b.c", "..", header + "..", seg(map[string]any{"alg": "none"}) + "." + seg(claims) + "."} {
		f.Add(seed)
	}
	algs := []jose.SignatureAlgorithm{jose.RS256}
	f.Fuzz(func(t *testing.T, raw string) {
		kid, err := precheckLogoutToken(raw, issuer, client, algs, now)
		if err != nil {
			return
		}
		if len(raw) > maxLogoutTokenLen {
			t.Fatalf("passed a token of %d bytes", len(raw))
		}
		jws, perr := jose.ParseSigned(raw, algs)
		if perr != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID != kid {
			t.Fatalf("passed %q, which does not parse as one signed JWS naming key %q: %v", raw, kid, perr)
		}
		var c logoutClaims
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
			t.Fatalf("passed claims that do not decode: %v", err)
		}
		if c.Issuer != issuer || len(c.Nonce) != 0 || c.JTI == "" || (c.Subject == "" && c.SID == "") || c.IAT == nil {
			t.Fatalf("passed claims %+v", c)
		}
	})
}

// FuzzLoginCookies: any Cookie header a browser (or anyone) sends to
// /bff/login and /bff/callback is read without a panic; only a login state
// this BFF sealed ever opens; making room for a new sign-in only ever
// expires login-state cookies, and leaves fewer than maxPendingLogins.
func FuzzLoginCookies(f *testing.F) {
	codecs, err := newLoginCodecs([][]byte{make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{cfg: Config{Prefix: "/bff"}, cookies: newCookieNames("http://127.0.0.1"), loginCodecs: codecs}
	genuine := loginState{State: strings.Repeat("A", 43), Nonce: "n", Verifier: "v", ReturnTo: "/", Started: 1}
	name := s.loginCookieName(genuine.State)
	value, err := securecookie.EncodeMulti(name, genuine, codecs...)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"", name + "=" + value, "bff-session=abc; " + name + "=" + value, name + "=" + value[:len(value)/2],
		"bff-login-AAAAAAAAAAAAAAAA=x; bff-login-BBBBBBBBBBBBBBBB=y", `bff-login-"=";;;`, "bff-session=" + strings.Repeat("x", 200),
		name + "=" + strings.ToUpper(value),
	} {
		f.Add(seed, genuine.State)
	}
	f.Fuzz(func(t *testing.T, header, state string) {
		r := httptest.NewRequest(http.MethodGet, "/bff/callback", nil)
		r.Header.Set("Cookie", header)

		w := httptest.NewRecorder()
		s.dropOldLoginStates(w, r)
		pending := 0
		for _, c := range r.Cookies() {
			if strings.HasPrefix(c.Name, s.cookies.loginPrefix) {
				pending++
			}
		}
		dropped := 0
		for _, c := range w.Result().Cookies() {
			if !strings.HasPrefix(c.Name, s.cookies.loginPrefix) || c.MaxAge >= 0 {
				t.Fatalf("making room set cookie %s (Max-Age %d)", c.Name, c.MaxAge)
			}
			dropped++
		}
		if pending-dropped >= maxPendingLogins {
			t.Fatalf("%d login states pending after making room", pending-dropped)
		}

		st, ok := s.readLoginCookie(httptest.NewRecorder(), r, state)
		if ok && (!reflect.DeepEqual(st, genuine) || state != genuine.State) {
			t.Fatalf("opened a login state this BFF did not seal: %+v for state %q", st, state)
		}
		if v := s.sessionCookieValue(r); len(v) > maxCookieValueLen {
			t.Fatalf("session cookie value of %d bytes accepted", len(v))
		}
	})
}
