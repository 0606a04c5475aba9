package devstack

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is an account of the dev OP. Subject is the stable `sub` claim;
// Username is what the login form asks for.
type User struct{ Subject, Username, Password, Name, Email string }

// Client is a confidential OAuth client (the BFF). Redirect URIs and
// post-logout redirect URIs must match exactly, as at a production IdP.
type Client struct {
	ID, Secret                           string
	RedirectURIs, PostLogoutRedirectURIs []string
}

// OPConfig configures one OP instance. The zero value is usable: a free port
// on 127.0.0.1, the demo users, and no clients.
type OPConfig struct {
	// Addr is the listen address; "127.0.0.1:0" (the default) picks a free
	// port. An unspecified host (":9000", "0.0.0.0:9000") listens everywhere
	// and names the issuer after 127.0.0.1.
	Addr string
	// Issuer overrides the issuer URL, for an OP reached under another name
	// than its listen address (a container, a reverse proxy). It may have a
	// path; the OP then serves under that path. It must be exactly the
	// string the BFF is configured with.
	Issuer string
	// AccessTokenLifetime defaults to 60s; tests use 2-3s to see refreshes.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime defaults to 24h. Every rotation starts a new
	// lifetime (a sliding window).
	RefreshTokenLifetime time.Duration
	Clients              []Client
	// TokenExchange offers RFC 8693 token exchange (access token for an
	// access token with another audience) to the clients; off, discovery
	// does not list the grant.
	TokenExchange bool
	// Users defaults to DemoUsers(); the login page then shows their
	// passwords, which are public anyway.
	Users []User
}

// DemoUsers returns the demo accounts. Subjects differ from usernames on
// purpose, so that code using one where it needs the other fails visibly.
func DemoUsers() []User {
	return []User{
		{Subject: "user-alice", Username: "alice", Password: "alice-pass", Name: "Alice Anderson", Email: "alice@example.com"},
		{Subject: "user-bob", Username: "bob", Password: "bob-pass", Name: "Bob Brown", Email: "bob@example.com"},
	}
}

// Paths of the OP's own pages, relative to the issuer. The OIDC endpoints are
// the library's defaults (see discovery).
const (
	loginPath     = "/login"
	loggedOutPath = "/logged-out"
)

// OP is a running OpenID Provider. All methods are safe for concurrent use.
type OP struct {
	issuer    string
	prefix    string // path of the issuer, "" at the root
	handler   http.Handler
	provider  *op.Provider
	storage   *devStorage
	tokenPath string

	tokenRequests atomic.Int64
	refreshGrants atomic.Int64
	tokenDown     atomic.Bool
	grantsMu      sync.Mutex
	grants        map[string]int64 // requests by grant_type

	srv       *http.Server
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed by Close; ends the context watcher
}

// StartOP listens on cfg.Addr, serves the OP, and returns once it accepts
// connections (the listener is bound before StartOP returns, so the first
// request cannot race the start). The OP stops when ctx is done or Close is
// called, whichever comes first.
func StartOP(ctx context.Context, cfg OPConfig) (*OP, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devstack: listen on %s: %w", addr, err)
	}
	if cfg.Issuer == "" {
		tcp := ln.Addr().(*net.TCPAddr)
		host := tcp.IP
		if host.IsUnspecified() {
			host = net.IPv4(127, 0, 0, 1)
		}
		cfg.Issuer = "http://" + net.JoinHostPort(host.String(), fmt.Sprint(tcp.Port))
	}
	o, err := NewOP(cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	o.srv = &http.Server{
		Handler:           o.handler,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = o.srv.Serve(ln) }()
	go func() {
		select {
		case <-ctx.Done():
			_ = o.Close()
		case <-o.closed:
		}
	}()
	return o, nil
}

// NewOP builds an OP without a listener, for a caller that serves Handler
// itself (e.g. on the same port as the BFF). cfg.Issuer is required and must
// be the URL at which Handler is reachable; cfg.Addr is ignored.
func NewOP(cfg OPConfig) (*OP, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" ||
		iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("devstack: Issuer %q must be an absolute http(s) URL without query", cfg.Issuer)
	}
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = 60 * time.Second
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = 24 * time.Hour
	}
	showPasswords := cfg.Users == nil
	if cfg.Users == nil {
		cfg.Users = DemoUsers()
	}
	for _, c := range cfg.Clients {
		if c.ID == "" || c.Secret == "" {
			return nil, errors.New("devstack: every Client needs an ID and a Secret")
		}
	}

	o := &OP{
		issuer: cfg.Issuer,
		prefix: strings.TrimSuffix(iss.Path, "/"),
		closed: make(chan struct{}),
	}
	o.storage = newDevStorage(cfg.Users, cfg.Clients, cfg.AccessTokenLifetime, cfg.RefreshTokenLifetime,
		func(authRequestID string) string {
			return o.prefix + loginPath + "?" + url.Values{"authRequestID": {authRequestID}}.Encode()
		})

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	config := &op.Config{
		CryptoKey:   cryptoKey, // encrypts the library's opaque tokens; fresh per OP
		CryptoKeyId: randomID()[:8],
		// Used by end_session when no (valid) post_logout_redirect_uri is given.
		DefaultLogoutRedirectURI: o.prefix + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedClaims:          append(slices.Clone(op.DefaultSupportedClaims), "sid"),
	}
	// WithAllowInsecure is needed for an http:// issuer (127.0.0.1 in dev and
	// tests).
	var st op.Storage = o.storage
	if cfg.TokenExchange {
		st = exchangeStorage{o.storage}
	}
	provider, err := op.NewProvider(config, st, op.StaticIssuer(cfg.Issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("devstack: create OP: %w", err)
	}
	o.provider = provider
	o.tokenPath = provider.TokenEndpoint().Relative()

	mux := http.NewServeMux()
	lf := &loginForm{
		op:            o,
		showPasswords: showPasswords,
		users:         cfg.Users,
		tmpl:          template.Must(template.New("login").Parse(loginPage)),
	}
	mux.HandleFunc("GET "+loginPath, lf.show)
	// The library builds the callback URL from the issuer in the request
	// context, which only its own routes and this interceptor set.
	mux.Handle("POST "+loginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(lf.submit))
	mux.HandleFunc("GET "+loggedOutPath, loggedOut)
	mux.Handle("/", provider)

	var h http.Handler = o.tokenGate(o.resourceParams(mux))
	if o.prefix != "" {
		h = http.StripPrefix(o.prefix, h)
	}
	o.handler = h
	return o, nil
}

