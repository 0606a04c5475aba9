package bff

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/oauth2"
)

// RFC 8693 token exchange for token=exchange routes: the user's access
// token is the subject token, and the IdP issues an access token for the
// route's audience (and resource and scope, when given). The exchanged
// token is kept and reused like the other route tokens (see
// routetokens.go); no refresh token is involved.

// Token exchange identifiers (RFC 8693 section 3).
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// checkTokenExchange refuses a configuration with token=exchange routes
// when the IdP's discovery document does not list the token-exchange
// grant: such a route could never work, and should not start.
func checkTokenExchange(cfg *Config, p *Provider) error {
	for i, r := range cfg.Routes {
		if r.Token == TokenExchange && !slices.Contains(p.GrantTypes, grantTokenExchange) {
			return fmt.Errorf("BFF_ROUTES: route %d: %s uses token=exchange, but the IdP's discovery document does not list %s in grant_types_supported (RFC 8693 token exchange is not available)",
				i+1, r.Prefix, grantTokenExchange)
		}
	}
	return nil
}

// exchangeGrant is one token-exchange call to the token endpoint.
func (s *Server) exchangeGrant(ctx context.Context, subjectToken string, route Route) (*oauth2.Token, error) {
	ctx, span := s.startSpan(ctx, "idp.token", attribute.String("oauth.grant_type", grantTokenExchange))
	callCtx, cancel := context.WithTimeout(s.idp.clientContext(ctx), refreshTimeout)
	defer cancel()
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subjectToken},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
		"audience":             {route.Audience},
	}
	if route.Resource != "" {
		form.Set("resource", route.Resource)
	}
	if len(route.Scopes) > 0 {
		form.Set("scope", strings.Join(route.Scopes, " "))
	}
	start := time.Now()
	tok, err := s.tokenRequest(callCtx, form)
	if err != nil {
		err = errTokenExchange(fmt.Errorf("route %s: %w", route.Prefix, describeTokenError(err)))
	} else if tt, _ := tok.Extra("issued_token_type").(string); tt != "" && tt != tokenTypeAccessToken {
		err = errTokenExchange(fmt.Errorf("route %s: the IdP issued a %s, not an access token", route.Prefix, tt))
	}
	span.SetAttributes(attribute.Float64("bff.duration_seconds", time.Since(start).Seconds()))
	endSpan(span, err)
	return tok, err
}
