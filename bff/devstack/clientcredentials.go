package devstack

import (
	"context"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// The OP's client_credentials grant: a client authenticates with its own
// secret and gets an access token whose subject is the client itself, with
// no user and no refresh token — what the BFF uses for routes that call an
// API as the application (token=client). The library offers the grant
// because devStorage implements op.ClientCredentialsStorage.

// ClientCredentials authenticates a confidential client for the grant.
func (s *devStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, clientID, clientSecret); err != nil {
		return nil, err
	}
	return s.clients[clientID], nil
}

// ClientCredentialsTokenRequest is the token request of the grant: the
// client is the subject and the audience.
func (s *devStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return &clientCredentialsRequest{clientID: clientID, scopes: slices.Clone(scopes)}, nil
}

type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string     { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string  { return []string{r.clientID} }
func (r *clientCredentialsRequest) GetScopes() []string    { return r.scopes }
func (r *clientCredentialsRequest) GetClientID() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAuthTime() time.Time { return time.Time{} }
func (r *clientCredentialsRequest) GetAMR() []string       { return nil }
