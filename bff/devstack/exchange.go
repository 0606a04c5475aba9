package devstack

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// exchangeStorage adds RFC 8693 token exchange to the OP when
// OPConfig.TokenExchange is set (the library offers the grant, and lists it
// in discovery, exactly when its storage implements
// op.TokenExchangeStorage): a client presents a live access token the OP
// issued as the subject token and gets an access token for the audience it
// names, for the same user, without a refresh token.
type exchangeStorage struct {
	*devStorage
}

// ValidateTokenExchangeRequest accepts exchanges of live access tokens for
// access tokens with an audience.
func (s exchangeStorage) ValidateTokenExchangeRequest(ctx context.Context, req op.TokenExchangeRequest) error {
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	switch {
	case req.GetRequestedTokenType() != oidc.AccessTokenType:
		return oidc.ErrInvalidRequest().WithDescription("only access tokens are issued by token exchange")
	case req.GetExchangeSubjectTokenType() != oidc.AccessTokenType:
		return oidc.ErrInvalidRequest().WithDescription("the subject token must be an access token")
	case len(req.GetAudience()) == 0:
		return oidc.ErrInvalidRequest().WithDescription("audience is required")
	}
	jti, _ := req.GetExchangeSubjectTokenClaims()["jti"].(string)
	a, ok := s.liveAccess(jti)
	if !ok || a.grant.subject != req.GetExchangeSubject() {
		return oidc.ErrInvalidGrant().WithDescription("the subject token is not live")
	}
	if scopes := req.GetScopes(); len(scopes) > 0 {
		for _, sc := range scopes {
			if !slices.Contains(a.scopes, sc) {
				return oidc.ErrInvalidScope()
			}
		}
	} else {
		req.SetCurrentScopes(a.scopes)
	}
	return nil
}

// CreateTokenExchangeRequest keeps nothing: the exchanged token's record is
// made when it is issued.
func (s exchangeStorage) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	return nil
}

// GetPrivateClaimsFromTokenExchangeRequest puts the scope in the token.
func (s exchangeStorage) GetPrivateClaimsFromTokenExchangeRequest(ctx context.Context, req op.TokenExchangeRequest) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(req.GetScopes(), " ")}, nil
}

// SetUserinfoFromTokenExchangeRequest serves ID tokens of exchanges, which
// ValidateTokenExchangeRequest never allows; it is part of the interface.
func (s exchangeStorage) SetUserinfoFromTokenExchangeRequest(ctx context.Context, ui *oidc.UserInfo, req op.TokenExchangeRequest) error {
	return errors.New("token exchange issues access tokens only")
}

// exchangeGrant is the grant of an exchanged token: the user of the subject
// token, the requested audience.
func exchangeGrant(r op.TokenExchangeRequest) grant {
	return grant{subject: r.GetSubject(), clientID: r.GetClientID(), audience: r.GetAudience(), scopes: r.GetScopes()}
}
