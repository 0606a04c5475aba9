package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"time"

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
// the BFF uses (client credentials for the configured clients is
// implemented in clientcredentials.go).
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

	mu   sync.Mutex
	sids map[string]string    // auth request id -> sid, set when the user logs in
	acrs map[string]*acrLogin // auth request id -> requested and achieved acr
	// browsers are the browsers' earlier sign-ins, by their OP cookie.
	browsers map[string]browserLogin
	// authTimeShift moves reported auth_time back (SetAuthTimeShift).
	authTimeShift time.Duration
	access        map[string]*accessRecord // by jti; lets userinfo, introspection and revocation see access tokens
	refresh       map[string]*refreshRecord
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
	acr      string
	// resources are those of the authorization request (RFC 8707): a
	// refresh may ask for a token for one of them.
	resources []string
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
		acrs:           map[string]*acrLogin{},
		browsers:       map[string]browserLogin{},
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

// DeleteAuthRequest also forgets the login's sid mapping: from now on the
// sid lives in the tokens' grant.
func (s *devStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	s.mu.Lock()
	delete(s.sids, id)
	delete(s.acrs, id)
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
	return s.wrapAuthRequest(ar), nil
}

// grantFor builds the grant of a token request: a finished authorization
// request (code flow) or a refresh request (rotation).
func (s *devStorage) grantFor(req op.TokenRequest) (grant, error) {
	switch r := req.(type) {
	case *devAuthRequest:
		s.mu.Lock()
		sid, ok := s.sids[r.ID]
		s.mu.Unlock()
		if !ok {
			return grant{}, oidc.ErrInvalidGrant().WithDescription("login not completed")
		}
		return grant{
			sid:       sid,
			subject:   r.GetSubject(),
			clientID:  r.GetClientID(),
			audience:  r.GetAudience(),
			scopes:    slices.Clone(r.GetScopes()),
			authTime:  r.GetAuthTime(),
			amr:       r.GetAMR(),
			acr:       r.acr,
			resources: r.resources,
		}, nil
	case *refreshRequest:
		return r.grant, nil
	case op.TokenExchangeRequest:
		return exchangeGrant(r), nil
	case *clientCredentialsRequest:
		// The application's own token: no login, no sid.
		return grant{subject: r.clientID, clientID: r.clientID, audience: r.GetAudience(), scopes: r.scopes}, nil
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
// request (a client may ask for fewer), and the resource it asks a token
// for, if any.
type refreshRequest struct {
	grant    grant
	scopes   []string
	resource string
}

func (r *refreshRequest) GetAMR() []string { return r.grant.amr }

// GetAudience is the access token's audience: the resource asked for, or
// the grant's.
func (r *refreshRequest) GetAudience() []string {
	if r.resource != "" {
		return []string{r.resource}
	}
	return r.grant.audience
}
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
	resources, ok := requestedResources(ctx)
	if !ok || len(resources) > 1 || (len(resources) == 1 && !slices.Contains(rt.grant.resources, resources[0])) {
		return nil, errors.New("resource is not one the grant covers")
	}
	req := &refreshRequest{grant: rt.grant, scopes: slices.Clone(rt.grant.scopes)}
	if len(resources) == 1 {
		req.resource = resources[0]
	}
	return req, nil
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
		s.forgetLogin(sid)
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
