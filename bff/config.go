package bff

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// Config is every setting of the BFF. Defaults come from DefaultConfig;
// cmd/bff fills it from flags and BFF_* environment variables; Validate
// reports every problem at once, each naming its setting.
type Config struct {
	// Issuer is the OpenID Provider's issuer URL, exactly as in its discovery
	// document (BFF_ISSUER).
	Issuer string
	// ClientID and ClientSecret are the BFF's confidential-client
	// credentials (BFF_CLIENT_ID, BFF_CLIENT_SECRET).
	ClientID     string
	ClientSecret string
	// PublicURL is the origin the browser uses, e.g. https://app.example.com
	// (BFF_PUBLIC_URL). The callback URL, cookie security and the CSRF origin
	// check derive from it.
	PublicURL string
	// Listen is the browser-facing listen address (BFF_LISTEN).
	Listen string
	// Prefix is the path under which the BFF's own endpoints live (BFF_PREFIX).
	Prefix string
	// Scopes requested at login (BFF_SCOPES). offline_access is what makes
	// most IdPs issue a refresh token.
	Scopes []string
	// PostLogoutURL is where the IdP sends the browser after logout
	// (BFF_POST_LOGOUT_URL). Default: the public URL.
	PostLogoutURL string
	// Keys seal tokens at rest and protect the login-state cookie
	// (BFF_KEYS). The first key is current; the others still open old data.
	Keys [][]byte
	// Routes is the allowlist of proxied API routes (BFF_ROUTES).
	Routes []Route

	// RefreshSkew: an access token that expires within this margin is
	// refreshed before the request is proxied (BFF_REFRESH_SKEW). The margin
	// used is the smaller of this and half the token's lifetime.
	RefreshSkew time.Duration
	// DefaultTokenLifetime is assumed for an access token whose response had
	// no expires_in, so that it is still refreshed (BFF_DEFAULT_TOKEN_LIFETIME).
	DefaultTokenLifetime time.Duration
	// IdleTimeout ends a session that has seen no request for this long
	// (BFF_IDLE_TIMEOUT).
	IdleTimeout time.Duration
	// AbsoluteTimeout ends every session this long after login, whatever
	// its activity (BFF_ABSOLUTE_TIMEOUT).
	AbsoluteTimeout time.Duration
	// TouchInterval throttles the last-seen write: a session's activity is
	// recorded at most once per interval, so proxied requests do not each
	// write to the store (BFF_TOUCH_INTERVAL).
	TouchInterval time.Duration
	// TombstoneTTL is how long the cause of an ended session is remembered,
	// so its cookie gets "session_ended" rather than "login_required".
	TombstoneTTL time.Duration
	// ExpiringNotice is how long before the absolute timeout the
	// session-expiring event is sent.
	ExpiringNotice time.Duration
	// CSRFHeader is the header every API call must carry with value "1"
	// (BFF_CSRF_HEADER).
	CSRFHeader string
	// UpstreamTimeout bounds waiting for an upstream's response headers
	// (BFF_UPSTREAM_TIMEOUT). Streams, once started, are not cut by it.
	UpstreamTimeout time.Duration
	// HeartbeatInterval is how often an open stream (a session-event stream,
	// or a proxied event stream or WebSocket) re-reads its session from the
	// store (BFF_HEARTBEAT_INTERVAL). Ending a session cuts its streams at
	// once through the store's events; if an instance misses one, the
	// stream is cut at its next heartbeat. Event streams also send a comment
	// on it, so idle-timeouts of proxies in between do not close them.
	HeartbeatInterval time.Duration
	// MaxStreams caps the open streams (session-event streams, proxied event
	// streams and WebSockets) of this instance (BFF_MAX_STREAMS); beyond it
	// a new one is refused with 503 and Retry-After.
	MaxStreams int
	// LoginRateLimit is how many sign-in starts (/bff/login), and as many
	// callbacks (/bff/callback), one client address may make per minute
	// (BFF_LOGIN_RATE_LIMIT); beyond it 429 with Retry-After. 0 turns the
	// limit off. Raise it when many users share one address the BFF sees
	// (set BFF_TRUSTED_PROXIES first, so that a proxy's address is not it).
	LoginRateLimit int
	// MaxSessionStreams caps the open streams of one session on this
	// instance (BFF_MAX_SESSION_STREAMS); beyond it a new one is refused
	// with 429, so one cookie cannot use up the instance's streams.
	MaxSessionStreams int
	// TrustedProxies lists the networks whose X-Forwarded-* headers are
	// believed (BFF_TRUSTED_PROXIES). Empty: none, the connection's address
	// is the client.
	TrustedProxies []netip.Prefix
	// LogRequests turns on the access log (BFF_ACCESS_LOG). It costs a few
	// percent of throughput at high request rates.
	LogRequests bool

	// TLSCert and TLSKey are PEM files holding the public listener's
	// certificate (chain) and private key (BFF_TLS_CERT, BFF_TLS_KEY), for
	// deployments without a TLS-terminating proxy in front. Both or neither;
	// with them the public URL must be https. The files are re-read when they
	// change, so a renewed certificate needs no restart.
	TLSCert string
	TLSKey  string
	// HSTS is the Strict-Transport-Security value sent with every public
	// response while the public URL is https (BFF_HSTS); "off" sends none.
	// Browsers then refuse plain http to this host, which is what keeps a
	// network attacker from stripping TLS from the first request.
	HSTS string
	// ShutdownTimeout bounds a graceful shutdown (BFF_SHUTDOWN_TIMEOUT): on
	// SIGTERM the listeners stop accepting, event streams are told
	// "server-shutdown", and requests in flight get this long to finish
	// before they are cut.
	ShutdownTimeout time.Duration

	// AdminListen is the admin API's listen address (BFF_ADMIN_LISTEN);
	// "off" disables it.
	AdminListen string
	// AdminToken authenticates admin API calls (BFF_ADMIN_TOKEN or
	// BFF_ADMIN_TOKEN_FILE).
	AdminToken string
	// AdminTLSCert and AdminTLSKey serve the admin listener over TLS, like
	// TLSCert and TLSKey (BFF_ADMIN_TLS_CERT, BFF_ADMIN_TLS_KEY). Optional.
	AdminTLSCert string
	AdminTLSKey  string

	// InsecureAllowHTTPIssuer accepts an http:// issuer (dev mode only).
	InsecureAllowHTTPIssuer bool
}

