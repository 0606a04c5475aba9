package bff

import (
	"context"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/bffproxy/bff/sessionstore"
)

// verifyIDToken verifies an ID token from the token endpoint, at login and
// after a refresh: go-oidc checks the signature, iss, aud and exp; the
// authorized party is checked here (OpenID Connect Core 3.1.3.7): a token
// with several audiences must name this client in azp, and an azp, when
// present, must be this client — otherwise the token was issued to another
// party that merely lists this one.
func (s *Server) verifyIDToken(ctx context.Context, raw string) (*oidc.IDToken, error) {
	idToken, err := s.idp.IDTokens.Verify(s.idp.clientContext(ctx), raw)
	if err != nil {
		return nil, err
	}
	var c struct {
		AZP string `json:"azp"`
	}
	if err := idToken.Claims(&c); err != nil {
		return nil, fmt.Errorf("ID token claims: %w", err)
	}
	if len(idToken.Audience) > 1 && c.AZP == "" {
		return nil, errors.New("ID token has several audiences and no azp")
	}
	if c.AZP != "" && c.AZP != s.cfg.ClientID {
		return nil, fmt.Errorf("ID token was issued to %q", c.AZP)
	}
	return idToken, nil
}

// checkRefreshedIDToken verifies the ID token of a refresh response before
// it may replace the session's (OpenID Connect Core 12.2): verified as at
// login, and naming the same issuer and subject. A response that fails is
// not trusted at all — its access token might be another user's.
func (s *Server) checkRefreshedIDToken(ctx context.Context, sess *sessionstore.Session, raw string) error {
	if raw == "" {
		return nil // the stored ID token is kept
	}
	idToken, err := s.verifyIDToken(ctx, raw)
	if err != nil {
		return err
	}
	if idToken.Issuer != sess.Issuer || idToken.Subject != sess.Subject {
		return errors.New("the refreshed ID token names another user")
	}
	return nil
}
