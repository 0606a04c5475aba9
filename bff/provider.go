package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	// EndSessionURL is the RP-initiated logout endpoint, or "".
	EndSessionURL string
	// RevocationURL is the RFC 7009 endpoint, or "".
	RevocationURL string
	// IssParameterSupported: the IdP sends RFC 9207 "iss" on the callback,
	// so the BFF requires and checks it (a mix-up attack defence).
	IssParameterSupported bool
	// HTTPClient is used for every call to the IdP.
	HTTPClient *http.Client
}

// providerMetadata is the part of the discovery document that go-oidc does
// not expose as fields.
type providerMetadata struct {
	EndSessionEndpoint    string `json:"end_session_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	IssParameterSupported bool   `json:"authorization_response_iss_parameter_supported"`
}

// Discover loads the IdP's discovery document. An unreachable IdP is retried
// with capped exponential backoff until ctx ends, each failure logged, so a
// BFF that starts before its IdP waits rather than crash-looping.
func Discover(ctx context.Context, logger *slog.Logger, cfg *Config, client *http.Client) (*Provider, error) {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
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
	return &Provider{
		Issuer: cfg.Issuer,
		OAuth2: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.callbackURL(),
			Scopes:       cfg.Scopes,
		},
		IDTokens:              p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		EndSessionURL:         meta.EndSessionEndpoint,
		RevocationURL:         meta.RevocationEndpoint,
		IssParameterSupported: meta.IssParameterSupported,
		HTTPClient:            client,
	}, nil
}

// clientContext makes x/oauth2 and go-oidc use the provider's HTTP client.
func (p *Provider) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.HTTPClient)
}
