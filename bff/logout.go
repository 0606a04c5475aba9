package bff

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// handleLogout ends the browser's session and sends it to the IdP's
// end-session endpoint.
//
// The sid parameter must name the cookie's session. A cross-site page can
// make the browser request /bff/logout, but it cannot know the sid, and under
// SameSite=Strict its request carries no cookie at all: either way the answer
// is 400 and nothing changes — not even a cookie-clearing Set-Cookie, which
// would sign the browser out while leaving the server-side session behind.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	sid := r.URL.Query().Get("sid")
	if r.Method == http.MethodPost && sid == "" {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		sid = r.PostFormValue("sid")
	}
	value := s.sessionCookieValue(r)
	if value == "" || sid == "" {
		return errInvalidLogout()
	}
	key := sessionstore.KeyFromCookie(value)
	sess, err := s.store.Get(ctx, key)
	if err != nil || !sess.Live(time.Now()) {
		if err != nil && !isNotFound(err) {
			return errStoreUnavailable(err)
		}
		return errInvalidLogout()
	}
	if subtle.ConstantTimeCompare([]byte(sid), []byte(sess.Handle)) != 1 {
		return errInvalidLogout()
	}

	ended, err := s.endSession(ctx, key, sessionstore.CauseUserLogout, "user")
	if err != nil {
		return errStoreUnavailable(err) // nothing ended: the cookie stays
	}
	s.expireSessionCookie(w)
	redirect(w, s.endSessionURL(ended))
	return nil
}

// endSessionURL is the IdP's end-session endpoint with id_token_hint, so the
// IdP ends its own session without asking, and the registered post-logout
// URL. Without an end-session endpoint it is the post-logout URL itself.
func (s *Server) endSessionURL(ended *sessionstore.Session) string {
	post := s.cfg.postLogoutURL()
	if s.idp.EndSessionURL == "" {
		return post
	}
	u, err := url.Parse(s.idp.EndSessionURL)
	if err != nil {
		return post
	}
	q := u.Query()
	q.Set("client_id", s.cfg.ClientID)
	q.Set("post_logout_redirect_uri", post)
	q.Set("state", randomString(16))
	if ended != nil {
		if sec, err := s.openSecrets(ended); err == nil && sec.IDToken != "" {
			q.Set("id_token_hint", sec.IDToken)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
