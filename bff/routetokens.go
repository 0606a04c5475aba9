package bff

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// Route tokens: a route with resource= or scope= sends its upstream a token
// of its own, never the session's access token, so an upstream (or its
// log) holds a token good for that API alone.
//
// Each is obtained with the refresh-token grant (RFC 6749 section 6) with
// the route's resource (RFC 8707) and scope parameters, when the route is
// first used and then whenever it comes within the refresh margin of its
// expiry. All of a session's route tokens are sealed together in
// Session.RouteTokens, bound to the session like its other tokens. A
// refresh of one of them is single-flight per (session, token) within the
// instance and runs under the session's cluster-wide refresh lock — the
// same one as the session's own refresh, because with rotating refresh
// tokens every one of these grants spends the session's refresh token and
// stores the next.

// fieldRouteTokens is the sealing field of Session.RouteTokens.
const fieldRouteTokens = "route_tokens"

// routeToken is one of a session's route tokens.
type routeToken struct {
	value             string
	issued, expiresAt time.Time
}

// routeTokenSet is the opened Session.RouteTokens, by Route.tokenKey.
type routeTokenSet map[string]routeToken

// routeTokensFormat is the first byte of an encoded routeTokenSet. A set
// of another format does not open, and its tokens are simply fetched anew.
const routeTokensFormat = 2

// encode writes the set: the format byte, a uvarint count, then per token
// its key (uvarint length and bytes), issue and expiry times (varint Unix
// milliseconds: with seconds, a token of a few seconds would look due a
// second early, and be fetched again) and the token packed by tokenpack
// (uvarint length and bytes).
func (set routeTokenSet) encode() []byte {
	b := []byte{routeTokensFormat}
	b = binary.AppendUvarint(b, uint64(len(set)))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	}) {
		t := set[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendVarint(b, t.issued.UnixMilli())
		b = binary.AppendVarint(b, t.expiresAt.UnixMilli())
		packed := tokenpack.Pack(t.value)
		b = binary.AppendUvarint(b, uint64(len(packed)))
		b = append(b, packed...)
	}
	return b
}

func decodeRouteTokens(b []byte) (routeTokenSet, error) {
	if len(b) == 0 || b[0] != routeTokensFormat {
		return nil, errors.New("route tokens: unknown format")
	}
	b = b[1:]
	bad := errors.New("route tokens: malformed")
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	nextInt := func() (int64, bool) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	raw := func() ([]byte, bool) {
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return nil, false
		}
		v := b[:n]
		b = b[n:]
		return v, true
	}
	count, ok := next()
	if !ok || count > uint64(len(b)) {
		return nil, bad
	}
	set := make(routeTokenSet, count)
	for range count {
		k, ok1 := raw()
		issued, ok2 := nextInt()
		expires, ok3 := nextInt()
		packed, ok4 := raw()
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, bad
		}
		token, err := tokenpack.Unpack(packed)
		if err != nil {
			return nil, fmt.Errorf("route tokens: %w", err)
		}
		set[string(k)] = routeToken{value: token, issued: time.UnixMilli(issued), expiresAt: time.UnixMilli(expires)}
	}
	if len(b) > 0 {
		return nil, bad
	}
	return set, nil
}

// openRouteTokens opens the session's route tokens (an empty set when it
// has none). The set returned must not be modified.
func (s *Server) openRouteTokens(sess *sessionstore.Session) (routeTokenSet, error) {
	if len(sess.RouteTokens) == 0 {
		return routeTokenSet{}, nil
	}
	if set, ok := s.routeTokenCache.get(sess.Key, sess.RouteTokens); ok {
		return set, nil
	}
	plain, err := s.sealer.Open(sess.Key, fieldRouteTokens, sess.RouteTokens)
	if err != nil {
		return nil, fmt.Errorf("open route tokens: %w", err)
	}
	set, err := decodeRouteTokens(plain)
	if err != nil {
		return nil, err
	}
	s.routeTokenCache.put(sess.Key, sess.RouteTokens, set)
	return set, nil
}

// fresh reports whether t can be sent at now: it exists and is outside the
// refresh margin (the configured skew, at most half its lifetime).
func (s *Server) routeTokenFresh(t routeToken, now time.Time) bool {
	margin := min(s.cfg.RefreshSkew, t.expiresAt.Sub(t.issued)/2)
	return t.value != "" && now.Add(margin).Before(t.expiresAt)
}

