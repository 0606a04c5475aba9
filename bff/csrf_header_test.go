package bff_test

import (
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// validConfig is a configuration that passes Validate.
func validConfig(t *testing.T) bff.Config {
	t.Helper()
	c := bff.DefaultConfig()
	c.Issuer = "https://idp.example.com"
	c.ClientID, c.ClientSecret = "bff", "secret"
	c.PublicURL = "https://app.example.com"
	c.Keys = [][]byte{make([]byte, 32)}
	c.AdminToken = "admin-token-0123456789"
	if err := c.Validate(); err != nil {
		t.Fatalf("base configuration: %v", err)
	}
	return c
}

// A CSRF header that browsers may send cross-site without a CORS preflight
// (a safelisted one), or that scripts cannot set at all (a forbidden one),
// is no defence: the configuration must be refused, naming the variable.
func TestConfigRefusesCSRFHeadersWithoutPreflight(t *testing.T) {
	for _, name := range []string{
		"Accept", "accept-language", "Content-Language", "Content-Type", "Range",
		"Cookie", "Origin", "Referer", "Host", "Connection", "Sec-Fetch-Site", "Proxy-Foo",
		"X-HTTP-Method-Override", "Save-Data", "DPR", "Width", "Viewport-Width",
		"X CSRF", "X-CSRF:", "",
	} {
		c := validConfig(t)
		c.CSRFHeader = name
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "BFF_CSRF_HEADER") {
			t.Errorf("BFF_CSRF_HEADER=%q: Validate() = %v, want an error naming BFF_CSRF_HEADER", name, err)
		}
	}
	for _, name := range []string{"X-CSRF", "X-Requested-With", "X-App-Csrf"} {
		c := validConfig(t)
		c.CSRFHeader = name
		if err := c.Validate(); err != nil {
			t.Errorf("BFF_CSRF_HEADER=%q: %v", name, err)
		}
	}
}
