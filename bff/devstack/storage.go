package devstack

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// exampleStorage is the part of the library's example storage that the OP
// keeps: authorization requests and codes, the signing key and the JWKS, and
// the password check of the login form.
//
// It is embedded as an interface, not as *storage.Storage, on purpose: the
// concrete type also implements client credentials, token exchange and device
// authorization with a hard-coded service account ("sid1"/"verysecret"), and
// the library enables a grant type as soon as the storage implements it.
// Embedding the interface hides those methods, so this OP offers only what
// the BFF uses.
type exampleStorage interface {
	op.Storage
	CheckUsernamePassword(username, password, authRequestID string) error
}

// devStorage wraps the example storage and replaces everything that concerns
// clients and tokens: the example hard-codes lifetimes (5 min / 5 h), has no
// post-logout redirect URIs, issues opaque access tokens, keeps its clients in
// a package-level map, and has no notion of a login session (`sid`).
type devStorage struct {
	exampleStorage

	accessTTL  time.Duration
	refreshTTL time.Duration
	clients    map[string]*client // read-only after construction
	users      userStore          // read-only after construction

	mu      sync.Mutex
	sids    map[string]string        // auth request id -> sid, set when the user logs in
	access  map[string]*accessRecord // by jti; lets userinfo, introspection and revocation see access tokens
	refresh map[string]*refreshRecord
}

// grant is what a login hands down to every token issued from it, through all
// refresh-token rotations: the `sid` stays the same for the life of the login.
type grant struct {
	sid      string
	subject  string
	clientID string
	audience []string
	scopes   []string // the scopes granted at login; a refresh may narrow the access token, never the grant
	authTime time.Time
	amr      []string
}

type accessRecord struct {
	id      string
	grant   grant
	scopes  []string
	expires time.Time
	refresh string // the refresh token issued together with it, if any
}

type refreshRecord struct {
	token   string
	grant   grant
	expires time.Time
	access  string // jti of the access token issued together with it
}

func newDevStorage(users []User, clients []Client, accessTTL, refreshTTL time.Duration, loginURL func(string) string) *devStorage {
	us := newUserStore(users)
	cs := make(map[string]*client, len(clients))
	for _, c := range clients {
		cs[c.ID] = &client{
			id:                  c.ID,
			secret:              c.Secret,
			redirectURIs:        slices.Clone(c.RedirectURIs),
			postLogoutRedirects: slices.Clone(c.PostLogoutRedirectURIs),
			loginURL:            loginURL,
		}
	}
	return &devStorage{
		// The example storage gets an empty client map of its own: its
		// package-level registry (storage.RegisterClients) is shared by every
		// instance in the process, and clients are answered here anyway.
		exampleStorage: storage.NewStorageWithClients(us, map[string]*storage.Client{}),
		accessTTL:      accessTTL,
		refreshTTL:     refreshTTL,
		clients:        cs,
		users:          us,
		sids:           map[string]string{},
		access:         map[string]*accessRecord{},
		refresh:        map[string]*refreshRecord{},
	}
}

