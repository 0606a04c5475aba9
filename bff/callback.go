package bff

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
)

// handleCallback finishes the login: it checks the state against the login
// cookie (and that the state is used once), the RFC 9207 iss parameter,
// exchanges the code with the PKCE verifier, verifies the ID token and its
// nonce, and creates a new session under a new cookie value. A session the
// browser already had is ended first: one browser, one session, and no
// session id chosen before login survives it (no fixation).
func (s *Server) handleCallback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	w.Header().Set("Cache-Control", "no-store")

	if code := q.Get("error"); code != "" {
		if to, ok := s.silentLoginRefused(w, r, code); ok {
			redirect(w, to)
			return nil
		}
		return errIdPError(idpErrorText(code))
	}
	state := q.Get("state")
	st, ok := s.readLoginCookie(w, r, state)
	if !ok {
		return errUnknownState()
	}
	// The cookie is dropped above, but a copy of it could be replayed with
	// the same callback URL: remember every state used, across instances.
	first, err := s.store.Remember(ctx, "state:"+sessionstore.KeyFromCookie(state), loginStateLifetime)
	if err != nil {
		return errStoreUnavailable(err)
	}
	if !first {
		return errStateReused()
	}
	if iss := q.Get("iss"); iss != "" || s.idp.IssParameterSupported {
		if iss != s.idp.Issuer {
			return errIssuerMismatch(fmt.Errorf("iss parameter %q, want %q", iss, s.idp.Issuer))
		}
	}
	code := q.Get("code")
	if code == "" {
		return errMissingCode()
	}

	exCtx, span := s.startSpan(ctx, "idp.token", attribute.String("oauth.grant_type", "authorization_code"))
	tok, err := s.idp.OAuth2.Exchange(s.idp.clientContext(exCtx), code, oauth2.VerifierOption(st.Verifier))
	endSpan(span, describeTokenError(err))
	if err != nil {
		return errCodeExchange(describeTokenError(err))
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return errNoIDToken()
	}
	idToken, err := s.verifyIDToken(ctx, rawID)
	if err != nil {
		return errInvalidIDToken(err)
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(st.Nonce)) != 1 {
		return errNonceMismatch()
	}
	var claims struct {
		SID               string  `json:"sid"`
		Name              string  `json:"name"`
		Email             string  `json:"email"`
		PreferredUsername string  `json:"preferred_username"`
		ACR               string  `json:"acr"`
		AuthTime          float64 `json:"auth_time"`
	}
	if err := idToken.Claims(&claims); err != nil {
		return errInvalidIDToken(err)
	}
	var authTime time.Time
	if claims.AuthTime > 0 {
		authTime = time.Unix(int64(claims.AuthTime), 0)
	}
	if err := checkStepUp(st.request(), claims.ACR, authTime, time.Now()); err != nil {
		// Nothing of this sign-in is used. Its refresh token is not revoked:
		// it may belong to the grant of the browser's current session (see
		// stepUpSession), which revoking it would end.
		return errStepUpNotMet(err)
	}
	userClaims := nonEmpty(map[string]string{
		"name": claims.Name, "email": claims.Email, "preferred_username": claims.PreferredUsername,
		"acr": claims.ACR, "auth_time": unixString(authTime),
	})

	// A step-up of the same user (and the same IdP session) keeps the
	// browser's session and replaces its tokens.
	if st.stepUp() && st.Replaces != "" {
		done, err := s.stepUpSession(ctx, st.Replaces, idToken.Subject, idToken.Issuer, claims.SID, userClaims, tok, rawID)
		if err != nil {
			return err
		}
		if done {
			redirect(w, st.ReturnTo)
			return nil
		}
	}

	// One browser, one session: end the one this browser had, if any. Its
	// cookie is SameSite=Strict, so it rarely comes with this request (the
	// IdP's redirect here is a cross-site navigation); /bff/login, a
	// same-site navigation, saw it and named it in the login state.
	for _, key := range replacedSessions(st.Replaces, s.sessionCookieValue(r)) {
		if _, err := s.endSession(ctx, key, sessionstore.CauseReplaced, "login"); err != nil {
			return errStoreUnavailable(err)
		}
	}

	now := time.Now()
	sess := &sessionstore.Session{
		Subject:           idToken.Subject,
		Issuer:            idToken.Issuer,
		IdPSID:            claims.SID,
		Claims:            userClaims,
		CreatedAt:         now,
		LastSeen:          now,
		AbsoluteExpiresAt: now.Add(s.cfg.AbsoluteTimeout),
		UserAgent:         truncate(r.UserAgent(), 256),
		ClientIP:          s.clientIP(r),
	}
	// The handle is derived from the key (see sessionstore.HandleFromKey).
	// A taken key or handle (ErrConflict) is all but impossible with a
	// fresh 256-bit cookie value; should it happen, try another one. The
	// tokens are sealed to the key, so they are sealed again each time.
	var cookie string
	for attempt := 1; ; attempt++ {
		cookie = newCookieValue()
		sess.Key = sessionstore.KeyFromCookie(cookie)
		sess.Handle = sessionstore.HandleFromKey(sess.Key)
		if err := s.setTokens(sess, tok, rawID, "", now); err != nil {
			return err
		}
		sess.ExpiresAt = s.sessionExpiry(sess, now)
		err := s.store.Create(ctx, sess)
		if err == nil {
			break
		}
		if !errors.Is(err, sessionstore.ErrConflict) || attempt == maxCreateAttempts {
			return errStoreUnavailable(fmt.Errorf("create session: %w", err))
		}
	}
	if tok.RefreshToken == "" {
		// Without one the session ends when the access token expires. Most
		// IdPs issue it for the offline_access scope; some only with consent.
		s.logger.LogAttrs(ctx, slog.LevelWarn, "the IdP issued no refresh token; the session will end with the access token",
			slog.String("sub", sess.Subject), slog.Time("access_token_expires", sess.AccessExpiresAt))
	}
	s.metrics.logins.Inc()
	s.audit(ctx, auditLogin, sess.Subject, sess.Handle, slog.String("client_ip", sess.ClientIP))
	s.setSessionCookie(w, cookie, sess.AbsoluteExpiresAt)
	redirect(w, st.ReturnTo)
	return nil
}

// replacedSessions are the store keys of the sessions a login replaces: the
// one named in the login state and the one whose cookie came along, if any.
func replacedSessions(fromLoginState, cookie string) []string {
	var keys []string
	if fromLoginState != "" {
		keys = append(keys, fromLoginState)
	}
	if cookie != "" {
		if k := sessionstore.KeyFromCookie(cookie); k != fromLoginState {
			keys = append(keys, k)
		}
	}
	return keys
}

// maxCreateAttempts bounds the cookie values a login tries when the store
// reports the key or handle taken.
const maxCreateAttempts = 3

// idpErrorText shows only error codes defined by OAuth 2.0 and OpenID
// Connect; anything else the IdP (or an attacker crafting the link) put in
// the URL is not echoed.
func idpErrorText(code string) string {
	switch code {
	case "access_denied", "login_required", "consent_required", "interaction_required",
		"invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
		"server_error", "temporarily_unavailable", "account_selection_required":
		return code
	}
	return "error"
}

func nonEmpty(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
