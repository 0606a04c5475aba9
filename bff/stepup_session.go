package bff

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
)

// stepUpSession finishes a step-up sign-in in the browser's own session:
// when the session named by key is alive and belongs to the same user at
// the same IdP session (issuer, sub and the IdP's sid), its tokens are
// replaced by the new ones and its claims (acr, auth_time among them) by
// claims; its handle, cookie and open tabs stay. It reports false when
// that is not so (another user, or the session is gone): the callback then
// makes a new session and ends the old one, as for any sign-in.
//
// The write happens under the session's refresh lock, so a refresh in
// flight cannot put back the tokens of the weaker sign-in. The replaced
// refresh token is not revoked: at IdPs that keep one grant per user,
// client and IdP session (oidc-provider does), the step-up's tokens belong
// to the same grant, and revoking the old refresh token would revoke them
// too. It is no longer stored anywhere, and expires at the IdP.
func (s *Server) stepUpSession(ctx context.Context, key, sub, iss, idpSID string, claims map[string]string, tok *oauth2.Token, rawID string) (bool, error) {
	lock, err := s.lockSession(ctx, key)
	if err != nil {
		return false, err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()

	now := time.Now()
	sess, err := s.store.Get(ctx, key)
	if isNotFound(err) || (err == nil && !sess.Live(now)) {
		return false, nil
	}
	if err != nil {
		return false, errStoreUnavailable(err)
	}
	if sess.Subject != sub || sess.Issuer != iss || sess.IdPSID != idpSID {
		return false, nil
	}
	old, err := s.openSecrets(sess)
	if err != nil {
		return false, nil // sealed with a retired key: start afresh
	}
	if err := s.setTokens(sess, tok, rawID, old.RefreshToken, now); err != nil {
		return false, err
	}
	sess.Claims = claims
	sess.RouteTokens = nil // tokens of the weaker sign-in's grant
	if err := s.store.Update(ctx, sess); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, errStoreUnavailable(fmt.Errorf("store stepped-up tokens: %w", err))
	}
	s.audit(ctx, auditStepUp, sess.Subject, sess.Handle, slog.String("acr", claims["acr"]))
	return true, nil
}

// lockSession takes the session's refresh lock, waiting up to refreshWait
// for another holder.
func (s *Server) lockSession(ctx context.Context, key string) (sessionstore.Lock, error) {
	deadline := time.Now().Add(refreshWait)
	for {
		lock, err := s.store.Lock(ctx, "refresh:"+key, refreshLockTTL)
		if err == nil {
			return lock, nil
		}
		if !errors.Is(err, sessionstore.ErrLocked) {
			return nil, errStoreUnavailable(err)
		}
		if time.Now().After(deadline) {
			return nil, errRefreshInProgress(err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, errCanceled(ctx.Err())
		}
	}
}

// silentLoginRefused handles an IdP's refusal of a prompt=none sign-in
// (no session at the IdP, or one that needs the user): the browser goes
// back to the page it came from with login=required, not to an error page,
// so an SPA that probed silently can show its sign-in button.
func (s *Server) silentLoginRefused(w http.ResponseWriter, r *http.Request, code string) (string, bool) {
	if !slices.Contains([]string{"login_required", "interaction_required", "consent_required", "account_selection_required"}, code) {
		return "", false
	}
	state := r.URL.Query().Get("state")
	st, ok := s.readLoginCookie(w, r, state)
	if !ok || subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 || st.Prompt != "none" {
		return "", false
	}
	u, err := url.Parse(st.ReturnTo)
	if err != nil {
		return "/?login=required", true
	}
	q := u.Query()
	q.Set("login", "required")
	u.RawQuery = q.Encode()
	if to := safeReturnTo(u.String()); to == u.String() {
		return to, true
	}
	return "/?login=required", true
}

// unixString is t in Unix seconds, or "" for the zero time.
func unixString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}
