package bff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/bffproxy/bff/sessionstore"
)

// endSession is the one way a session ends early, whatever the cause (user
// logout, admin kill, back-channel logout, refused refresh, a new login in
// the same browser):
//
//  1. the record and its tokens are deleted from the store, leaving a
//     tombstone with the cause, so every instance refuses the cookie on its
//     next request and tells the browser why;
//  2. every instance is told, so it cuts the session's open streams and
//     pushes session-ended to its tabs;
//  3. the refresh token is revoked at the IdP (RFC 7009) — a failure is
//     logged and counted, and the session is ended all the same;
//  4. one audit line is logged.
//
// It returns the deleted session (its sealed ID token is needed for the
// end-session redirect), or nil if there was none: of concurrent kills of one
// session exactly one does the work. An error means the store could not be
// reached and nothing was ended.
func (s *Server) endSession(ctx context.Context, key string, cause sessionstore.Cause, actor string) (*sessionstore.Session, error) {
	// The kill must complete even if the request that asked for it goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()

	sess, err := s.store.Delete(ctx, key, sessionstore.Tombstone{Cause: cause, At: time.Now(), TTL: s.cfg.TombstoneTTL})
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("end session: %w", err)
	}
	s.accessTokens.drop(key)
	s.routeTokenCache.drop(key)
	ev := sessionstore.Event{Key: key, Handle: sess.Handle, Cause: cause}
	s.hub.end(ev) // this instance at once, even if publishing fails
	if err := s.store.Publish(ctx, ev); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "end session: publish failed; other instances cut streams on their next request",
			slog.String("handle", sess.Handle), slog.String("error", err.Error()))
	}

	revoked := "none"
	if sec, err := s.openSecrets(sess); err == nil && sec.RefreshToken != "" {
		if err := s.revoke(ctx, sec.RefreshToken); err != nil {
			revoked = "failed"
			s.metrics.revocationFailures.Inc()
			s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh token revocation failed",
				slog.String("handle", sess.Handle), slog.String("error", err.Error()))
		} else {
			revoked = "ok"
		}
	}
	s.metrics.sessionsEnded.WithLabelValues(string(cause)).Inc()
	s.audit(ctx, auditEvent(cause), sess.Subject, sess.Handle,
		slog.String("cause", string(cause)),
		slog.String("actor", actor),
		slog.String("revocation", revoked))
	return sess, nil
}

// endSessions ends every session in list and returns how many it ended.
// It goes on past a failure, so one unreachable moment ends as much as it
// can, and reports the first error.
func (s *Server) endSessions(ctx context.Context, list []*sessionstore.Session, cause sessionstore.Cause, actor string) (int, error) {
	n := 0
	var first error
	for _, sess := range list {
		ended, err := s.endSession(ctx, sess.Key, cause, actor)
		if err != nil && first == nil {
			first = err
		}
		if ended != nil {
			n++
		}
	}
	return n, first
}

// revoke asks the IdP to revoke a refresh token (RFC 7009), which with most
// IdPs also revokes the access tokens issued from it.
func (s *Server) revoke(ctx context.Context, refreshToken string) (err error) {
	if s.idp.RevocationURL == "" {
		return errors.New("the IdP has no revocation endpoint")
	}
	ctx, span := s.startSpan(ctx, "idp.revoke", attribute.String("oauth.token_type_hint", "refresh_token"))
	defer func() { endSpan(span, err) }()
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.idp.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s.cfg.ClientID), url.QueryEscape(s.cfg.ClientSecret))
	resp, err := s.idp.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("revocation endpoint: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint: status %d", resp.StatusCode)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, sessionstore.ErrNotFound) }
