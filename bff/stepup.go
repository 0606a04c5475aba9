package bff

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Step-up authentication (RFC 9470). An API that needs a stronger or more
// recent sign-in than the token shows answers 401 with
//
//	WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="…", max_age=…
//
// The BFF turns that into its own 401 step_up_required, with a login link
// that asks the IdP for those acr values and that max_age; the callback
// then checks that the ID token's acr is one of them and its auth_time
// recent enough, and replaces the session's tokens. A route's acr= option
// makes the BFF answer step_up_required itself, before proxying, when the
// session's acr is not one the route accepts.

// stepUp is what a sign-in must achieve.
type stepUp struct {
	// ACRValues are the acceptable authentication context classes; empty:
	// any.
	ACRValues []string
	// MaxAge is the greatest acceptable age of the authentication, in
	// seconds; -1: any.
	MaxAge int64
}

// Bounds of what /bff/login passes on and an upstream may ask for.
const (
	maxACRValues = 8
	maxACRLen    = 128
	maxMaxAge    = 366 * 24 * 60 * 60
	// authTimeLeeway allows for clock differences between the IdP and the
	// BFF when auth_time is checked against max_age.
	authTimeLeeway = time.Minute
)

// validACR reports whether v can be an acr value: a printable ASCII token
// without space, quote or backslash (so it fits a quoted auth-param as it
// is), nor the separators of BFF_ROUTES.
func validACR(v string) bool {
	if v == "" || len(v) > maxACRLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"\,;|`, c) >= 0 {
			return false
		}
	}
	return true
}

// parseACRValues reads a space-separated acr_values list.
func parseACRValues(s string) ([]string, error) {
	values := strings.Fields(s)
	if len(values) > maxACRValues {
		return nil, fmt.Errorf("at most %d acr_values", maxACRValues)
	}
	for _, v := range values {
		if !validACR(v) {
			return nil, fmt.Errorf("acr value %q is not a printable token", v)
		}
	}
	return values, nil
}

// parseMaxAge reads max_age: seconds, or "" for none (-1).
func parseMaxAge(s string) (int64, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxMaxAge || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("max_age must be a number of seconds up to %d", maxMaxAge)
	}
	return n, nil
}

// promptValues are the prompt values /bff/login passes on (OpenID Connect
// Core 3.1.2.1).
var promptValues = []string{"login", "consent", "select_account", "none"}

// parsePrompt reads prompt: space-separated values of promptValues, with
// "none" only on its own.
func parsePrompt(s string) (string, error) {
	values := strings.Fields(s)
	for _, v := range values {
		if !slices.Contains(promptValues, v) {
			return "", fmt.Errorf("prompt must be login, consent, select_account or none")
		}
		if v == "none" && len(values) > 1 {
			return "", fmt.Errorf("prompt=none cannot be combined with other values")
		}
	}
	return strings.Join(values, " "), nil
}

// loginRequest is what /bff/login passes to the IdP besides the flow itself.
type loginRequest struct {
	ACRValues []string
	MaxAge    int64 // -1: none
	Prompt    string
}

// parseLoginRequest reads acr_values, max_age and prompt of /bff/login.
func parseLoginRequest(q url.Values) (loginRequest, error) {
	var lr loginRequest
	var err error
	if lr.ACRValues, err = parseACRValues(q.Get("acr_values")); err != nil {
		return lr, errBadLoginRequest(err.Error())
	}
	if lr.MaxAge, err = parseMaxAge(q.Get("max_age")); err != nil {
		return lr, errBadLoginRequest(err.Error())
	}
	if lr.Prompt, err = parsePrompt(q.Get("prompt")); err != nil {
		return lr, errBadLoginRequest(err.Error())
	}
	return lr, nil
}

// challengeParams are the auth-params the BFF's own WWW-Authenticate adds
// for a step-up; "" for any other error (su == nil).
func (su *stepUp) challengeParams() string {
	if su == nil {
		return ""
	}
	var b strings.Builder
	if len(su.ACRValues) > 0 {
		b.WriteString(`, acr_values="` + strings.Join(su.ACRValues, " ") + `"`)
	}
	if su.MaxAge >= 0 {
		b.WriteString(", max_age=" + strconv.FormatInt(su.MaxAge, 10))
	}
	return b.String()
}

// loginURL is the /bff/login link that asks the IdP for su.
func (su *stepUp) loginURL(prefix, returnTo string) string {
	q := url.Values{}
	if len(su.ACRValues) > 0 {
		q.Set("acr_values", strings.Join(su.ACRValues, " "))
	}
	if su.MaxAge >= 0 {
		q.Set("max_age", strconv.FormatInt(su.MaxAge, 10))
	}
	q.Set("returnTo", returnTo)
	return prefix + "/login?" + q.Encode()
}

// upstreamStepUp reads an upstream's RFC 9470 challenge: a 401 whose
// Bearer challenge has error="insufficient_user_authentication". Values
// the BFF could not pass on safely (not a token, too many) are dropped:
// the login still asks for a new sign-in.
func upstreamStepUp(resp *http.Response) (stepUp, bool) {
	if resp.StatusCode != http.StatusUnauthorized {
		return stepUp{}, false
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		params, ok := bearerParams(h)
		if !ok || params["error"] != "insufficient_user_authentication" {
			continue
		}
		su := stepUp{MaxAge: -1}
		if acr, err := parseACRValues(params["acr_values"]); err == nil {
			su.ACRValues = acr
		}
		if ma, err := parseMaxAge(params["max_age"]); err == nil {
			su.MaxAge = ma
		}
		return su, true
	}
	return stepUp{}, false
}

// bearerParams parses the auth-params of a Bearer challenge (RFC 9110
// section 11.6.1): name=token or name="quoted string", comma-separated.
// It reads the first challenge of the header value; ok is false when that
// is not Bearer or does not parse.
func bearerParams(h string) (map[string]string, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	params := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return params, true
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return params, len(params) > 0 // another challenge may follow
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var value string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				return nil, false // unterminated quoted string
			}
			value, rest = b.String(), rest[i+1:]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			value, rest = rest[:end], rest[end:]
		}
		if _, dup := params[name]; dup {
			return nil, false
		}
		params[name] = value
	}
}

// checkStepUp checks an ID token's acr and auth_time against what the
// sign-in asked for.
func checkStepUp(lr loginRequest, acr string, authTime, now time.Time) error {
	if len(lr.ACRValues) > 0 && !slices.Contains(lr.ACRValues, acr) {
		return fmt.Errorf("ID token acr %q is not one of %q", acr, lr.ACRValues)
	}
	if lr.MaxAge >= 0 {
		if authTime.IsZero() {
			return fmt.Errorf("ID token has no auth_time, and max_age=%d was asked for", lr.MaxAge)
		}
		if age := now.Sub(authTime); age > time.Duration(lr.MaxAge)*time.Second+authTimeLeeway {
			return fmt.Errorf("ID token auth_time is %s old, max_age=%d was asked for", age.Round(time.Second), lr.MaxAge)
		}
	}
	return nil
}

// acrSatisfies reports whether a session's acr is one a route accepts.
func acrSatisfies(accepted []string, acr string) bool {
	return len(accepted) == 0 || slices.Contains(accepted, acr)
}
