package bff

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

const (
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenSkew tolerates clock drift between IdP and BFF for iat.
	logoutTokenSkew = 2 * time.Minute
	// jtiTTL is how long a logout token id is remembered. Tokens older than
	// this are refused by their iat, so a replay cannot outlive the cache.
	jtiTTL = 10 * time.Minute
	// backchannelRate and backchannelBurst bound logout-token checks per
	// instance: far above what an IdP sends, far below what hurts.
	backchannelRate  = 50
	backchannelBurst = 200
)

// handleBackchannel implements OIDC Back-Channel Logout 1.0. go-oidc checks
// signature, issuer, audience, expiry, jti presence, sub/sid presence, the
// presence of the event and the absence of nonce; the rest is checked here:
// the event must be a JSON object (go-oidc accepts null), iat must be present
// and recent, and the jti must not have been seen before on any instance.
//
// A valid token that matches no live session is still 200: the IdP may tell
// us about a session the user has already ended here.
func (s *Server) handleBackchannel(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	if !s.backchannelLimit.Allow() {
		return errRateLimited("too many logout requests", time.Second)
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		return errBadLogoutToken(errors.New("missing logout_token"))
	}
	lt, err := s.idp.IDTokens.VerifyLogout(s.idp.clientContext(ctx), raw)
	if err != nil {
		return errBadLogoutToken(err)
	}
	var extra struct {
		Events map[string]json.RawMessage `json:"events"`
		IAT    *json.Number               `json:"iat"`
	}
	if err := lt.Claims(&extra); err != nil {
		return errBadLogoutToken(err)
	}
	if ev := extra.Events[backchannelEvent]; len(ev) == 0 || ev[0] != '{' {
		return errBadLogoutToken(errors.New("events claim lacks the back-channel logout event object"))
	}
	now := s.now()
	if extra.IAT == nil || lt.IssuedAt.IsZero() {
		return errBadLogoutToken(errors.New("missing iat"))
	}
	if lt.IssuedAt.After(now.Add(logoutTokenSkew)) || lt.IssuedAt.Before(now.Add(-jtiTTL+logoutTokenSkew)) {
		return errBadLogoutToken(fmt.Errorf("iat %s outside the accepted window", lt.IssuedAt.UTC().Format(time.RFC3339)))
	}
	first, err := s.store.Remember(ctx, "jti:"+sessionstore.KeyFromCookie(lt.Issuer+"\x00"+lt.TokenID), jtiTTL)
	if err != nil {
		return errStoreUnavailable(err)
	}
	if !first {
		return errBadLogoutToken(errors.New("logout token replayed"))
	}

	var sessions []*sessionstore.Session
	if lt.SessionID != "" {
		sessions, err = s.store.ListByIdPSID(ctx, lt.SessionID)
	} else {
		sessions, err = s.store.ListBySubject(ctx, lt.Subject)
	}
	if err != nil {
		return errStoreUnavailable(err)
	}
	// With both claims, both must match: a sid is only unique per issuer
	// and user at some IdPs.
	matching := sessions[:0]
	for _, sess := range sessions {
		if sess.Issuer == lt.Issuer && (lt.Subject == "" || sess.Subject == lt.Subject) {
			matching = append(matching, sess)
		}
	}
	n, err := s.endSessions(ctx, matching, sessionstore.CauseBackchannel, "idp")
	if err != nil {
		// Not 200: the IdP must learn that the logout did not complete
		// (its jti is spent, so a retry needs a new token).
		return errStoreUnavailable(err)
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
	return nil
}
