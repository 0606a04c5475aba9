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
		"/a/=http://127.0.0.1:1;token=admin":                    "token of /a/ must be one of user, optional, client, exchange, none",
		"/a/=http://127.0.0.1:1;tokn=client":                    `unknown option "tokn"`,
		"/a/=http://127.0.0.1:1;token=exchange":                 "token=exchange of /a/ needs audience=",
		"/a/=http://127.0.0.1:1;audience=x":                     "audience of /a/ is for token=exchange only",
		"/a/=http://127.0.0.1:1;resource=orders":                "resource of /a/ must be an absolute URI without a fragment",
		"/a/=http://127.0.0.1:1;resource=https://o.test/#f":     "resource of /a/ must be an absolute URI without a fragment",
		"/a/=http://127.0.0.1:1;token=none;resource=https://o/": "resource and scope of /a/ need a token",
		"/a/=http://127.0.0.1:1;scope=":                         "scope= names no scope",
		"/a/=http://127.0.0.1:1;scope=a\"b":                     `scope of /a/: "a\"b" is not a scope token`,
		"/a/=http://127.0.0.1:1;token=optional;acr=gold":        "acr of /a/ needs token=user",
		"/a/=http://127.0.0.1:1;acr=a b":                        `acr of /a/: "a b" is not a printable token`,
	}
	for in, want := range bad {
		if _, err := bff.ParseRoutes(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoutes(%q) error = %v, want it to say %q", in, err, want)
		}
	}
	routes, err := bff.ParseRoutes("/a/=http://127.0.0.1:1;resource=https://orders.test/;scope=read+write;acr=gold|platinum," +
		"/b/=http://127.0.0.1:1;token=exchange;audience=partner-api;scope=read")
	if err != nil || len(routes) != 2 {
		t.Fatalf("ParseRoutes with every option: %v", err)
	}
	a, b := routes[0], routes[1]
	if a.Resource != "https://orders.test/" || strings.Join(a.Scopes, " ") != "read write" || strings.Join(a.ACR, " ") != "gold platinum" {
		t.Errorf("route a = %+v", a)
	}
	if b.Token != bff.TokenExchange || b.Audience != "partner-api" || strings.Join(b.Scopes, " ") != "read" {
		t.Errorf("route b = %+v", b)
	}

	// Validate names the setting.
	cfg := bff.DefaultConfig()
	cfg.Routes = []bff.Route{{Prefix: "/a/", Token: "admin"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "BFF_ROUTES: route 1: ") {
		t.Errorf("Validate: %v, want an error naming BFF_ROUTES", err)
	}
}
