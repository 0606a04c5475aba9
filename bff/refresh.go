package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
)

const (
	// refreshLockTTL bounds how long a dead instance can block refreshes of
	// one session: its lock simply expires.
	refreshLockTTL = 15 * time.Second
	// refreshWait bounds how long a request waits for another instance's
	// refresh of the same session.
	refreshWait = 10 * time.Second
	// refreshRecheck is how often a request waiting for another instance's
	// refresh looks at the store without having been notified: the notice
	// may be lost, or the holder may have died.
	refreshRecheck = 2 * time.Second
	// refreshTimeout bounds one call to the token endpoint.
	refreshTimeout = 10 * time.Second
)

// refreshMargin is how early an access token is refreshed: the configured
// skew, but at most half the token's lifetime, so a token that lives only a
// few seconds is not refreshed on every request.
func (s *Server) refreshMargin(sess *sessionstore.Session) time.Duration {
	lifetime := sess.AccessExpiresAt.Sub(sess.AccessIssuedAt)
	return min(s.cfg.RefreshSkew, lifetime/2)
}

func (s *Server) needsRefresh(sess *sessionstore.Session, now time.Time) bool {
	return !now.Add(s.refreshMargin(sess)).Before(sess.AccessExpiresAt)
}

// accessToken returns a usable access token for the session, refreshing it
// first when it is about to expire. It never writes to the store unless it
// refreshed.
//
// Errors: a refused refresh (invalid_grant) ends the session and is 401
// session_expired; an unreachable IdP with an expired token is 503 with
// Retry-After, and the session is kept.
func (s *Server) accessToken(ctx context.Context, sess *sessionstore.Session) (string, error) {
	if s.needsRefresh(sess, time.Now()) {
		fresh, err := s.refresh(ctx, sess)
		if err != nil {
			return "", err
		}
		sess = fresh
	} else {
		s.maybeRefreshAhead(sess)
	}
	return s.openAccessToken(sess)
}

// refresh makes sure exactly one token-endpoint call happens per session at
// a time, cluster-wide: requests of this instance share one call
// (singleflight); instances share the store's lock, and whoever gets it
// re-reads the record first, so a refresh done meanwhile by someone else is
// used rather than repeated. With rotating refresh tokens a second call
// would present a spent token and get invalid_grant — at some IdPs, the
// revocation of the whole grant.
func (s *Server) refresh(ctx context.Context, sess *sessionstore.Session) (*sessionstore.Session, error) {
	ch := s.refreshes.DoChan(sess.Key, func() (any, error) {
		// Shared by every waiting request: not bound to any one of them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshWait+refreshTimeout)
		defer cancel()
		return s.refreshLocked(ctx, sess, s.needsRefresh)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return s.refreshFailed(ctx, sess, res.Err)
		}
		return res.Val.(*sessionstore.Session), nil
	case <-ctx.Done():
		return nil, errCanceled(ctx.Err())
	}
}

// Outcomes of refreshLocked that are not plain errors.
var (
	errRefreshDenied = errors.New("refresh token refused by the IdP")
	errSessionGone   = errors.New("session ended during refresh")
	errRefreshBusy   = errors.New("timed out waiting for another instance's refresh")
)

