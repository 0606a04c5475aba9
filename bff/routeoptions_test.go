package bff_test

import (
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
)

func TestRouteOptionsParseAndValidate(t *testing.T) {
	good := map[string]string{
		"/a/=http://127.0.0.1:1":                  bff.TokenUser,
		"/a/=http://127.0.0.1:1;token=optional":   bff.TokenOptional,
		"/a/=http://127.0.0.1:1;token=client":     bff.TokenClient,
		"/a/=http://127.0.0.1:1;token=none;strip": bff.TokenNone,
	}
	for in, want := range good {
		routes, err := bff.ParseRoutes(in)
		if err != nil || len(routes) != 1 || routes[0].Token != want {
			t.Errorf("ParseRoutes(%q) = %+v, %v; want token %q", in, routes, err, want)
		}
	}
	bad := map[string]string{
		"/a/=http://127.0.0.1:1;token=admin": "token of /a/ must be one of user, optional, client, none",
		"/a/=http://127.0.0.1:1;tokn=client": `unknown option "tokn"`,
	}
	for in, want := range bad {
		if _, err := bff.ParseRoutes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoutes(%q) error = %v, want it to say %q", in, err, want)
		}
	}
	// Validate names the setting.
	cfg := bff.DefaultConfig()
	cfg.Routes = []bff.Route{{Prefix: "/a/", Token: "admin"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "BFF_ROUTES: route 1: ") {
		t.Errorf("Validate: %v, want an error naming BFF_ROUTES", err)
	}
}
