package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/bff"
)

// setting is one configuration value: a flag, its BFF_* variable, and how
// it lands in bff.Config. The table below is the single list of settings;
// --help and the README's table come from it.
type setting struct {
	flag, env, usage string
	set              func(c *serveConfig, v string) error
}

// serveConfig is bff.Config plus what only the command needs.
type serveConfig struct {
	bff.Config
	Store          string // BFF_STORE
	AdminTokenFile string // BFF_ADMIN_TOKEN_FILE
	LogLevel       string // BFF_LOG_LEVEL
	DataDir        string // BFF_DATA_DIR
}

func durationSetter(field func(c *serveConfig) *time.Duration) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration such as 30s or 5m")
		}
		*field(c) = d
		return nil
	}
}

var settings = []setting{
	{"issuer", "BFF_ISSUER", "OpenID Provider issuer URL", func(c *serveConfig, v string) error { c.Issuer = v; return nil }},
	{"client-id", "BFF_CLIENT_ID", "OAuth client id", func(c *serveConfig, v string) error { c.ClientID = v; return nil }},
	{"client-secret", "BFF_CLIENT_SECRET", "OAuth client secret (prefer the variable over the flag)", func(c *serveConfig, v string) error { c.ClientSecret = v; return nil }},
	{"public-url", "BFF_PUBLIC_URL", "origin the browser uses, e.g. https://app.example.com", func(c *serveConfig, v string) error { c.PublicURL = v; return nil }},
	{"listen", "BFF_LISTEN", "public listen address (default 127.0.0.1:8080)", func(c *serveConfig, v string) error { c.Listen = v; return nil }},
	{"prefix", "BFF_PREFIX", "path prefix of the BFF endpoints (default /bff)", func(c *serveConfig, v string) error { c.Prefix = v; return nil }},
	{"store", "BFF_STORE", "session store: sqlite:PATH (default sqlite under the data dir), memory:, redis://host:6379/0, rediss://…, redis+sentinel://h1,h2/master/0, redis+cluster://h1,h2", func(c *serveConfig, v string) error { c.Store = v; return nil }},
	{"data-dir", "BFF_DATA_DIR", "directory of the default sqlite store (default ~/.local/share/bff)", func(c *serveConfig, v string) error { c.DataDir = v; return nil }},
	{"scopes", "BFF_SCOPES", "space- or comma-separated scopes (default \"openid profile email offline_access\")", func(c *serveConfig, v string) error {
		c.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
		return nil
	}},
	{"post-logout-url", "BFF_POST_LOGOUT_URL", "where the IdP sends the browser after logout (default the public URL)", func(c *serveConfig, v string) error { c.PostLogoutURL = v; return nil }},
	{"keys", "BFF_KEYS", "comma-separated base64 32-byte keys, current first (bff keygen prints one)", func(c *serveConfig, v string) error {
		k, err := bff.ParseKeys(v)
		c.Keys = k
		return err
	}},
	{"routes", "BFF_ROUTES", "API routes: /api/=http://127.0.0.1:9000[;token=user|none][;methods=GET|POST][;strip], comma-separated", func(c *serveConfig, v string) error {
		r, err := bff.ParseRoutes(v)
		c.Routes = r
		return err
	}},
	{"refresh-skew", "BFF_REFRESH_SKEW", "refresh access tokens this long before they expire (default 30s; at most half their lifetime)", durationSetter(func(c *serveConfig) *time.Duration { return &c.RefreshSkew })},
	{"default-token-lifetime", "BFF_DEFAULT_TOKEN_LIFETIME", "lifetime assumed for an access token without expires_in (default 5m)", durationSetter(func(c *serveConfig) *time.Duration { return &c.DefaultTokenLifetime })},
	{"idle-timeout", "BFF_IDLE_TIMEOUT", "end sessions idle this long (default 2h)", durationSetter(func(c *serveConfig) *time.Duration { return &c.IdleTimeout })},
	{"absolute-timeout", "BFF_ABSOLUTE_TIMEOUT", "end sessions this long after login (default 12h)", durationSetter(func(c *serveConfig) *time.Duration { return &c.AbsoluteTimeout })},
	{"touch-interval", "BFF_TOUCH_INTERVAL", "record session activity at most this often (default 1m)", durationSetter(func(c *serveConfig) *time.Duration { return &c.TouchInterval })},
	{"tombstone-ttl", "BFF_TOMBSTONE_TTL", "remember why a session ended for this long (default 1h)", durationSetter(func(c *serveConfig) *time.Duration { return &c.TombstoneTTL })},
	{"upstream-timeout", "BFF_UPSTREAM_TIMEOUT", "wait this long for an API's response headers (default 30s)", durationSetter(func(c *serveConfig) *time.Duration { return &c.UpstreamTimeout })},
	{"csrf-header", "BFF_CSRF_HEADER", "header API calls must carry with value 1 (default X-CSRF)", func(c *serveConfig, v string) error { c.CSRFHeader = v; return nil }},
	{"trusted-proxies", "BFF_TRUSTED_PROXIES", "CIDRs whose X-Forwarded-* headers are believed (default none)", func(c *serveConfig, v string) error {
		p, err := bff.ParseTrustedProxies(v)
		c.TrustedProxies = p
		return err
	}},
	{"access-log", "BFF_ACCESS_LOG", "log every request (true/false, default false)", func(c *serveConfig, v string) error {
		b, err := strconv.ParseBool(v)
		c.LogRequests = b
		return err
	}},
	{"log-level", "BFF_LOG_LEVEL", "debug, info, warn or error (default info)", func(c *serveConfig, v string) error { c.LogLevel = v; return nil }},
	{"admin-listen", "BFF_ADMIN_LISTEN", "admin API listen address, or off (default 127.0.0.1:9091)", func(c *serveConfig, v string) error { c.AdminListen = v; return nil }},
	{"admin-token", "BFF_ADMIN_TOKEN", "bearer token of the admin API (prefer BFF_ADMIN_TOKEN_FILE)", func(c *serveConfig, v string) error { c.AdminToken = v; return nil }},
	{"admin-token-file", "BFF_ADMIN_TOKEN_FILE", "file holding the admin API bearer token", func(c *serveConfig, v string) error { c.AdminTokenFile = v; return nil }},
}

// loadConfig applies defaults, then BFF_* variables, then flags; flags win.
// Every bad value is reported, each naming its setting.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{Config: bff.DefaultConfig(), LogLevel: "info", DataDir: dataDir(getenv)}
	var errs []string
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.set(c, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", s.env, err))
			}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range settings {
		s := s
		fs.Func(s.flag, s.usage+" ["+s.env+"]", func(v string) error {
			if err := s.set(c, v); err != nil {
				return fmt.Errorf("%s: %w", s.env, err)
			}
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bff %s [flags]\n\nEvery flag can also be set by the variable in brackets; flags win.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.AdminTokenFile != "" && c.AdminToken == "" {
		b, err := os.ReadFile(c.AdminTokenFile)
		if err != nil {
			errs = append(errs, fmt.Sprintf("BFF_ADMIN_TOKEN_FILE: %v", err))
		}
		c.AdminToken = strings.TrimSpace(string(b))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return c, nil
}
