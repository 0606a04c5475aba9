package bff

import (
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
)

// handleLogin starts the authorization code flow with PKCE (S256), a state
// that ties the IdP's answer to this browser, and a nonce that ties the ID
// token to this login. All three live in a sealed cookie named after the
// state, so parallel logins in several tabs do not overwrite each other.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	st := loginState{
		State:    randomString(32),
		Nonce:    randomString(32),
		Verifier: oauth2.GenerateVerifier(),
		ReturnTo: safeReturnTo(r.URL.Query().Get("returnTo")),
		Started:  time.Now().UnixNano(),
	}
	if old := s.sessionCookieValue(r); old != "" {
		st.Replaces = sessionstore.KeyFromCookie(old)
	}
	s.dropOldLoginStates(w, r)
	if err := s.setLoginCookie(w, st); err != nil {
		return errLoginStart(err)
	}
	target := s.idp.OAuth2.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	w.Header().Set("Cache-Control", "no-store")
	redirect(w, target)
	return nil
}
