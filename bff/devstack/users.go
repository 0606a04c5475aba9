package devstack

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// CheckUsernamePassword marks the auth request as authenticated and starts a
// login session: the `sid` is created here, once per successful login.
func (s *devStorage) CheckUsernamePassword(username, password, authRequestID string) error {
	if err := s.exampleStorage.CheckUsernamePassword(username, password, authRequestID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sids[authRequestID] = randomID()[:22]
	s.signedIn(authRequestID)
	return nil
}

// userinfo fills the standard claims that the scopes ask for.
func (s *devStorage) userinfo(ui *oidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.users.byID[subject]
	if !ok {
		return errors.New("user not found")
	}
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeOpenID:
			ui.Subject = u.ID
		case oidc.ScopeProfile:
			ui.Name = strings.TrimSpace(u.FirstName + " " + u.LastName)
			ui.GivenName = u.FirstName
			ui.FamilyName = u.LastName
			ui.PreferredUsername = u.Username
		case oidc.ScopeEmail:
			ui.Email = u.Email
			ui.EmailVerified = oidc.Bool(u.EmailVerified)
		}
	}
	if ui.Subject == "" {
		ui.Subject = u.ID
	}
	return nil
}

// sidOf returns the login session of a token request.
func (s *devStorage) sidOf(req any) string {
	switch r := req.(type) {
	case *storage.AuthRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sids[r.ID]
	case *devAuthRequest:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sids[r.ID]
	case *refreshRequest:
		return r.grant.sid
	}
	return ""
}

// SetUserinfoFromRequest builds the ID token's user claims, and its `sid`:
// the same for every ID token of one login, including those from refreshes,
// so that a BFF can match a back-channel logout token to its sessions.
func (s *devStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.userinfo(ui, req.GetSubject(), scopes); err != nil {
		return err
	}
	if sid := s.sidOf(req); sid != "" {
		ui.AppendClaims("sid", sid)
	}
	return nil
}

// SetUserinfoFromToken serves the userinfo endpoint for live access tokens.
func (s *devStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	a, ok := s.liveAccess(tokenID)
	if !ok {
		return errors.New("token is invalid, revoked or expired")
	}
	return s.userinfo(ui, a.grant.subject, a.scopes)
}

// SetIntrospectionFromToken serves the introspection endpoint: a live access
// token issued to the asking client is active, anything else is not.
func (s *devStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	a, ok := s.liveAccess(tokenID)
	if !ok {
		return errors.New("token is invalid, revoked or expired")
	}
	if !slices.Contains(a.grant.audience, clientID) {
		return errors.New("token is not valid for this client")
	}
	ui := new(oidc.UserInfo)
	if err := s.userinfo(ui, a.grant.subject, a.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(ui)
	resp.Scope = a.scopes
	resp.ClientID = a.grant.clientID
	resp.Expiration = oidc.FromTime(a.expires)
	return nil
}

// GetPrivateClaimsFromScopes adds nothing: the example's custom claims are
// not part of this OP. GetPrivateClaimsFromRequest is used instead.
func (s *devStorage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest adds `sid` and `scope` to JWT access tokens, as
// many IdPs do, so the demo API can show which login a call comes from, and
// `acr` and `auth_time` of the sign-in, so it can ask for a step-up.
func (s *devStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, scopes []string) (map[string]any, error) {
	claims := map[string]any{"scope": strings.Join(req.GetScopes(), " ")}
	if sid := s.sidOf(req); sid != "" {
		claims["sid"] = sid
	}
	if g, err := s.grantFor(req); err == nil && g.acr != "" {
		claims["acr"] = g.acr
		claims["auth_time"] = g.authTime.Unix()
	}
	return claims, nil
}

// userStore adapts the configured users to the example storage's password
// check and to the claims above.
type userStore struct {
	byID       map[string]*storage.User
	byUsername map[string]*storage.User
}

func newUserStore(users []User) userStore {
	us := userStore{byID: map[string]*storage.User{}, byUsername: map[string]*storage.User{}}
	for _, u := range users {
		first, last, _ := strings.Cut(u.Name, " ")
		su := &storage.User{
			ID:            u.Subject,
			Username:      u.Username,
			Password:      u.Password,
			FirstName:     first,
			LastName:      last,
			Email:         u.Email,
			EmailVerified: u.Email != "",
		}
		us.byID[u.Subject] = su
		us.byUsername[u.Username] = su
	}
	return us
}

func (u userStore) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u userStore) GetUserByUsername(name string) *storage.User {
	return u.byUsername[name]
}

// ExampleClientID names no client: the example's JWT-profile service
// account is not available here.
func (u userStore) ExampleClientID() string { return "" }
