package bff

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

// clientTokens holds the BFF's own client-credentials tokens for token=client
// routes: one per route, shared by every session and by no user, kept in
// memory only (it is the application's token, not a session's, and another
// instance simply gets its own). A token is replaced when it comes within
// the refresh margin of its expiry, by one call to the token endpoint at a
// time; a failed call keeps serving the current token while it is valid.
type clientTokens struct {
	group singleflight.Group

	mu     sync.Mutex
	tokens map[string]clientToken // by route prefix
}

// clientToken is one client-credentials access token and its lifetime.
type clientToken struct {
	value             string
	issued, expiresAt time.Time
}

// fresh reports whether t can be used at now without refreshing it first:
// it is outside the margin of the configured skew, at most half its
// lifetime (as for users' tokens).
func (t clientToken) fresh(now time.Time, skew time.Duration) bool {
	margin := min(skew, t.expiresAt.Sub(t.issued)/2)
	return t.value != "" && now.Add(margin).Before(t.expiresAt)
}

func newClientTokens() *clientTokens {
	return &clientTokens{tokens: make(map[string]clientToken)}
}

// routeClientToken returns the route's client-credentials access token.
func (s *Server) routeClientToken(ctx context.Context, route Route) (string, error) {
	c := s.clientTokens
	c.mu.Lock()
	tok := c.tokens[route.Prefix]
	c.mu.Unlock()
	if tok.fresh(time.Now(), s.cfg.RefreshSkew) {
		return tok.value, nil
	}
	ch := c.group.DoChan(route.Prefix, func() (any, error) {
		// Shared by every waiting request: not bound to any one of them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		fresh, err := s.clientCredentialsGrant(ctx, route)
		if err != nil {
			return clientToken{}, err
		}
		c.mu.Lock()
		c.tokens[route.Prefix] = fresh
		c.mu.Unlock()
		return fresh, nil
	})
	select {
	case res := <-ch:
		if res.Err == nil {
			return res.Val.(clientToken).value, nil
		}
		if tok.value != "" && time.Now().Before(tok.expiresAt) {
			s.logger.WarnContext(ctx, "client-credentials token refresh failed; serving the current token until it expires",
				"route", route.Prefix, "error", res.Err.Error())
			return tok.value, nil
		}
		return "", errIdPUnavailable(res.Err)
	case <-ctx.Done():
		return "", errCanceled(ctx.Err())
	}
}

// clientCredentialsGrant is one client_credentials call to the token
// endpoint, traced by grant type (never a token).
func (s *Server) clientCredentialsGrant(ctx context.Context, route Route) (clientToken, error) {
	ctx, span := s.startSpan(ctx, "idp.token", attribute.String("oauth.grant_type", "client_credentials"))
	cc := clientcredentials.Config{
		ClientID:     s.idp.OAuth2.ClientID,
		ClientSecret: s.idp.OAuth2.ClientSecret,
		TokenURL:     s.idp.OAuth2.Endpoint.TokenURL,
		AuthStyle:    oauth2.AuthStyleInHeader,
		Scopes:       route.Scopes,
	}
	if route.Resource != "" {
		cc.EndpointParams = url.Values{"resource": {route.Resource}}
	}
	start := time.Now()
	tok, err := cc.Token(s.idp.clientContext(ctx))
	endSpan(span, describeTokenError(err))
	if err != nil {
		return clientToken{}, fmt.Errorf("client credentials for %s: %w", route.Prefix, describeTokenError(err))
	}
	t := clientToken{value: tok.AccessToken, issued: start, expiresAt: tok.Expiry}
	if t.expiresAt.IsZero() {
		t.expiresAt = start.Add(s.cfg.DefaultTokenLifetime)
	}
	return t, nil
}
