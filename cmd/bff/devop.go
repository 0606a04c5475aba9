//go:build !nodev

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
)

// opOnlyConfig is what `bff dev --op-only` needs to serve the embedded
// OpenID Provider and the demo API for a BFF that runs elsewhere (`bff
// serve`, e.g. in the browser tests).
type opOnlyConfig struct {
	opListen, apiListen, controlListen string
	publicURL                          string // the BFF's public URL, for its redirect URIs
	clientID, clientSecret             string
	accessTokenLifetime                time.Duration
}

// runOPOnly serves the embedded OP and the demo API on their own listeners
// and prints one line, "ready issuer=… api=… control=…", once both accept
// connections. The control listener (loopback only, off unless asked for)
// lets a test make the OP send what this OP never sends by itself: a signed
// back-channel logout token, POSTed to the BFF (POST /backchannel-logout
// ?sub=…[&sid=…]).
func runOPOnly(ctx context.Context, c opOnlyConfig, stdout io.Writer) error {
	if c.publicURL == "" {
		return fmt.Errorf("--op-only needs --public-url, the BFF's public URL (for its redirect URIs)")
	}
	public := strings.TrimRight(c.publicURL, "/")
	if err := checkLoopback(c.opListen); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.opListen)
	if err != nil {
		return fmt.Errorf("start the embedded OpenID Provider: %w", err)
	}
	idp, err := devstack.NewOP(devstack.OPConfig{
		Issuer:              "http://" + ln.Addr().String(),
		AccessTokenLifetime: c.accessTokenLifetime,
		Clients: []devstack.Client{{
			ID: c.clientID, Secret: c.clientSecret,
			RedirectURIs:           []string{public + "/bff/callback"},
			PostLogoutRedirectURIs: []string{public + "/"},
		}},
	})
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("start the embedded OpenID Provider: %w", err)
	}
	issued := &issuedTokens{}
	opSrv := &http.Server{Handler: issued.record(idp.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = opSrv.Serve(ln) }()
	defer opSrv.Close()

	api, err := devstack.NewDemoAPI(ctx, idp.Issuer(), c.clientID)
	if err != nil {
		return fmt.Errorf("start the demo API: %w", err)
	}
	apiURL, stopAPI, err := serveLoopback(c.apiListen, api)
	if err != nil {
		return fmt.Errorf("start the demo API: %w", err)
	}
	defer stopAPI()

	control := "off"
	if c.controlListen != "" {
		u, stop, err := serveLoopback(c.controlListen, controlHandler(idp, issued, c.clientID, public+"/bff/backchannel-logout"))
		if err != nil {
			return fmt.Errorf("start the control listener: %w", err)
		}
		defer stop()
		control = u
	}
	fmt.Fprintf(stdout, "ready issuer=%s api=%s control=%s\n", idp.Issuer(), apiURL, control)
	<-ctx.Done()
	return nil
}

// checkLoopback refuses a listen address that is not loopback: these
// listeners serve demo users and test controls.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %s is not a loopback address", addr)
	}
	return nil
}

// serveLoopback serves h on addr, which must be a loopback address.
func serveLoopback(addr string, h http.Handler) (string, func(), error) {
	if err := checkLoopback(addr); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// controlHandler is the test control listener of --op-only:
//
//	POST /backchannel-logout?sub=…[&sid=…]  sign a logout token with the OP's
//	     key and POST it to the BFF, as an IdP does when the user signs out
//	     there; answers with the BFF's status
//	GET  /tokens  every token the OP's token endpoint has issued, so a test
//	     can check that none of them reached the browser
func controlHandler(idp *devstack.OP, issued *issuedTokens, clientID, endpoint string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tokens", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(issued.list())
	})
	mux.HandleFunc("POST /backchannel-logout", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("sub") == "" && q.Get("sid") == "" {
			http.Error(w, "sub or sid required", http.StatusBadRequest)
			return
		}
		token, err := idp.SignLogoutToken(idp.LogoutTokenClaims(clientID, q.Get("sub"), q.Get("sid")))
		if err != nil {
			http.Error(w, "sign logout token: "+err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := http.PostForm(endpoint, url.Values{"logout_token": {token}})
		if err != nil {
			http.Error(w, "post logout token: "+err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		fmt.Fprintf(w, "bff answered %d\n", resp.StatusCode)
	})
	return mux
}

// issuedTokens keeps every token the OP hands out, read from the token
// endpoint's answers as they pass.
type issuedTokens struct {
	mu     sync.Mutex
	tokens []issuedToken
}

type issuedToken struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

func (it *issuedTokens) list() []issuedToken {
	it.mu.Lock()
	defer it.mu.Unlock()
	return slices.Clone(it.tokens)
}

// record wraps the OP's handler: a POST whose JSON answer carries tokens is
// a token endpoint answer.
func (it *issuedTokens) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
			it.mu.Lock()
			for _, kind := range []string{"access_token", "refresh_token", "id_token"} {
				if v, ok := body[kind].(string); ok && v != "" {
					it.tokens = append(it.tokens, issuedToken{Kind: kind, Value: v})
				}
			}
			it.mu.Unlock()
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}