// randomID returns 32 bytes of crypto randomness, base64url-encoded: refresh
// tokens are bearer credentials and must not be guessable.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CheckUsernamePassword marks the auth request as authenticated and starts a
// login session: the `sid` is created here, once per successful login.
func (s *devStorage) CheckUsernamePassword(username, password, authRequestID string) error {
	if err := s.exampleStorage.CheckUsernamePassword(username, password, authRequestID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sids[authRequestID] = randomID()[:22]
	return nil
}

// DeleteAuthRequest also forgets the login's sid mapping: from now on the
// sid lives in the tokens' grant.
func (s *devStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	s.mu.Lock()
	delete(s.sids, id)
	s.mu.Unlock()
	return s.exampleStorage.DeleteAuthRequest(ctx, id)
}

// codeLifetime bounds how long after the authorization request its code can
// be redeemed; the example storage keeps codes forever.
const codeLifetime = 10 * time.Minute

// AuthRequestByCode refuses codes of stale authorization requests.
func (s *devStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ar, err := s.exampleStorage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	if r, ok := ar.(*storage.AuthRequest); ok && time.Since(r.CreationDate) > codeLifetime {
		return nil, errors.New("code expired")
	}
	return ar, nil
}

// grantFor builds the grant of a token request: a finished authorization
// request (code flow) or a refresh request (rotation).
func (s *devStorage) grantFor(req op.TokenRequest) (grant, error) {
	switch r := req.(type) {
	case *storage.AuthRequest:
		s.mu.Lock()
		sid, ok := s.sids[r.ID]
		s.mu.Unlock()
		if !ok {
			return grant{}, oidc.ErrInvalidGrant().WithDescription("login not completed")
		}
		return grant{
			sid:      sid,
			subject:  r.GetSubject(),
			clientID: r.GetClientID(),
			audience: r.GetAudience(),
			scopes:   slices.Clone(r.GetScopes()),
			authTime: r.GetAuthTime(),
			amr:      r.GetAMR(),
		}, nil
	case *refreshRequest:
		return r.grant, nil
	default:
		return grant{}, oidc.ErrUnsupportedGrantType()
	}
}

// newAccess records an access token; the caller holds s.mu.
func (s *devStorage) newAccess(g grant, scopes []string, refresh string) *accessRecord {
	a := &accessRecord{
		id:      randomID()[:22],
		grant:   g,
		scopes:  slices.Clone(scopes),
		expires: time.Now().Add(s.accessTTL),
		refresh: refresh,
	}
	s.access[a.id] = a
	return a
}

// CreateAccessToken issues an access token without a refresh token (a login
// without offline_access).
func (s *devStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	g, err := s.grantFor(req)
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.newAccess(g, req.GetScopes(), "")
	return a.id, a.expires, nil
}

// CreateAccessAndRefreshTokens issues a token pair at the code exchange, and
// rotates the refresh token on a refresh: the presented token is consumed in
// the same critical section that checks it, so of two concurrent refreshes
// with one token exactly one succeeds and the other gets invalid_grant, as
// with a production IdP that rotates refresh tokens. A replayed token does not
// revoke the rest of the family (the library's example does not either).
//
// Each refresh token lives refreshTTL from its own issue (a sliding window).
func (s *devStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	g, err := s.grantFor(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" {
		old, ok := s.refresh[current]
		if !ok || time.Now().After(old.expires) {
			delete(s.refresh, current)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid, expired or already used")
		}
		delete(s.refresh, current)
		delete(s.access, old.access)
	}
	rt := &refreshRecord{
		token:   randomID(),
		grant:   g,
		expires: time.Now().Add(s.refreshTTL),
	}
	a := s.newAccess(g, req.GetScopes(), rt.token)
	rt.access = a.id
	s.refresh[rt.token] = rt
	return a.id, rt.token, a.expires, nil
}

// refreshRequest is what the library sees of a refresh token while it
// validates a refresh: the grant it belongs to, with the scopes of this
// request (a client may ask for fewer).
type refreshRequest struct {
	grant  grant
	scopes []string
}

func (r *refreshRequest) GetAMR() []string       { return r.grant.amr }
func (r *refreshRequest) GetAudience() []string  { return r.grant.audience }
func (r *refreshRequest) GetAuthTime() time.Time { return r.grant.authTime }
func (r *refreshRequest) GetClientID() string    { return r.grant.clientID }
func (r *refreshRequest) GetScopes() []string    { return r.scopes }
func (r *refreshRequest) GetSubject() string     { return r.grant.subject }
func (r *refreshRequest) SetCurrentScopes(scopes []string) {
	r.scopes = scopes
}

// TokenRequestByRefreshToken looks a refresh token up; an unknown, revoked,
// already rotated or expired token is refused, which the library answers
// with invalid_grant.
func (s *devStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return nil, errors.New("unknown refresh token")
	}
	if time.Now().After(rt.expires) {
		delete(s.refresh, token)
		return nil, errors.New("refresh token expired")
	}
	return &refreshRequest{grant: rt.grant, scopes: slices.Clone(rt.grant.scopes)}, nil
}

