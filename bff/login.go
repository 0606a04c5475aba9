package bff

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
)

// handleLogin starts the authorization code flow with PKCE (S256), a state
// that ties the IdP's answer to this browser, and a nonce that ties the ID
// token to this login. All three live in a sealed cookie named after the
// state, so parallel logins in several tabs do not overwrite each other.
//
// acr_values, max_age and prompt are passed on to the IdP (a step-up, a
// fresh sign-in, a silent probe with prompt=none); the callback checks the
// ID token against the first two.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	lr, err := parseLoginRequest(r.URL.Query())
	if err != nil {
		return err
	}
	st := loginState{
		State:    randomString(32),
		Nonce:    randomString(32),
		Verifier: oauth2.GenerateVerifier(),
		ReturnTo: safeReturnTo(r.URL.Query().Get("returnTo")),
		Started:  time.Now().UnixNano(),

		ACRValues: lr.ACRValues,
		Prompt:    lr.Prompt,
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)}
	if len(lr.ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(lr.ACRValues, " ")))
	}
	if lr.MaxAge >= 0 {
		st.MaxAge = &lr.MaxAge
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(lr.MaxAge, 10)))
	}
	if lr.Prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", lr.Prompt))
	}
	if old := s.sessionCookieValue(r); old != "" {
		st.Replaces = sessionstore.KeyFromCookie(old)
	}
	s.dropOldLoginStates(w, r)
	if err := s.setLoginCookie(w, st); err != nil {
		return errLoginStart(err)
	}
	target := withResources(s.idp.OAuth2.AuthCodeURL(st.State, opts...), s.cfg.resources())
	w.Header().Set("Cache-Control", "no-store")
	redirect(w, target)
	return nil
}

// withResources adds a resource parameter (RFC 8707) for each resource of
// the configured routes to an authorization URL, so the grant covers every
// API a route token will be asked for. x/oauth2 sets one value per
// parameter, hence this.
func withResources(authURL string, resources []string) string {
	if len(resources) == 0 {
		return authURL
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return authURL
	}
	q := u.Query()
	for _, r := range resources {
		q.Add("resource", r)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
