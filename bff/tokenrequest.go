package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxTokenResponse bounds a token endpoint's answer.
const maxTokenResponse = 1 << 20

// tokenRequest posts a grant to the IdP's token endpoint with the BFF's
// client credentials (client_secret_basic, as everywhere) and reads the
// answer as x/oauth2 would. It exists for grants that need parameters
// x/oauth2's refresh does not send (resource, scope, the token-exchange
// parameters). An error answer is an *oauth2.RetrieveError, so
// describeTokenError and the invalid_grant handling apply.
func (s *Server) tokenRequest(ctx context.Context, form url.Values) (*oauth2.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.idp.OAuth2.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: the credentials are form-encoded first.
	req.SetBasicAuth(url.QueryEscape(s.idp.OAuth2.ClientID), url.QueryEscape(s.idp.OAuth2.ClientSecret))
	resp, err := s.idp.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("token request: read answer: %w", err)
	}
	var answer struct {
		AccessToken  string      `json:"access_token"`
		TokenType    string      `json:"token_type"`
		RefreshToken string      `json:"refresh_token"`
		ExpiresIn    json.Number `json:"expires_in"`
		Error        string      `json:"error"`
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var raw map[string]any
	if ct == "application/json" {
		_ = json.Unmarshal(body, &answer)
		_ = json.Unmarshal(body, &raw)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || answer.Error != "" {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: answer.Error}
	}
	if answer.AccessToken == "" {
		return nil, fmt.Errorf("token request: status %d without an access token", resp.StatusCode)
	}
	tok := &oauth2.Token{AccessToken: answer.AccessToken, TokenType: answer.TokenType, RefreshToken: answer.RefreshToken}
	if secs, err := answer.ExpiresIn.Int64(); err == nil && secs > 0 {
		tok.Expiry = time.Now().Add(time.Duration(secs) * time.Second)
	}
	return tok.WithExtra(raw), nil
}
