package bff

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// This file is the route table's configuration: BFF_ROUTES entries, their
// options, and their validation.

// Route is one allowlisted API route: requests whose path starts with Prefix
// (whole segments) are proxied to Upstream.
type Route struct {
	// Prefix is a path ending in "/", e.g. "/api/".
	Prefix string
	// Upstream is the fixed base URL the requests go to.
	Upstream *url.URL
	// Token says which token the upstream receives (option token=):
	// TokenUser (the user's access token; 401 without a session),
	// TokenOptional (the user's when signed in, none otherwise), TokenClient
	// (the BFF's own client-credentials token, shared by every session, for
	// APIs called as the application), TokenExchange (a token for Audience
	// obtained by RFC 8693 token exchange with the user's access token as
	// the subject token; 401 without a session) or TokenNone (public route,
	// no token).
	Token string
	// Methods, when not empty, are the only methods allowed.
	Methods []string
	// StripPrefix removes Prefix (keeping its last "/") before the request
	// is sent upstream.
	StripPrefix bool
	// ACR, when not empty, are the authentication context classes the
	// route accepts (option acr=a|b): a session signed in with another
	// gets 401 step_up_required before anything is proxied. Only with
	// token=user.
	ACR []string
	// Resource (option resource=URI, RFC 8707) and Scopes (option
	// scope=a+b) give the route a token of its own instead of the
	// session's access token: one for that resource, or down-scoped to
	// those scopes, obtained with the refresh-token grant and kept sealed in
	// the session per (resource, scopes). Every resource of a user route is
	// asked for at authorization. On a token=client route they go into the
	// client-credentials request.
	Resource string
	Scopes   []string
	// Audience is the audience= option of a token=exchange route: the
	// token exchange asks for a token for it.
	Audience string
}

// ownToken reports whether the route carries a token of its own rather
// than the session's access token.
func (r Route) ownToken() bool {
	return r.Resource != "" || len(r.Scopes) > 0 || r.Token == TokenExchange
}

// tokenKey names the route's own token within its session: routes with the
// same grant, audience, resource and scopes share it.
func (r Route) tokenKey() string {
	scopes := slices.Sorted(slices.Values(r.Scopes))
	key := r.Resource + " " + strings.Join(slices.Compact(scopes), " ")
	if r.Token == TokenExchange {
		key = "exchange " + r.Audience + " " + key
	}
	return key
}

// resources lists the resources of the routes that carry the user's token,
// each once: they are asked for at authorization (RFC 8707).
func (c *Config) resources() []string {
	var out []string
	for _, r := range c.Routes {
		if r.Resource != "" && (r.Token == TokenUser || r.Token == TokenOptional) && !slices.Contains(out, r.Resource) {
			out = append(out, r.Resource)
		}
	}
	return out
}

// Route token modes.
const (
	TokenUser     = "user"
	TokenNone     = "none"
	TokenOptional = "optional"
	TokenClient   = "client"
	TokenExchange = "exchange"
)

// routeTokens are the valid token= values.
var routeTokens = []string{TokenUser, TokenOptional, TokenClient, TokenExchange, TokenNone}

