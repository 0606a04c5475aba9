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
// it lands in serveConfig. The table below is the single list of settings;
// --help takes each default from defaultServeConfig, and a test holds the
// README's table to both.
type setting struct {
	flag, env, usage string
	set              func(c *serveConfig, v string) error
	// value writes the setting as it would be given; nil for secrets, which
	// have no default and are never printed.
	value func(c *serveConfig) string
	// unset says what an empty value means, e.g. "none".
	unset string
}

// serveConfig is bff.Config plus what only the command needs.
type serveConfig struct {
	bff.Config
	Store          string // BFF_STORE
	AdminTokenFile string // BFF_ADMIN_TOKEN_FILE
	LogLevel       string // BFF_LOG_LEVEL
	DataDir        string // BFF_DATA_DIR
}

// defaultServeConfig is bff.DefaultConfig plus the command's own defaults.
func defaultServeConfig(getenv func(string) string) *serveConfig {
	return &serveConfig{Config: bff.DefaultConfig(), LogLevel: "info", DataDir: dataDir(getenv)}
}

// defaultText is the setting's default as --help and the README show it;
// "" when it has none. The data directory is shown under "~".
func (s setting) defaultText() string {
	home := func(k string) string {
		if k == "HOME" {
			return "~"
		}
		return ""
	}
	if s.value != nil {
		if v := s.value(defaultServeConfig(home)); v != "" {
			return v
		}
	}
	return s.unset
}

// textSetting is a plain string field.
func textSetting(flag, env, usage string, field func(c *serveConfig) *string) setting {
	return setting{flag: flag, env: env, usage: usage,
		set:   func(c *serveConfig, v string) error { *field(c) = v; return nil },
		value: func(c *serveConfig) string { return *field(c) },
	}
}

// secretSetting is a string field whose value is never shown.
func secretSetting(flag, env, usage string, field func(c *serveConfig) *string) setting {
	return setting{flag: flag, env: env, usage: usage,
		set: func(c *serveConfig, v string) error { *field(c) = v; return nil },
	}
}

// durationSetting is a time.Duration field, written as 30s, 5m, 2h.
func durationSetting(flag, env, usage string, field func(c *serveConfig) *time.Duration) setting {
	return setting{flag: flag, env: env, usage: usage,
		set: func(c *serveConfig, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("not a duration such as 30s or 5m")
			}
			*field(c) = d
			return nil
		},
		value: func(c *serveConfig) string { return shortDuration(*field(c)) },
	}
}

// intSetting is a whole-number field.
func intSetting(flag, env, usage string, field func(c *serveConfig) *int) setting {
	return setting{flag: flag, env: env, usage: usage,
		set: func(c *serveConfig, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not a whole number")
			}
			*field(c) = n
			return nil
		},
		value: func(c *serveConfig) string { return strconv.Itoa(*field(c)) },
	}
}

