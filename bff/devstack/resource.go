package devstack

import (
	"context"
	"net/http"
	"net/url"
	"slices"
)

// Resource indicators (RFC 8707), which the library does not implement:
// the resource parameters of an authorization request are remembered with
// its grant, and a refresh-token grant with a resource parameter naming one
// of them issues an access token whose audience is that resource alone. A
// resource the grant does not cover is refused (the library answers
// invalid_grant).
//
// The library hands the parameters of neither request to the storage, so
// resourceParams puts them into the request's context, where
// CreateAuthRequest and TokenRequestByRefreshToken find them.

type resourceKey struct{}

// resourceParams stashes the resource parameters of authorization and
// token requests in the request's context.
func (o *OP) resourceParams(next http.Handler) http.Handler {
	authorizePath := o.provider.AuthorizationEndpoint().Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resources []string
		switch r.URL.Path {
		case authorizePath:
			resources = r.URL.Query()["resource"]
		case o.tokenPath:
			if r.Method == http.MethodPost && r.ParseForm() == nil {
				resources = r.PostForm["resource"]
			}
		}
		if len(resources) > 0 {
			r = r.WithContext(context.WithValue(r.Context(), resourceKey{}, resources))
		}
		next.ServeHTTP(w, r)
	})
}

// requestedResources returns the valid resource parameters of the request
// behind ctx, and false if any is not an absolute URI without a fragment.
func requestedResources(ctx context.Context) ([]string, bool) {
	rs, _ := ctx.Value(resourceKey{}).([]string)
	for _, r := range rs {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return nil, false
		}
	}
	return slices.Clone(rs), true
}