func (r Route) validate() error {
	switch {
	case len(r.Prefix) < 3 || !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/"):
		return fmt.Errorf("prefix %q must start and end with / and name a path, e.g. /api/", r.Prefix)
	case strings.Trim(r.Prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/") != "" || ambiguousPath(r.Prefix) != "":
		return fmt.Errorf("prefix %q may hold only letters, digits, - . _ ~ and single slashes", r.Prefix)
	case r.Upstream == nil || r.Upstream.Host == "" || (r.Upstream.Scheme != "http" && r.Upstream.Scheme != "https"):
		return fmt.Errorf("upstream of %s must be an absolute http(s) URL", r.Prefix)
	case !slices.Contains(routeTokens, r.Token):
		return fmt.Errorf("token of %s must be one of %s", r.Prefix, strings.Join(routeTokens, ", "))
	}
	for _, m := range r.Methods {
		if !isToken(m) {
			return fmt.Errorf("methods of %s: %q is not a method name", r.Prefix, m)
		}
	}
	for _, v := range r.ACR {
		if !validACR(v) {
			return fmt.Errorf("acr of %s: %q is not a printable token", r.Prefix, v)
		}
	}
	if len(r.ACR) > maxACRValues {
		return fmt.Errorf("acr of %s: at most %d values", r.Prefix, maxACRValues)
	}
	if len(r.ACR) > 0 && r.Token != TokenUser {
		return fmt.Errorf("acr of %s needs token=user (it is about the user's sign-in)", r.Prefix)
	}
	if r.Resource != "" {
		u, err := url.Parse(r.Resource)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r.Resource, "#") || len(r.Resource) > 512 || strings.ContainsAny(r.Resource, " ,;|\"") {
			return fmt.Errorf("resource of %s must be an absolute URI without a fragment (RFC 8707)", r.Prefix)
		}
	}
	for _, sc := range r.Scopes {
		if !validScope(sc) {
			return fmt.Errorf("scope of %s: %q is not a scope token", r.Prefix, sc)
		}
	}
	if r.ownToken() && r.Token == TokenNone {
		return fmt.Errorf("resource and scope of %s need a token (token=user, optional or client)", r.Prefix)
	}
	switch {
	case r.Token == TokenExchange && r.Audience == "":
		return fmt.Errorf("token=exchange of %s needs audience=", r.Prefix)
	case r.Token != TokenExchange && r.Audience != "":
		return fmt.Errorf("audience of %s is for token=exchange only", r.Prefix)
	case r.Audience != "" && (len(r.Audience) > 512 || strings.ContainsAny(r.Audience, " \"\\") || !isPrintable(r.Audience)):
		return fmt.Errorf("audience of %s must be a printable name or URI without spaces or quotes", r.Prefix)
	}
	return nil
}

// isPrintable reports whether s is printable ASCII.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validScope reports whether s is an OAuth scope token (RFC 6749 section
// 3.3) that also fits BFF_ROUTES (no ',', ';' or '|').
func validScope(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"\,;|`, c) >= 0 {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the
// syntax of header names and methods.
func isToken(s string) bool {
	return s != "" && strings.Trim(s, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

// ParseRoutes reads BFF_ROUTES: comma-separated entries of the form
//
//	/api/=http://127.0.0.1:9000[;token=user|optional|client|none][;methods=GET|POST][;strip][;acr=A|B]
//	                           [;resource=URI][;scope=A+B]
//	/x/=http://127.0.0.1:9001;token=exchange;audience=AUD
func ParseRoutes(s string) ([]Route, error) {
	var routes []Route
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ";")
		prefix, upstream, ok := strings.Cut(parts[0], "=")
		if !ok {
			return nil, fmt.Errorf("route %q: want PREFIX=UPSTREAM", entry)
		}
		u, err := url.Parse(strings.TrimSpace(upstream))
		if err != nil {
			return nil, fmt.Errorf("route %q: upstream: %w", entry, err)
		}
		r := Route{Prefix: strings.TrimSpace(prefix), Upstream: u, Token: TokenUser}
		for _, opt := range parts[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
			switch k {
			case "token":
				r.Token = v
			case "methods":
				for _, m := range strings.Split(v, "|") {
					r.Methods = append(r.Methods, strings.ToUpper(strings.TrimSpace(m)))
				}
			case "strip":
				r.StripPrefix = true
			case "acr":
				r.ACR = strings.Split(v, "|")
			case "resource":
				r.Resource = v
			case "audience":
				r.Audience = v
			case "scope":
				r.Scopes = strings.Fields(strings.NewReplacer("|", " ", "+", " ").Replace(v))
				if len(r.Scopes) == 0 {
					return nil, fmt.Errorf("route %q: scope= names no scope", entry)
				}
			default:
				return nil, fmt.Errorf("route %q: unknown option %q", entry, k)
			}
		}
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("route %q: %w", entry, err)
		}
		routes = append(routes, r)
	}
	return routes, nil
}
