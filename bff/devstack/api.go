package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coreos/go-oidc/v3/oidc"
)

// demoAPI is the upstream the BFF proxies to in `bff dev` and in tests. It
// behaves like a resource server: it trusts nothing but a bearer JWT that it
// verifies itself against the issuer's JWKS, and it never echoes a token.
type demoAPI struct {
	ctx      context.Context
	issuer   string
	audience string

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier // set on first successful discovery
}

// NewDemoAPI returns the demo API handler. Access tokens must be JWTs from
// issuer with audience in `aud`, unexpired, signed by a key in the issuer's
// JWKS.
//
// Discovery happens on the first request that needs it (and is retried until
// it succeeds), so the API can be built before the OP serves, e.g. when both
// share the BFF's listener. ctx is used for the OP's discovery and JWKS
// requests.
//
// Routes:
//   - /api/whoami (any method): the verified token's claims as JSON
//     {"sub","claims","expiresAt","expiresIn","method"}.
//   - GET /api/events: Server-Sent Events, a `tick` event right away and then
//     every second (or every ?interval=, a Go duration from 10ms to 1m),
//     until the client goes away.
//   - GET /api/ws: WebSocket echo.
//   - /api/headers (any method, no token needed): the request headers as a
//     JSON object with lower-case names, Authorization replaced by
//     "Bearer <valid for sub X>" or "invalid".
//
// Without a valid token the first three answer 401 JSON with a
// WWW-Authenticate: Bearer challenge.
func NewDemoAPI(ctx context.Context, issuer string, audience string) (http.Handler, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("devstack: demo API issuer %q must be an absolute http(s) URL", issuer)
	}
	if audience == "" {
		return nil, errors.New("devstack: demo API needs an audience (the BFF's client id)")
	}
	a := &demoAPI{ctx: ctx, issuer: issuer, audience: audience}
	mux := http.NewServeMux()
	mux.Handle("/api/whoami", a.authed(a.whoami))
	mux.Handle("GET /api/events", a.authed(a.events))
	mux.Handle("GET /api/ws", a.authed(a.ws))
	mux.HandleFunc("/api/headers", a.headers)
	mux.Handle("/api/confirmed", a.authed(a.confirmed))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no such demo API route"})
	})
	return mux, nil
}

// getVerifier discovers the issuer once. Discovery failures are not cached:
// the OP may simply not be up yet.
func (a *demoAPI) getVerifier() (*oidc.IDTokenVerifier, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verifier != nil {
		return a.verifier, nil
	}
	ctx, cancel := context.WithTimeout(a.ctx, 3*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.issuer)
	if err != nil {
		return nil, err
	}
	// go-oidc's ID token verifier checks what an API checks in a JWT access
	// token: signature against the JWKS, iss, aud and exp.
	a.verifier = p.Verifier(&oidc.Config{ClientID: a.audience})
	return a.verifier, nil
}

// verified is a token that passed verification.
type verified struct {
	subject string
	expiry  time.Time
	claims  map[string]any
}

// errNoToken means the request carried no bearer token at all.
type errNoToken struct{}

func (errNoToken) Error() string { return "missing bearer token" }

// errUnavailable means the token could not be checked (OP unreachable).
type errUnavailable struct{ err error }

func (e errUnavailable) Error() string { return "cannot reach the identity provider: " + e.err.Error() }

func (a *demoAPI) verify(r *http.Request) (*verified, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, errNoToken{}
	}
	scheme, raw, ok := strings.Cut(auth, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, errors.New("authorization is not a bearer token")
	}
	v, err := a.getVerifier()
	if err != nil {
		return nil, errUnavailable{err}
	}
	tok, err := v.Verify(r.Context(), raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, errors.New("token expired")
		}
		return nil, fmt.Errorf("token rejected: %w", err)
	}
	claims := map[string]any{}
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("token claims: %w", err)
	}
	return &verified{subject: tok.Subject, expiry: tok.Expiry, claims: claims}, nil
}

type authedHandler func(http.ResponseWriter, *http.Request, *verified)

// authed answers 401 (or 503 when the OP cannot be reached) unless the
// request carries a valid bearer token.
func (a *demoAPI) authed(h authedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := a.verify(r)
		if err != nil {
			var unavailable errUnavailable
			switch {
			case errors.As(err, &unavailable):
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": err.Error()})
			case errors.Is(err, errNoToken{}):
				w.Header().Set("WWW-Authenticate", `Bearer realm="demo-api"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": err.Error()})
			default:
				w.Header().Set("WWW-Authenticate", `Bearer realm="demo-api", error="invalid_token"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": err.Error()})
			}
			return
		}
		h(w, r, t)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *demoAPI) whoami(w http.ResponseWriter, r *http.Request, t *verified) {
	in := time.Until(t.expiry)
	if in < 0 {
		in = 0
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sub":       t.subject,
		"claims":    t.claims,
		"expiresAt": t.expiry.UTC().Format(time.RFC3339),
		"expiresIn": int64(in / time.Second),
		"method":    r.Method,
	})
}

// confirmedMaxAge is how recent the confirmation /api/confirmed asks for
// must be, in seconds.
const confirmedMaxAge = 300

// confirmed is an action that needs the user to have confirmed it is them
// recently: a token without acr ACRConfirmed, or whose auth_time is older
// than confirmedMaxAge, gets the RFC 9470 step-up challenge.
func (a *demoAPI) confirmed(w http.ResponseWriter, r *http.Request, t *verified) {
	acr, _ := t.claims["acr"].(string)
	authTime, _ := t.claims["auth_time"].(float64)
	if acr != ACRConfirmed || time.Since(time.Unix(int64(authTime), 0)) > confirmedMaxAge*time.Second {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_user_authentication", error_description="confirm it is you", acr_values=%q, max_age=%d`, ACRConfirmed, confirmedMaxAge))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "insufficient_user_authentication", "error_description": "this action needs a recent confirmation (acr " + acr + ")"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"confirmed": true, "sub": t.subject, "acr": acr})
}

func (a *demoAPI) events(w http.ResponseWriter, r *http.Request, t *verified) {
	interval := time.Second
	if q := r.URL.Query().Get("interval"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil || d < 10*time.Millisecond || d > time.Minute {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "interval must be a duration from 10ms to 1m"})
			return
		}
		interval = d
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx and friends must not buffer the stream
	w.WriteHeader(http.StatusOK)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for n := 1; ; n++ {
		data, _ := json.Marshal(map[string]any{"n": n, "time": time.Now().UTC().Format(time.RFC3339Nano), "sub": t.subject})
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: %s\n\n", n, data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-ticker.C:
		}
	}
}

func (a *demoAPI) ws(w http.ResponseWriter, r *http.Request, _ *verified) {
	// The origin check is the BFF's job (it compares Origin with its public
	// origin before proxying the upgrade); behind it the Host this API sees
	// is its own, so the library's same-origin check would refuse every
	// browser. The bearer token is what this API checks.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the request
	}
	defer c.CloseNow()
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				_ = c.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// headers shows what reached the API, so tests can check what the BFF
// stripped and added. The Authorization value is described, never echoed.
func (a *demoAPI) headers(w http.ResponseWriter, r *http.Request) {
	out := make(map[string]string, len(r.Header)+1)
	for k, v := range r.Header {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	if r.Host != "" {
		out["host"] = r.Host
	}
	if _, ok := r.Header["Authorization"]; ok {
		if t, err := a.verify(r); err == nil {
			out["authorization"] = "Bearer <valid for sub " + t.subject + ">"
		} else {
			out["authorization"] = "invalid"
		}
	}
	writeJSON(w, http.StatusOK, out)
}
