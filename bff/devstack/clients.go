package devstack

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client is a confidential web client of the BFF kind: code flow with
// client_secret_basic or client_secret_post, refresh tokens, client
// credentials (the application's own token), JWT access
// tokens, and exact redirect and post-logout redirect URIs.
type client struct {
	id                  string
	secret              string
	redirectURIs        []string
	postLogoutRedirects []string
	loginURL            func(string) string
}

func (c *client) GetID() string { return c.id }

func (c *client) RedirectURIs() []string { return c.redirectURIs }

func (c *client) PostLogoutRedirectURIs() []string { return c.postLogoutRedirects }

func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod says basic; the library also accepts client_secret_post for
// such a client, because the OP enables AuthMethodPost.
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange}
}

func (c *client) LoginURL(id string) string { return c.loginURL(id) }

// AccessTokenType is JWT so that the demo API can verify tokens against the
// JWKS, like most APIs behind a BFF do.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (c *client) IDTokenLifetime() time.Duration { return time.Hour }

// DevMode stays off: redirect URIs must match exactly. http:// redirect URIs
// are still allowed for a confidential client using the code flow.
func (c *client) DevMode() bool { return false }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *client) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion puts name, email and preferred_username in
// the ID token when the scopes ask for them, even though an access token is
// issued too: the BFF reads the user's claims from the ID token.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) ClockSkew() time.Duration { return 0 }

// GetClientByClientID returns one of the configured clients. Unknown clients
// are a plain error (the library turns it into invalid_client).
func (s *devStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a client secret, in constant time.
func (s *devStorage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	c, ok := s.clients[clientID]
	if !ok {
		return errors.New("client not found")
	}
	if subtle.ConstantTimeCompare([]byte(c.secret), []byte(clientSecret)) != 1 {
		return errors.New("invalid client secret")
	}
	return nil
}

// GetKeyByIDAndClientID refuses every key: the example storage knows a
// service account whose private key is published with the library, and the
// JWT profile grant must not accept it here.
func (s *devStorage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grant is not supported")
}

// ValidateJWTProfileScopes refuses the JWT profile grant (see above).
func (s *devStorage) ValidateJWTProfileScopes(ctx context.Context, userID string, scopes []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not supported")
}
