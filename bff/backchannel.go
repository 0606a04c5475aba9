package bff

import (
	"errors"
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
	// backchannelFailureLimit invalid logout tokens per
	// backchannelFailureWindow, per address: far above what a confused IdP
	// sends, and a valid token never spends it.
	backchannelFailureLimit  = 30
	backchannelFailureWindow = time.Minute
	// maxLogoutRequest bounds the request body.
	maxLogoutRequest = 64 << 10
)

// handleBackchannel implements OIDC Back-Channel Logout 1.0: it verifies the
// logout token and ends the sessions it names.
//
// Anyone can post here, and most IdPs never retry a refused delivery, so a
// valid token must get through whatever else arrives: there is no shared
// budget to exhaust. Cheap checks come first (size, shape, issuer, audience,
// claims; see precheckLogoutToken), then the signature, then the replay
// cache. Invalid tokens are budgeted per client address; an address over its
// budget gets 429 for them, is not logged for each, and cannot make the BFF
// fetch the IdP's key set for a key id never seen — but a token that
// verifies is never refused, from any address.
//
// A valid token that matches no live session is still 200: the IdP may tell
// us about a session the user has already ended here.
func (s *Server) handleBackchannel(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	addr, now := s.clientIP(r), time.Now()
	inBudget := s.backchannelFailures.Allowed(addr, now)
	refuse := func(err error) error {
		s.backchannelFailures.Spend(addr, now)
		if !inBudget {
			return errRateLimited("too many invalid logout tokens", s.backchannelFailures.RetryAfter(addr, now))
		}
		return errBadLogoutToken(err)
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutRequest)
	raw := r.PostFormValue("logout_token")
	kid, err := precheckLogoutToken(raw, s.idp.Issuer, s.cfg.ClientID, s.idp.keys.algs, now)
	if err != nil {
		return refuse(err)
	}
	if !inBudget && !s.idp.keys.known(kid) {
		return refuse(errors.New("logout token names an unknown key"))
	}
	lt, err := s.idp.IDTokens.VerifyLogout(s.idp.clientContext(ctx), raw)
	if err != nil {
		return refuse(err)
	}
	first, err := s.store.Remember(ctx, "jti:"+sessionstore.KeyFromCookie(lt.Issuer+"\x00"+lt.TokenID), jtiTTL)
	if err != nil {
		return errStoreUnavailable(err)
	}
	if !first {
		return refuse(errors.New("logout token replayed"))
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
