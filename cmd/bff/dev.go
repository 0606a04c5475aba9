//go:build !nodev

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/devstack"
)

// runDev starts the whole demo with no setup: an embedded OpenID Provider
// with demo users, a demo API that verifies the bearer token it receives,
// and the BFF with the SPA and a sqlite store under the data directory.
// Keys and the admin token are generated once and kept in the data
// directory, so sessions survive a restart of the BFF (though not of the
// embedded IdP, which forgets its refresh tokens: the next refresh then
// ends the session as "session_expired").
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "BFF listen address")
	opListen := fs.String("op-listen", "127.0.0.1:8081", "embedded OpenID Provider listen address")
	adminListen := fs.String("admin-listen", "127.0.0.1:9091", "admin API listen address, or off")
	dir := fs.String("data", dataDir(getenv)+"-dev", "data directory (keys, admin token, sessions)")
	storeSpec := fs.String("store", "", "session store (default sqlite in the data directory)")
	atLifetime := fs.Duration("access-token-lifetime", 60*time.Second, "access token lifetime at the embedded IdP")
	opOnly := fs.Bool("op-only", false, "serve only the embedded IdP and the demo API, for a BFF run with `bff serve` (browser tests)")
	var oo opOnlyConfig
	fs.StringVar(&oo.apiListen, "api-listen", "127.0.0.1:0", "with --op-only: demo API listen address")
	fs.StringVar(&oo.controlListen, "control-listen", "", "with --op-only: loopback address of the test control listener (sends back-channel logouts), off if empty")
	fs.StringVar(&oo.publicURL, "public-url", "", "with --op-only: the BFF's public URL, for its redirect URIs")
	fs.StringVar(&oo.clientID, "client-id", "bff-dev", "with --op-only: the BFF's client id")
	fs.StringVar(&oo.clientSecret, "client-secret", "bff-dev-secret", "with --op-only: the BFF's client secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *opOnly {
		oo.opListen, oo.accessTokenLifetime = *opListen, *atLifetime
		return runOPOnly(ctx, oo, stdout)
	}
	logger := newLogger(stderr, "info")
	routeLibraryLogs(logger)

	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	key, err := readOrCreateSecret(filepath.Join(*dir, "key"), newKey)
	if err != nil {
		return err
	}
	adminToken, err := readOrCreateSecret(filepath.Join(*dir, "admin-token"), func() string { return "dev-" + strings.TrimRight(newKey(), "=") })
	if err != nil {
		return err
	}

	publicURL := "http://" + *listen
	const clientID, clientSecret = "bff-dev", "bff-dev-secret"
	idp, err := devstack.StartOP(ctx, devstack.OPConfig{
		Addr:                *opListen,
		AccessTokenLifetime: *atLifetime,
		Clients: []devstack.Client{{
			ID: clientID, Secret: clientSecret,
			RedirectURIs:           []string{publicURL + "/bff/callback"},
			PostLogoutRedirectURIs: []string{publicURL + "/"},
		}},
	})
	if err != nil {
		return fmt.Errorf("start the embedded OpenID Provider: %w", err)
	}
	defer idp.Close()

	api, err := devstack.NewDemoAPI(ctx, idp.Issuer(), clientID)
	if err != nil {
		return fmt.Errorf("start the demo API: %w", err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the demo API: %w", err)
	}
	apiSrv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = apiSrv.Serve(apiLn) }()
	defer apiSrv.Close()
	apiURL, _ := url.Parse("http://" + apiLn.Addr().String())

	keys, err := bff.ParseKeys(key)
	if err != nil {
		return fmt.Errorf("dev key in %s: %w", *dir, err)
	}
	cfg := bff.DefaultConfig()
	cfg.Issuer = idp.Issuer()
	cfg.ClientID, cfg.ClientSecret = clientID, clientSecret
	cfg.PublicURL = publicURL
	cfg.Listen = *listen
	cfg.Keys = keys
	cfg.Routes = []bff.Route{{Prefix: "/api/", Upstream: apiURL, Token: bff.TokenUser}}
	cfg.AdminListen, cfg.AdminToken = *adminListen, adminToken
	cfg.LogRequests = true
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("dev configuration: %w", err)
	}

	spec := *storeSpec
	if spec == "" {
		spec = "sqlite:" + filepath.Join(*dir, "sessions.db")
	}
	store, where, err := openStore(ctx, spec, *dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer store.Close()

	fmt.Fprintf(stdout, `
BFF dev stack
  app            %s
  identity       %s  (embedded OpenID Provider)
  demo API       %s  (proxied at %s/api/)
  admin API      http://%s  (token in %s)
  sessions       %s
  users          alice / alice-pass, bob / bob-pass

`, publicURL, idp.Issuer(), apiURL, publicURL, *adminListen, filepath.Join(*dir, "admin-token"), where)

	tracing, err := startTracing(ctx, logger, getenv)
	if err != nil {
		return err
	}
	err = serve(ctx, logger, cfg, store, tracing)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// readOrCreateSecret returns the secret kept in path, creating it (mode
// 0600) the first time.
func readOrCreateSecret(path string, generate func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v := generate()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}