// DefaultConfig returns the defaults: secure, with short access tokens in mind.
func DefaultConfig() Config {
	return Config{
		Listen:               "127.0.0.1:8080",
		Prefix:               "/bff",
		Scopes:               []string{"openid", "profile", "email", "offline_access"},
		RefreshSkew:          30 * time.Second,
		DefaultTokenLifetime: 5 * time.Minute,
		IdleTimeout:          2 * time.Hour,
		AbsoluteTimeout:      12 * time.Hour,
		TouchInterval:        time.Minute,
		TombstoneTTL:         time.Hour,
		ExpiringNotice:       2 * time.Minute,
		CSRFHeader:           "X-CSRF",
		UpstreamTimeout:      30 * time.Second,
		HeartbeatInterval:    15 * time.Second,
		MaxStreams:           10000,
		LoginRateLimit:       300,
		MaxSessionStreams:    16,
		HSTS:                 DefaultHSTS,
		ShutdownTimeout:      15 * time.Second,
		AdminListen:          "127.0.0.1:9091",
	}
}

// Validate reports every invalid setting at once, each error naming its
// environment variable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}

	if c.Issuer == "" {
		bad("BFF_ISSUER", "required")
	} else if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		bad("BFF_ISSUER", "must be an absolute https URL")
	} else if u.Scheme == "http" && !c.InsecureAllowHTTPIssuer && !isLoopback(u.Hostname()) {
		bad("BFF_ISSUER", "must use https (http is allowed only for a loopback issuer)")
	}
	if c.ClientID == "" {
		bad("BFF_CLIENT_ID", "required")
	}
	if c.ClientSecret == "" {
		bad("BFF_CLIENT_SECRET", "required")
	}
	if c.PublicURL == "" {
		bad("BFF_PUBLIC_URL", "required")
	} else if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		bad("BFF_PUBLIC_URL", "must be an origin such as https://app.example.com (no path)")
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		bad("BFF_PUBLIC_URL", "must use https unless the host is loopback (cookies would not be Secure)")
	}
	if c.PostLogoutURL != "" {
		if u, err := url.Parse(c.PostLogoutURL); err != nil || !u.IsAbs() {
			bad("BFF_POST_LOGOUT_URL", "must be an absolute URL")
		}
	}
	if c.Listen == "" {
		bad("BFF_LISTEN", "required")
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("BFF_LISTEN", "must be host:port: %v", err)
	}
	if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || len(c.Prefix) < 2 {
		bad("BFF_PREFIX", "must start with / and not end with / (e.g. /bff)")
	}
	if len(c.Scopes) == 0 || !slices.Contains(c.Scopes, "openid") {
		bad("BFF_SCOPES", "must include openid")
	}
	if len(c.Keys) == 0 {
		bad("BFF_KEYS", "required: run `bff keygen` for a key")
	}
	for i, k := range c.Keys {
		if len(k) != sessionstore.KeySize {
			bad("BFF_KEYS", "key %d is %d bytes; want %d (base64 of 32 random bytes)", i+1, len(k), sessionstore.KeySize)
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		if err := r.validate(); err != nil {
			bad("BFF_ROUTES", "route %d: %v", i+1, err)
		}
		if seen[r.Prefix] {
			bad("BFF_ROUTES", "route %d: prefix %s appears twice", i+1, r.Prefix)
		}
		seen[r.Prefix] = true
		if strings.HasPrefix(r.Prefix, c.Prefix+"/") || r.Prefix == c.Prefix+"/" {
			bad("BFF_ROUTES", "route %d: prefix %s is inside the BFF prefix %s", i+1, r.Prefix, c.Prefix)
		}
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"BFF_REFRESH_SKEW", c.RefreshSkew},
		{"BFF_DEFAULT_TOKEN_LIFETIME", c.DefaultTokenLifetime},
		{"BFF_IDLE_TIMEOUT", c.IdleTimeout},
		{"BFF_ABSOLUTE_TIMEOUT", c.AbsoluteTimeout},
		{"BFF_TOUCH_INTERVAL", c.TouchInterval},
		{"BFF_TOMBSTONE_TTL", c.TombstoneTTL},
		{"BFF_UPSTREAM_TIMEOUT", c.UpstreamTimeout},
		{"BFF_HEARTBEAT_INTERVAL", c.HeartbeatInterval},
		{"BFF_SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be a positive duration such as 30s")
		}
	}
	if c.MaxStreams < 1 {
		bad("BFF_MAX_STREAMS", "must be at least 1")
	}
	if c.LoginRateLimit < 0 {
		bad("BFF_LOGIN_RATE_LIMIT", "must be 0 (off) or more")
	}
	if c.MaxSessionStreams < 1 {
		bad("BFF_MAX_SESSION_STREAMS", "must be at least 1")
	}
	if c.IdleTimeout > c.AbsoluteTimeout {
		bad("BFF_IDLE_TIMEOUT", "must not exceed BFF_ABSOLUTE_TIMEOUT")
	}
	if c.TouchInterval >= c.IdleTimeout {
		bad("BFF_TOUCH_INTERVAL", "must be shorter than BFF_IDLE_TIMEOUT")
	}
	if c.CSRFHeader == "" {
		bad("BFF_CSRF_HEADER", "required")
	} else if problem := csrfHeaderProblem(c.CSRFHeader); problem != "" {
		bad("BFF_CSRF_HEADER", "%q %s", c.CSRFHeader, problem)
	}
	if c.AdminListen != "off" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			bad("BFF_ADMIN_LISTEN", "must be host:port or off: %v", err)
		}
		if c.AdminToken == "" {
			bad("BFF_ADMIN_TOKEN", "required while the admin listener is on (or set BFF_ADMIN_LISTEN=off)")
		} else if len(c.AdminToken) < 16 {
			bad("BFF_ADMIN_TOKEN", "must be at least 16 characters")
		}
	}
	c.validateTLS(bad)
	return errors.Join(errs...)
}

// ParseKeys reads BFF_KEYS: comma-separated standard or URL-safe base64 keys.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := decodeBase64(part)
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64", i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// ParseTrustedProxies reads BFF_TRUSTED_PROXIES: comma-separated CIDRs or addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an address", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// callbackURL is the redirect URI registered at the IdP.
func (c *Config) callbackURL() string {
	return strings.TrimSuffix(c.PublicURL, "/") + c.Prefix + "/callback"
}

// postLogoutURL is where the IdP sends the browser after logout.
func (c *Config) postLogoutURL() string {
	if c.PostLogoutURL != "" {
		return c.PostLogoutURL
	}
	return strings.TrimSuffix(c.PublicURL, "/") + "/"
}