// refreshLocked refreshes the session's tokens under the cluster-wide lock
// if, once re-read under it, the session is still due (a synchronous
// refresh passes needsRefresh, a background one dueAhead).
func (s *Server) refreshLocked(ctx context.Context, stale *sessionstore.Session, due func(*sessionstore.Session, time.Time) bool) (*sessionstore.Session, error) {
	lock, err := s.waitForLock(ctx, stale)
	if err != nil {
		return nil, err
	}
	if lock == nil {
		// Someone else refreshed while we waited.
		sess, err := s.store.Get(ctx, stale.Key)
		if isNotFound(err) {
			return nil, errSessionGone
		}
		return sess, err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()

	sess, err := s.store.Get(ctx, stale.Key)
	if isNotFound(err) {
		return nil, errSessionGone
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if !due(sess, now) {
		return sess, nil
	}
	sec, err := s.openSecrets(sess)
	if err != nil || sec.RefreshToken == "" {
		return nil, fmt.Errorf("%w: no usable refresh token", errRefreshDenied)
	}

	s.metrics.refreshes.Inc()
	tok, err := s.refreshGrant(ctx, sec.RefreshToken)
	if err != nil {
		return nil, err
	}
	rawID, _ := tok.Extra("id_token").(string)
	if err := s.checkRefreshedIDToken(ctx, sess, rawID); err != nil {
		// Nothing of this response is used; its refresh token must not
		// stay live at the IdP, and the session ends (401 session_expired).
		s.revokeUnused(ctx, sess, tok.RefreshToken, sec.RefreshToken)
		return nil, fmt.Errorf("%w: ID token of the refresh response: %v", errRefreshDenied, err)
	}
	if err := s.setTokens(sess, tok, rawID, sec.RefreshToken, now); err != nil {
		return nil, err
	}
	// The write is fenced by the version read under the lock: it lands only
	// if no one wrote since. A conflict means this instance's lease ran out
	// (the IdP or the store was slow) and the instance that took the lock
	// over has stored a newer token set. Overwriting it would throw away
	// that set's refresh token — at an IdP that rotates them, the only live
	// one — so the stale writer keeps its hands off: it revokes what it got
	// and uses what is stored.
	err = s.store.Update(ctx, sess)
	if errors.Is(err, sessionstore.ErrConflict) {
		s.revokeUnused(ctx, sess, tok.RefreshToken, sec.RefreshToken)
		cur, gerr := s.store.Get(ctx, sess.Key)
		if isNotFound(gerr) {
			return nil, errSessionGone
		}
		if gerr != nil {
			return nil, fmt.Errorf("re-read after a fenced-off refresh: %w", gerr)
		}
		s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh lease expired and a newer token set was stored meanwhile; the tokens of this refresh are revoked",
			slog.String("handle", sess.Handle))
		return cur, nil
	}
	if isNotFound(err) {
		// Ended while we refreshed: the new refresh token must not outlive it.
		s.revokeUnused(ctx, sess, tok.RefreshToken, sec.RefreshToken)
		return nil, errSessionGone
	}
	if err != nil {
		return nil, fmt.Errorf("store refreshed tokens: %w", err)
	}
	s.publishRefreshed(ctx, sess)
	return sess, nil
}

// revokeUnused revokes a refresh token that a refresh obtained but will not
// store. An IdP that does not rotate sends none or the same one again: that
// one is still the session's, and stays.
func (s *Server) revokeUnused(ctx context.Context, sess *sessionstore.Session, got, stored string) {
	if got == "" || got == stored {
		return
	}
	if err := s.revoke(context.WithoutCancel(ctx), got); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "could not revoke the refresh token of an unused refresh response",
			slog.String("handle", sess.Handle), slog.String("error", err.Error()))
	}
}

// refreshGrant is the one call to the token endpoint.
func (s *Server) refreshGrant(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return s.timedRefresh(ctx, "refresh", func(callCtx context.Context) (*oauth2.Token, error) {
		return s.idp.OAuth2.TokenSource(callCtx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	})
}

// timedRefresh makes one refresh-token grant call (call), bounded by
// refreshTimeout, timed by result and traced (grant type only, never a
// token). invalid_grant and unauthorized_client are errRefreshDenied; what
// names the call in other errors.
func (s *Server) timedRefresh(ctx context.Context, what string, call func(context.Context) (*oauth2.Token, error)) (*oauth2.Token, error) {
	start := time.Now()
	ctx, span := s.startSpan(ctx, "idp.token", attribute.String("oauth.grant_type", "refresh_token"))
	callCtx, cancel := context.WithTimeout(s.idp.clientContext(ctx), refreshTimeout)
	defer cancel()
	tok, err := call(callCtx)
	result := refreshOK
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "unauthorized_client") {
			result, err = refreshRefused, fmt.Errorf("%w: %v", errRefreshDenied, describeTokenError(err))
		} else {
			s.metrics.refreshFailures.Inc()
			result, err = refreshError, fmt.Errorf("%s: %w", what, describeTokenError(err))
		}
	}
	s.metrics.refreshDuration[result].Observe(time.Since(start).Seconds())
	span.SetAttributes(attribute.String("bff.refresh.result", refreshResults[result]))
	endSpan(span, err)
	return tok, err
}

