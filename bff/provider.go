package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Provider is what the BFF knows of its OpenID Provider after discovery.
type Provider struct {
	// Issuer is the verified issuer string.
	Issuer string
	// OAuth2 is the confidential client: endpoints, credentials, scopes and
	// redirect URL.
	OAuth2 oauth2.Config
	// IDTokens verifies ID tokens and logout tokens for our client id.
	IDTokens *oidc.IDTokenVerifier
	// keys is the key set behind IDTokens; it knows which key ids are real.
	keys *knownKeys
	// EndSessionURL is the RP-initiated logout endpoint, or "".
	EndSessionURL string
	// RevocationURL is the RFC 7009 endpoint, or "".
	RevocationURL string
	// IssParameterSupported: the IdP sends RFC 9207 "iss" on the callback,
	// so the BFF requires and checks it (a mix-up attack defence).
	IssParameterSupported bool
	// GrantTypes are the grant types the IdP's discovery lists; a
	// token=exchange route needs the token-exchange grant among them.
	GrantTypes []string
	// HTTPClient is used for every call to the IdP.
	HTTPClient *http.Client
}

// providerMetadata is the part of the discovery document that go-oidc does
// not expose as fields.
type providerMetadata struct {
	JWKSURI               string   `json:"jwks_uri"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	IssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	GrantTypes            []string `json:"grant_types_supported"`
}

// Discover loads the IdP's discovery document. An unreachable IdP is retried
// with capped exponential backoff until ctx ends, each failure logged, so a
// BFF that starts before its IdP waits rather than crash-looping.
func Discover(ctx context.Context, logger *slog.Logger, cfg *Config, client *http.Client) (*Provider, error) {
	if client == nil {
		client = newIdPClient()
	}
	ctx = oidc.ClientContext(ctx, client)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		p, err := oidc.NewProvider(ctx, cfg.Issuer)
		if err == nil {
			return newProvider(cfg, p, client)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("discover issuer %s: %w", cfg.Issuer, errors.Join(err, ctx.Err()))
		}
		logger.LogAttrs(ctx, slog.LevelWarn, "issuer discovery failed; retrying",
			slog.String("issuer", cfg.Issuer), slog.Int("attempt", attempt),
			slog.Duration("retry_in", backoff), slog.String("error", err.Error()))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("discover issuer %s: %w", cfg.Issuer, errors.Join(err, ctx.Err()))
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func newProvider(cfg *Config, p *oidc.Provider, client *http.Client) (*Provider, error) {
	var meta providerMetadata
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery metadata: %w", err)
	}
	endpoint := p.Endpoint()
	// Client credentials go in the Authorization header (client_secret_basic,
	// the method every IdP must support). Setting it explicitly avoids
	// x/oauth2's auto-detection, which retries a failed call with the other
	// style and so sends a single-use code or refresh token twice.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	algs := meta.SigningAlgs
	if len(algs) == 0 {
		algs = []string{oidc.RS256} // the default of OpenID Connect Discovery
	}
	keys := newKnownKeys(oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), meta.JWKSURI), algs)
	return &Provider{
		Issuer: cfg.Issuer,
		OAuth2: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.callbackURL(),
			Scopes:       cfg.Scopes,
		},
		IDTokens:              oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: algs}),
		keys:                  keys,
		EndSessionURL:         meta.EndSessionEndpoint,
		RevocationURL:         meta.RevocationEndpoint,
		IssParameterSupported: meta.IssParameterSupported,
		GrantTypes:            meta.GrantTypes,
		HTTPClient:            client,
	}, nil
}

// clientContext makes x/oauth2 and go-oidc use the provider's HTTP client.
func (p *Provider) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.HTTPClient)
}

// newIdPClient is the client for every call to the IdP. Idle connections
// are dropped after a few seconds: many IdPs (Node's default among them)
// close idle connections after five, and a token request sent on a
// connection the server is closing fails with EOF — Go does not retry a
// POST, and the user would see a 503 for nothing. retryStaleConn covers
// the servers that close even sooner.
func newIdPClient() *http.Client {
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     4 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &retryStaleConn{next: transport}}
}

// retryStaleConn sends a request once more when it failed on a reused
// connection before any response arrived: the server closed that idle
// connection as the request went out. Resending is no riskier than the
// user's next request, which would send the same refresh token again.
type retryStaleConn struct{ next http.RoundTripper }

func (t *retryStaleConn) RoundTrip(req *http.Request) (*http.Response, error) {
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
	resp, err := t.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err == nil || !reused || req.Context().Err() != nil || (req.Body != nil && req.GetBody == nil) {
		return resp, err
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		body, berr := req.GetBody()
		if berr != nil {
			return nil, err
		}
		retry.Body = body
	}
	return t.next.RoundTrip(retry)
}