// revokeWhere deletes every refresh token, and marks every access token, that
// match; the caller holds s.mu. It returns how many refresh tokens it revoked.
func (s *devStorage) revokeWhere(match func(g grant) bool) int {
	n := 0
	for k, rt := range s.refresh {
		if match(rt.grant) {
			delete(s.refresh, k)
			n++
		}
	}
	for k, a := range s.access {
		if match(a.grant) {
			delete(s.access, k)
		}
	}
	return n
}

// TerminateSession ends the given user's grants with that client. The
// library calls TerminateSessionFromRequest instead; this exists for the
// op.Storage interface.
func (s *devStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeWhere(func(g grant) bool { return g.subject == userID && g.clientID == clientID })
	return nil
}

// TerminateSessionFromRequest handles RP-initiated logout: the login named by
// the id_token_hint's `sid` ends, with its refresh tokens, as an IdP's
// browser session (and the online refresh tokens bound to it) would. Other
// logins of the same user (other browsers) stay alive.
func (s *devStorage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims != nil && req.IDTokenHintClaims.SessionID != "" {
		sid := req.IDTokenHintClaims.SessionID
		s.mu.Lock()
		s.revokeWhere(func(g grant) bool { return g.sid == sid && g.subject == req.UserID })
		s.mu.Unlock()
	}
	return req.RedirectURI, nil
}

// GetRefreshTokenInfo tells the revocation endpoint whether a token is one of
// our refresh tokens.
func (s *devStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.grant.subject, rt.token, nil
}

// RevokeToken implements RFC 7009 for refresh tokens (the token and the
// access token issued with it) and access tokens (by jti: JWTs stay valid for
// whoever verifies them offline, but userinfo and introspection refuse them).
// Unknown tokens are not an error (RFC 7009 section 2.2).
func (s *devStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.access[tokenOrID]; ok {
		if a.grant.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.access, tokenOrID)
		return nil
	}
	if rt, ok := s.refresh[tokenOrID]; ok {
		if rt.grant.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refresh, tokenOrID)
		delete(s.access, rt.access)
	}
	return nil
}

// revokeSubject implements OP.RevokeSubject.
func (s *devStorage) revokeSubject(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeWhere(func(g grant) bool { return g.subject == subject })
}

// activeRefreshTokens implements OP.ActiveRefreshTokens.
func (s *devStorage) activeRefreshTokens(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	n := 0
	for _, rt := range s.refresh {
		if rt.grant.subject == subject && now.Before(rt.expires) {
			n++
		}
	}
	return n
}

// refreshTokenActive implements OP.RefreshTokenActive.
func (s *devStorage) refreshTokenActive(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	return ok && time.Now().Before(rt.expires)
}

// liveAccess returns a copy of an access token's record if it is still valid.
func (s *devStorage) liveAccess(id string) (accessRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[id]
	if !ok || time.Now().After(a.expires) {
		return accessRecord{}, false
	}
	return *a, true
}

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
// many IdPs do, so the demo API can show which login a call comes from.
func (s *devStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, scopes []string) (map[string]any, error) {
	claims := map[string]any{"scope": strings.Join(req.GetScopes(), " ")}
	if sid := s.sidOf(req); sid != "" {
		claims["sid"] = sid
	}
	return claims, nil
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

// client is a confidential web client of the BFF kind: code flow with
// client_secret_basic or client_secret_post, refresh tokens, JWT access
// tokens, and exact redirect and post-logout redirect URIs.
type client struct {
	id                  string
	secret              string
	redirectURIs        []string
	postLogoutRedirects []string
	loginURL            func(string) string
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return c.postLogoutRedirects }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod says basic; the library also accepts client_secret_post for
// such a client, because the OP enables AuthMethodPost.
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string { return c.loginURL(id) }

// AccessTokenType is JWT so that the demo API can verify tokens against the
// JWKS, like most APIs behind a BFF do.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return time.Hour }

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
func (c *client) ClockSkew() time.Duration             { return 0 }

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