// waitForLock takes the session's refresh lock. If another instance holds
// it, it waits until that instance has refreshed (returning nil, nil) or
// its lock expired (then takes it). The holder's refresh notice wakes it;
// it does not poll the store.
func (s *Server) waitForLock(ctx context.Context, stale *sessionstore.Session) (sessionstore.Lock, error) {
	start := time.Now()
	deadline := start.Add(refreshWait)
	waited := false
	// A wait (the lock was held by someone else) is timed by its outcome.
	done := func(result int) {
		if waited {
			s.metrics.lockWait[result].Observe(time.Since(start).Seconds())
		}
	}
	var wake <-chan struct{}
	defer func() { s.refreshNotices.stop(stale.Key, wake) }()
	for {
		// Listen for the holder's notice before looking, so a notice sent
		// between the look and the wait is not missed.
		wake = s.refreshNotices.wait(stale.Key)
		lock, err := s.store.Lock(ctx, "refresh:"+stale.Key, refreshLockTTL)
		if err == nil {
			done(lockAcquired)
			return lock, nil
		}
		if !errors.Is(err, sessionstore.ErrLocked) {
			done(lockError)
			return nil, err
		}
		waited = true
		cur, err := s.store.Get(ctx, stale.Key)
		if isNotFound(err) {
			done(lockSessionGone)
			return nil, errSessionGone
		}
		if err == nil && cur.Version != stale.Version && !s.needsRefresh(cur, time.Now()) {
			done(lockRefreshedElsewhere)
			return nil, nil
		}
		if time.Now().After(deadline) {
			done(lockTimeout)
			return nil, errRefreshBusy
		}
		// The holder's notice wakes us as soon as its tokens are stored; the
		// slow re-check covers a lost notice and a holder that died (its
		// lock expires).
		select {
		case <-wake:
		case <-time.After(refreshRecheck):
		case <-ctx.Done():
			done(lockError)
			return nil, ctx.Err()
		}
	}
}

// refreshFailed turns a failed refresh into the response: a refused refresh
// ends the session (401 session_expired); a session ended meanwhile is 401;
// anything else (IdP or store unreachable) keeps the session and serves the
// current access token while it is still valid, or answers 503.
func (s *Server) refreshFailed(ctx context.Context, sess *sessionstore.Session, err error) (*sessionstore.Session, error) {
	ctx = context.WithoutCancel(ctx) // the end of the session must complete
	switch {
	case errors.Is(err, errRefreshDenied):
		if _, kerr := s.endSession(ctx, sess.Key, sessionstore.CauseRefreshDenied, "idp"); kerr != nil {
			return nil, errStoreUnavailable(kerr)
		}
		return nil, errSessionExpired(err)
	case errors.Is(err, errSessionGone):
		return nil, s.endedError(ctx, sess.Key)
	}
	if time.Now().Before(sess.AccessExpiresAt) {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh failed; serving the current access token until it expires",
			slog.String("handle", sess.Handle), slog.String("error", err.Error()))
		return sess, nil
	}
	var e *Error
	if errors.As(err, &e) {
		return nil, e
	}
	if errors.Is(err, errRefreshBusy) {
		return nil, errRefreshInProgress(err)
	}
	if errors.Is(err, sessionstore.ErrUnavailable) {
		return nil, errStoreUnavailable(err)
	}
	return nil, errIdPUnavailable(err)
}