// tokenGate counts token endpoint requests and injects the IdP outage. It
// sits in front of the library so that every request that reaches the token
// endpoint is counted, also those the library then refuses and those refused
// while the endpoint is down.
func (o *OP) tokenGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != o.tokenPath {
			next.ServeHTTP(w, r)
			return
		}
		o.tokenRequests.Add(1)
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			// The parsed form stays on the request; the library reads it
			// from there (ParseForm does not parse twice).
			if err := r.ParseForm(); err == nil {
				gt := r.PostForm.Get("grant_type")
				if gt == string(oidc.GrantTypeRefreshToken) {
					o.refreshGrants.Add(1)
				}
				o.grantsMu.Lock()
				if o.grants == nil {
					o.grants = map[string]int64{}
				}
				if _, known := o.grants[gt]; known || len(o.grants) < 16 { // bounded: the form is the client's
					o.grants[gt]++
				}
				o.grantsMu.Unlock()
			}
		}
		if o.tokenDown.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"token endpoint is down (fault injection)"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loggedOut(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("<!doctype html><title>Signed out</title><p>You have been signed out of the dev identity provider.</p>\n"))
}

// Issuer returns the issuer URL exactly as discovery and the tokens state it.
func (o *OP) Issuer() string { return o.issuer }

// Handler serves the OP (discovery, OIDC endpoints, login form). StartOP
// serves it already; NewOP callers mount it themselves.
func (o *OP) Handler() http.Handler { return o.handler }

// Close stops the listener started by StartOP and closes open connections.
// It is idempotent.
func (o *OP) Close() error {
	o.closeOnce.Do(func() {
		close(o.closed)
		if o.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := o.srv.Shutdown(ctx); err != nil {
				o.closeErr = o.srv.Close()
			}
		}
	})
	return o.closeErr
}

// RefreshGrants counts grant_type=refresh_token requests that reached the
// token endpoint, successful or not (including those refused while the
// endpoint was down). Tests use it to see how many refreshes a BFF made.
func (o *OP) RefreshGrants() int64 { return o.refreshGrants.Load() }

// GrantRequests counts the token endpoint requests of one grant type
// (e.g. "client_credentials"), successful or not.
func (o *OP) GrantRequests(grantType string) int64 {
	o.grantsMu.Lock()
	defer o.grantsMu.Unlock()
	return o.grants[grantType]
}

// TokenRequests counts every request to the token endpoint.
func (o *OP) TokenRequests() int64 { return o.tokenRequests.Load() }

// SetTokenEndpointDown simulates an IdP outage: while down, the token
// endpoint answers 503 temporarily_unavailable (requests are still counted).
// Discovery, JWKS and the other endpoints keep working, so only refreshes
// and code exchanges fail.
func (o *OP) SetTokenEndpointDown(down bool) { o.tokenDown.Store(down) }

// RevokeSubject revokes every grant of a user, as an admin at the IdP would
// (password reset, account locked): all of the user's refresh tokens stop
// working, so the BFF's next refresh gets invalid_grant. Access tokens
// already issued stay valid until they expire for anyone verifying them
// offline, as with any JWT; userinfo and introspection refuse them at once.
func (o *OP) RevokeSubject(subject string) { o.storage.revokeSubject(subject) }

// ActiveRefreshTokens returns how many refresh tokens of the user the OP
// would still accept. After a BFF logout or kill it should drop by one.
func (o *OP) ActiveRefreshTokens(subject string) int { return o.storage.activeRefreshTokens(subject) }

// RefreshTokenActive reports whether the OP would accept this refresh token.
func (o *OP) RefreshTokenActive(token string) bool { return o.storage.refreshTokenActive(token) }

// SignLogoutToken signs claims as a JWT with the OP's current signing key
// (the key the JWKS publishes), with header typ "logout+jwt" as the
// Back-Channel Logout spec recommends. The claims are signed as given, so
// tests can craft valid and invalid logout tokens; LogoutTokenClaims builds a
// valid set.
func (o *OP) SignLogoutToken(claims map[string]any) (string, error) {
	key, err := o.storage.SigningKey(context.Background())
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: key.SignatureAlgorithm(),
		Key:       &jose.JSONWebKey{Key: key.Key(), KeyID: key.ID()},
	}, (&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// LogoutTokenClaims returns the claims of a valid back-channel logout token
// from this OP for the given client, naming the user, the login (sid), or
// both (pass "" to leave one out): iss, aud, iat, exp (in two minutes), a
// fresh jti, and the back-channel logout event. Tests change or delete
// entries to make invalid tokens.
func (o *OP) LogoutTokenClaims(clientID, subject, sid string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":    o.issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    randomID()[:22],
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if subject != "" {
		c["sub"] = subject
	}
	if sid != "" {
		c["sid"] = sid
	}
	return c
}