// routeAccessToken returns the route's own token for the session, getting
// or refreshing it first when it is missing or due. Errors are as for the
// session's own refresh (accessToken): a refused grant ends the session.
func (s *Server) routeAccessToken(ctx context.Context, sess *sessionstore.Session, route Route) (string, error) {
	key := route.tokenKey()
	set, err := s.openRouteTokens(sess)
	if err != nil {
		// Sealed with a retired key: get the route's token anew.
		set = routeTokenSet{}
	}
	if t, ok := set[key]; ok && s.routeTokenFresh(t, time.Now()) {
		return t.value, nil
	}
	var subject string
	if route.Token == TokenExchange {
		// The subject token, refreshed first if due: before the lock, which
		// its own refresh takes.
		if subject, err = s.accessToken(ctx, sess); err != nil {
			return "", err
		}
	}
	ch := s.refreshes.DoChan(sess.Key+"\x00"+key, func() (any, error) {
		// Shared by every waiting request: not bound to any one of them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshWait+refreshTimeout)
		defer cancel()
		return s.refreshRouteToken(ctx, sess, route, subject)
	})
	select {
	case res := <-ch:
		if res.Err == nil {
			return res.Val.(string), nil
		}
		var e *Error
		if errors.As(res.Err, &e) {
			return "", e
		}
		if t, ok := set[key]; ok && time.Now().Before(t.expiresAt) && !errors.Is(res.Err, errRefreshDenied) && !errors.Is(res.Err, errSessionGone) {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "route token refresh failed; serving the current one until it expires",
				slog.String("handle", sess.Handle), slog.String("route", route.Prefix), slog.String("error", res.Err.Error()))
			return t.value, nil
		}
		_, err := s.refreshFailed(ctx, &sessionstore.Session{Key: sess.Key, Handle: sess.Handle}, res.Err)
		return "", err
	case <-ctx.Done():
		return "", errCanceled(ctx.Err())
	}
}

// refreshRouteToken gets the route's token under the session's refresh
// lock: it re-reads the session, uses a token another instance stored
// meanwhile, and otherwise makes one refresh-token grant with the route's
// resource and scope, storing the token and the rotated refresh token with
// a compare-and-swap fenced by the version read under the lock. An ID
// token in that answer is not used: it is the session's own refresh that
// renews the session's ID token (an IdP may even address one sent with a
// resource to that resource).
func (s *Server) refreshRouteToken(ctx context.Context, stale *sessionstore.Session, route Route, subject string) (string, error) {
	key := route.tokenKey()
	lock, err := s.lockSession(ctx, stale.Key)
	if err != nil {
		return "", err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }()

	sess, err := s.store.Get(ctx, stale.Key)
	if isNotFound(err) {
		return "", errSessionGone
	}
	if err != nil {
		return "", err
	}
	set, err := s.openRouteTokens(sess)
	if err != nil {
		set = routeTokenSet{}
	}
	now := time.Now()
	if t, ok := set[key]; ok && s.routeTokenFresh(t, now) {
		return t.value, nil // another instance got it meanwhile
	}
	var (
		sec sessionstore.Secrets
		tok *oauth2.Token
	)
	if route.Token == TokenExchange {
		tok, err = s.exchangeGrant(ctx, subject, route)
	} else {
		sec, err = s.openSecrets(sess)
		if err != nil || sec.RefreshToken == "" {
			return "", fmt.Errorf("%w: no usable refresh token", errRefreshDenied)
		}
		s.metrics.refreshes.Inc()
		tok, err = s.refreshGrantFor(ctx, sec.RefreshToken, route)
	}
	if err != nil {
		return "", err
	}
	expiry := tok.Expiry
	if expiry.IsZero() {
		expiry = now.Add(s.cfg.DefaultTokenLifetime)
	}
	next := make(routeTokenSet, len(set)+1)
	for k, t := range set {
		if now.Before(t.expiresAt) {
			next[k] = t // expired ones are dropped, not carried along
		}
	}
	next[key] = routeToken{value: tok.AccessToken, issued: now, expiresAt: expiry}
	sealed, err := s.sealer.Seal(sess.Key, fieldRouteTokens, next.encode())
	if err != nil {
		return "", errSealFailed(err)
	}
	if route.Token != TokenExchange {
		if err := s.setSecrets(sess, sec, tok.RefreshToken); err != nil {
			return "", err
		}
	}
	sess.RouteTokens = sealed
	err = s.store.Update(ctx, sess)
	if errors.Is(err, sessionstore.ErrConflict) || isNotFound(err) {
		// See refreshLocked: our lease ran out, or the session ended.
		s.revokeUnused(ctx, sess, tok.RefreshToken, sec.RefreshToken)
		if isNotFound(err) {
			return "", errSessionGone
		}
		return "", errRefreshBusy
	}
	if err != nil {
		return "", fmt.Errorf("store route token: %w", err)
	}
	s.routeTokenCache.put(sess.Key, sealed, next)
	return tok.AccessToken, nil
}

// setSecrets seals the rotated refresh token of a route token's grant
// with the session's ID token. The session's access token is not touched.
func (s *Server) setSecrets(sess *sessionstore.Session, old sessionstore.Secrets, refresh string) error {
	if refresh == "" || refresh == old.RefreshToken {
		return nil
	}
	next := old
	next.RefreshToken = refresh
	plain, err := tokenpack.EncodeSecrets(next)
	if err != nil {
		return errSealFailed(err)
	}
	sealed, err := s.sealer.Seal(sess.Key, fieldSecrets, plain)
	if err != nil {
		return errSealFailed(err)
	}
	sess.Secrets = sealed
	return nil
}

// refreshGrantFor is refreshGrant with the route's resource and scope,
// which x/oauth2's refresh cannot send.
func (s *Server) refreshGrantFor(ctx context.Context, refreshToken string, route Route) (*oauth2.Token, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if route.Resource != "" {
		form.Set("resource", route.Resource)
	}
	if len(route.Scopes) > 0 {
		form.Set("scope", strings.Join(route.Scopes, " "))
	}
	return s.timedRefresh(ctx, "refresh for "+route.Prefix, func(callCtx context.Context) (*oauth2.Token, error) {
		return s.tokenRequest(callCtx, form)
	})
}
