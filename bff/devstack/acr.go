package devstack

import (
	"context"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Authentication context classes of the dev OP. A sign-in is
// ACRPassword; a sign-in whose authorization request asked for
// ACRConfirmed (acr_values) is ACRConfirmed: the user entered the password
// again, just now, because the application asked them to confirm it is
// them (step-up, RFC 9470). Any other requested value is not supported and
// the sign-in gets ACRPassword, as an OP that cannot satisfy acr_values
// answers; the client must check.
//
// The ID token carries acr and auth_time; JWT access tokens carry them too,
// so an API can ask for a step-up when they do not suffice.
const (
	ACRPassword  = "urn:devstack:acr:password"
	ACRConfirmed = "urn:devstack:acr:confirmed"
)

// acrLogin is what the dev OP remembers of an authorization request until
// its code is redeemed.
type acrLogin struct {
	requested []string // acr_values of the authorization request
	acr       string   // set when the user signed in
	resources []string // resource parameters of the authorization request (RFC 8707)
}

// CreateAuthRequest remembers the requested acr_values and resources of
// each request.
func (s *devStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	resources, ok := requestedResources(ctx)
	if !ok {
		return nil, oidc.ErrInvalidRequest().WithDescription("resource must be an absolute URI without a fragment")
	}
	ar, err := s.exampleStorage.CreateAuthRequest(ctx, req, userID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.acrs[ar.GetID()] = &acrLogin{requested: slices.Clone(req.ACRValues), resources: resources}
	s.mu.Unlock()
	return ar, nil
}

// signedIn records the acr of a completed sign-in; the caller holds s.mu.
func (s *devStorage) signedIn(authRequestID string) {
	a := s.acrs[authRequestID]
	if a == nil {
		a = &acrLogin{}
		s.acrs[authRequestID] = a
	}
	a.acr = ACRPassword
	if slices.Contains(a.requested, ACRConfirmed) {
		a.acr = ACRConfirmed
	}
}

// devAuthRequest is an authorization request as the code exchange sees
// it: with the acr of its sign-in, and its auth_time as the OP reports it.
type devAuthRequest struct {
	*storage.AuthRequest
	acr       string
	authTime  time.Time
	resources []string
}

func (r *devAuthRequest) GetACR() string         { return r.acr }
func (r *devAuthRequest) GetAuthTime() time.Time { return r.authTime }

// wrapAuthRequest gives an authorization request its acr and reported
// auth_time (shifted back by SetAuthTimeShift's fault, if set).
func (s *devStorage) wrapAuthRequest(ar op.AuthRequest) op.AuthRequest {
	r, ok := ar.(*storage.AuthRequest)
	if !ok {
		return ar
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &devAuthRequest{AuthRequest: r, authTime: r.GetAuthTime().Add(-s.authTimeShift)}
	if a := s.acrs[r.ID]; a != nil {
		w.acr, w.resources = a.acr, a.resources
	}
	return w
}

// SetAuthTimeShift makes the OP report every later sign-in's auth_time d
// earlier than it happened — the fault of an OP that reuses an old
// authentication without honouring max_age — so tests can see that a
// client refuses it.
func (o *OP) SetAuthTimeShift(d time.Duration) {
	o.storage.mu.Lock()
	o.storage.authTimeShift = d
	o.storage.mu.Unlock()
}
