package bff

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxLogoutTokenLen bounds a logout token: a real one is well under 2 KB.
const maxLogoutTokenLen = 8 << 10

// logoutClaims are the claims of a logout token, as sent.
type logoutClaims struct {
	Issuer   string                     `json:"iss"`
	Audience audience                   `json:"aud"`
	Events   map[string]json.RawMessage `json:"events"`
	Nonce    json.RawMessage            `json:"nonce"`
	IAT      *json.Number               `json:"iat"`
	JTI      string                     `json:"jti"`
	Subject  string                     `json:"sub"`
	SID      string                     `json:"sid"`
}

// audience is the aud claim: one string or a list of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = many
	return nil
}

// precheckLogoutToken does every check of an OIDC back-channel logout token
// that needs no signature work, and returns the id of the key it names:
// size, compact JWS shape, an allowed algorithm, issuer, audience, the
// back-channel event as an object (go-oidc accepts null), no nonce, a jti,
// sub or sid, and an iat within the window. Anyone can post to the
// endpoint: this is what lets garbage be refused for the price of a JSON
// decode, before the signature check (and any fetch of the IdP's keys).
//
// The checks read the payload before it is verified; they pass or fail on
// the very bytes the signature check then covers, so nothing is trusted
// that is not signed. The caller must still verify the signature and exp.
func precheckLogoutToken(raw, issuer, clientID string, algs []jose.SignatureAlgorithm, now time.Time) (kid string, err error) {
	switch {
	case raw == "":
		return "", errors.New("missing logout_token")
	case len(raw) > maxLogoutTokenLen:
		return "", fmt.Errorf("logout token of %d bytes", len(raw))
	case strings.Count(raw, ".") != 2 || strings.Trim(raw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "":
		return "", errors.New("logout token is not a compact JWS")
	}
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return "", fmt.Errorf("parse logout token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return "", errors.New("logout token must carry one signature")
	}
	var c logoutClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return "", fmt.Errorf("logout token claims: %w", err)
	}
	if c.Issuer != issuer {
		return "", fmt.Errorf("logout token issued by %q", c.Issuer)
	}
	if !slices.Contains(c.Audience, clientID) {
		return "", errors.New("logout token is not for this client")
	}
	if ev := c.Events[backchannelEvent]; len(ev) == 0 || ev[0] != '{' {
		return "", errors.New("events claim lacks the back-channel logout event object")
	}
	if len(c.Nonce) != 0 {
		return "", errors.New("logout token carries a nonce")
	}
	if c.JTI == "" {
		return "", errors.New("logout token has no jti")
	}
	if c.Subject == "" && c.SID == "" {
		return "", errors.New("logout token names neither sub nor sid")
	}
	if c.IAT == nil {
		return "", errors.New("missing iat")
	}
	secs, err := c.IAT.Float64()
	if err != nil {
		return "", errors.New("iat is not a number")
	}
	iat := time.Unix(int64(secs), 0)
	if iat.After(now.Add(logoutTokenSkew)) || iat.Before(now.Add(-jtiTTL+logoutTokenSkew)) {
		return "", fmt.Errorf("iat %s outside the accepted window", iat.UTC().Format(time.RFC3339))
	}
	return jws.Signatures[0].Header.KeyID, nil
}
