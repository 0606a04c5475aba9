package bff

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// DefaultHSTS pins browsers to https for a year, the minimum that HSTS
// preload lists accept and what most guides recommend.
const DefaultHSTS = "max-age=31536000"

// StrictTransportSecurity is the Strict-Transport-Security value for the
// public listener's responses, or "" when none is sent: HSTS is off, or the
// public URL is http (browsers ignore the header over http, and a loopback
// development setup must not be pinned to https).
func (c *Config) StrictTransportSecurity() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Scheme != "https" || c.HSTS == "" || strings.EqualFold(c.HSTS, "off") {
		return ""
	}
	return c.HSTS
}

// validateTLS checks the TLS and HSTS settings.
func (c *Config) validateTLS(bad func(name, format string, args ...any)) {
	pairs := []struct{ cert, key, certName, keyName string }{
		{c.TLSCert, c.TLSKey, "BFF_TLS_CERT", "BFF_TLS_KEY"},
		{c.AdminTLSCert, c.AdminTLSKey, "BFF_ADMIN_TLS_CERT", "BFF_ADMIN_TLS_KEY"},
	}
	for _, p := range pairs {
		if (p.cert == "") != (p.key == "") {
			bad(p.certName, "%s and %s go together: set both or neither", p.certName, p.keyName)
		}
	}
	if c.TLSCert != "" {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Scheme != "https" {
			bad("BFF_PUBLIC_URL", "must be https while the BFF serves TLS itself (BFF_TLS_CERT)")
		}
	}
	if !strings.EqualFold(c.HSTS, "off") {
		if err := validHSTS(c.HSTS); err != nil {
			bad("BFF_HSTS", "%v (e.g. %q, or off)", err, DefaultHSTS+"; includeSubDomains")
		}
	}
}

// validHSTS accepts what RFC 6797 defines: a max-age in seconds, optionally
// includeSubDomains, and the preload token that preload lists ask for. A
// typo would otherwise make browsers ignore the whole header, silently.
func validHSTS(v string) error {
	maxAge := false
	for _, d := range strings.Split(v, ";") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(d), "=")
		switch {
		case strings.EqualFold(name, "max-age") && hasValue:
			// max-age=0 is valid: it is how a host tells browsers to forget
			// an earlier pin ("off" only stops sending the header).
			if _, err := strconv.ParseUint(value, 10, 63); err != nil || maxAge {
				return fmt.Errorf("max-age must be one number of seconds, got %q", value)
			}
			maxAge = true
		case (strings.EqualFold(name, "includeSubDomains") || strings.EqualFold(name, "preload")) && !hasValue:
		default:
			return fmt.Errorf("unknown directive %q", strings.TrimSpace(d))
		}
	}
	if !maxAge {
		return fmt.Errorf("max-age is required")
	}
	return nil
}
