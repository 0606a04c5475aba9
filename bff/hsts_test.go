package bff_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
)

// TestHSTSOnEveryPublicResponse: with an https public URL every kind of
// public response — SPA page, 401, 404 JSON, refused path, redirect to the
// IdP — carries Strict-Transport-Security; with http, or with BFF_HSTS=off,
// none does.
func TestHSTSOnEveryPublicResponse(t *testing.T) {
	cases := []struct {
		name string
		tls  bool
		hsts string
		want string
	}{
		{"https default", true, "", bff.DefaultHSTS},
		{"https custom", true, "max-age=600; includeSubDomains", "max-age=600; includeSubDomains"},
		{"https off", true, "off", ""},
		{"http", false, "", ""},
	}
	paths := []struct {
		path   string
		header http.Header
	}{
		{"/", http.Header{"Accept": {"text/html"}}},
		{"/bff/user", csrf()},
		{"/nothing-here", http.Header{"Accept": {"application/json"}}},
		{"/api/%2e%2e/x", csrf()},
		{"/bff/login", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := mustStartStack(t, stackOptions{tls: tc.tls, configure: func(c *bff.Config) {
				if tc.hsts != "" {
					c.HSTS = tc.hsts
				}
			}})
			b := st.newBrowser(t)
			for _, p := range paths {
				resp := b.get(t, p.path, p.header)
				if got := resp.Header.Get("Strict-Transport-Security"); got != tc.want {
					t.Errorf("%s (%d): Strict-Transport-Security = %q, want %q", p.path, resp.StatusCode, got, tc.want)
				}
			}
		})
	}
}

func TestHSTSValuesAreChecked(t *testing.T) {
	for _, v := range []string{"max-age=31536000", "max-age=0", "max-age=60; includeSubDomains; preload", "off", "OFF"} {
		if err := validConfigWithHSTS(v).Validate(); err != nil {
			t.Errorf("BFF_HSTS=%q refused: %v", v, err)
		}
	}
	for _, v := range []string{"", "1y", "max-age=", "max-age=-1", "max-age=1y", "includeSubDomains", "max-age=1; max-age=2", "max-age=1; includeSubdomain", "max-age=1;;"} {
		err := validConfigWithHSTS(v).Validate()
		if err == nil || !strings.Contains(err.Error(), "BFF_HSTS") {
			t.Errorf("BFF_HSTS=%q: %v, want an error naming BFF_HSTS", v, err)
		}
	}
}

func validConfigWithHSTS(v string) *bff.Config {
	c := bff.DefaultConfig()
	c.Issuer, c.ClientID, c.ClientSecret = "https://idp.example.com", "id", "secret"
	c.PublicURL = "https://app.example.com"
	c.Keys = [][]byte{make([]byte, 32)}
	c.AdminListen = "off"
	c.HSTS = v
	return &c
}