// shortDuration writes d without zero units: 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var settings = []setting{
	textSetting("issuer", "BFF_ISSUER", "OpenID Provider issuer URL", func(c *serveConfig) *string { return &c.Issuer }),
	textSetting("client-id", "BFF_CLIENT_ID", "OAuth client id", func(c *serveConfig) *string { return &c.ClientID }),
	secretSetting("client-secret", "BFF_CLIENT_SECRET", "OAuth client secret (prefer the variable over the flag)", func(c *serveConfig) *string { return &c.ClientSecret }),
	textSetting("public-url", "BFF_PUBLIC_URL", "origin the browser uses, e.g. https://app.example.com", func(c *serveConfig) *string { return &c.PublicURL }),
	textSetting("listen", "BFF_LISTEN", "public listen address", func(c *serveConfig) *string { return &c.Listen }),
	textSetting("prefix", "BFF_PREFIX", "path prefix of the BFF endpoints", func(c *serveConfig) *string { return &c.Prefix }),
	withUnset(textSetting("store", "BFF_STORE", "session store: sqlite:PATH, memory:, redis://host:6379/0, rediss://…, redis+sentinel://h1,h2/master/0, redis+cluster://h1,h2", func(c *serveConfig) *string { return &c.Store }),
		"sqlite: under BFF_DATA_DIR"),
	textSetting("data-dir", "BFF_DATA_DIR", "directory of the default sqlite store", func(c *serveConfig) *string { return &c.DataDir }),
	{flag: "scopes", env: "BFF_SCOPES", usage: "space- or comma-separated scopes",
		set: func(c *serveConfig, v string) error {
			c.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
			return nil
		},
		value: func(c *serveConfig) string { return strings.Join(c.Scopes, " ") },
	},
	withUnset(textSetting("post-logout-url", "BFF_POST_LOGOUT_URL", "where the IdP sends the browser after logout", func(c *serveConfig) *string { return &c.PostLogoutURL }),
		"the public URL"),
	{flag: "keys", env: "BFF_KEYS", usage: "comma-separated base64 32-byte keys, current first (bff keygen prints one)",
		set: func(c *serveConfig, v string) error {
			k, err := bff.ParseKeys(v)
			c.Keys = k
			return err
		},
	},
	{flag: "routes", env: "BFF_ROUTES", usage: "API routes: /api/=http://127.0.0.1:9000[;token=user|optional|client|exchange|none][;audience=A][;resource=URI][;scope=A+B][;acr=A|B][;methods=GET|POST][;strip], comma-separated (see the README's route options)",
		set: func(c *serveConfig, v string) error {
			r, err := bff.ParseRoutes(v)
			c.Routes = r
			return err
		},
		unset: "none",
	},
	durationSetting("refresh-skew", "BFF_REFRESH_SKEW", "refresh access tokens this long before they expire (at most half their lifetime)", func(c *serveConfig) *time.Duration { return &c.RefreshSkew }),
	durationSetting("default-token-lifetime", "BFF_DEFAULT_TOKEN_LIFETIME", "lifetime assumed for an access token without expires_in", func(c *serveConfig) *time.Duration { return &c.DefaultTokenLifetime }),
	durationSetting("idle-timeout", "BFF_IDLE_TIMEOUT", "end sessions idle this long", func(c *serveConfig) *time.Duration { return &c.IdleTimeout }),
	durationSetting("absolute-timeout", "BFF_ABSOLUTE_TIMEOUT", "end sessions this long after login", func(c *serveConfig) *time.Duration { return &c.AbsoluteTimeout }),
	durationSetting("touch-interval", "BFF_TOUCH_INTERVAL", "record session activity at most this often", func(c *serveConfig) *time.Duration { return &c.TouchInterval }),
	durationSetting("tombstone-ttl", "BFF_TOMBSTONE_TTL", "remember why a session ended for this long", func(c *serveConfig) *time.Duration { return &c.TombstoneTTL }),
	durationSetting("upstream-timeout", "BFF_UPSTREAM_TIMEOUT", "wait this long for an API's response headers", func(c *serveConfig) *time.Duration { return &c.UpstreamTimeout }),
	durationSetting("heartbeat-interval", "BFF_HEARTBEAT_INTERVAL", "open streams re-check their session (and event streams send a keep-alive) this often", func(c *serveConfig) *time.Duration { return &c.HeartbeatInterval }),
	intSetting("max-streams", "BFF_MAX_STREAMS", "open event streams and WebSockets per instance (503 beyond)", func(c *serveConfig) *int { return &c.MaxStreams }),
	intSetting("login-rate-limit", "BFF_LOGIN_RATE_LIMIT", "sign-in starts and callbacks per minute per client address, each (429 beyond; 0: off)", func(c *serveConfig) *int { return &c.LoginRateLimit }),
	intSetting("max-session-streams", "BFF_MAX_SESSION_STREAMS", "open event streams and WebSockets per session and instance (429 beyond)", func(c *serveConfig) *int { return &c.MaxSessionStreams }),
	textSetting("csrf-header", "BFF_CSRF_HEADER", "header API calls must carry with value 1", func(c *serveConfig) *string { return &c.CSRFHeader }),
	{flag: "trusted-proxies", env: "BFF_TRUSTED_PROXIES", usage: "CIDRs whose X-Forwarded-* headers are believed",
		set: func(c *serveConfig, v string) error {
			p, err := bff.ParseTrustedProxies(v)
			c.TrustedProxies = p
			return err
		},
		unset: "none",
	},
	{flag: "access-log", env: "BFF_ACCESS_LOG", usage: "log every request (true/false)",
		set: func(c *serveConfig, v string) error {
			b, err := strconv.ParseBool(v)
			c.LogRequests = b
			return err
		},
		value: func(c *serveConfig) string { return strconv.FormatBool(c.LogRequests) },
	},
	textSetting("tls-cert", "BFF_TLS_CERT", "PEM certificate (chain) of the public listener; with BFF_TLS_KEY it serves https itself, re-reading the files when they change", func(c *serveConfig) *string { return &c.TLSCert }),
	textSetting("tls-key", "BFF_TLS_KEY", "PEM private key of the public listener", func(c *serveConfig) *string { return &c.TLSKey }),
	textSetting("hsts", "BFF_HSTS", "Strict-Transport-Security value while the public URL is https, or off", func(c *serveConfig) *string { return &c.HSTS }),
	durationSetting("shutdown-timeout", "BFF_SHUTDOWN_TIMEOUT", "on SIGTERM, let requests in flight finish for this long", func(c *serveConfig) *time.Duration { return &c.ShutdownTimeout }),
	textSetting("log-level", "BFF_LOG_LEVEL", "debug, info, warn or error", func(c *serveConfig) *string { return &c.LogLevel }),
	textSetting("admin-listen", "BFF_ADMIN_LISTEN", "admin API listen address, or off", func(c *serveConfig) *string { return &c.AdminListen }),
	secretSetting("admin-token", "BFF_ADMIN_TOKEN", "bearer token of the admin API (prefer BFF_ADMIN_TOKEN_FILE)", func(c *serveConfig) *string { return &c.AdminToken }),
	textSetting("admin-token-file", "BFF_ADMIN_TOKEN_FILE", "file holding the admin API bearer token", func(c *serveConfig) *string { return &c.AdminTokenFile }),
	textSetting("admin-tls-cert", "BFF_ADMIN_TLS_CERT", "PEM certificate of the admin listener (optional; with BFF_ADMIN_TLS_KEY)", func(c *serveConfig) *string { return &c.AdminTLSCert }),
	textSetting("admin-tls-key", "BFF_ADMIN_TLS_KEY", "PEM private key of the admin listener", func(c *serveConfig) *string { return &c.AdminTLSKey }),
}

func withUnset(s setting, unset string) setting {
	s.unset = unset
	return s
}

// loadConfig applies defaults, then BFF_* variables, then flags; flags win.
// Every bad value is reported, each naming its setting.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*serveConfig, error) {
	c := defaultServeConfig(getenv)
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
		usage := s.usage
		if d := s.defaultText(); d != "" {
			usage += " (default " + d + ")"
		}
		fs.Func(s.flag, usage+" ["+s.env+"]", func(v string) error {
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
