package bff

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/tokenpack"
)

// This file is the one place where a session's tokens are sealed and
// opened. Tokens never leave the server: they are sealed (AES-256-GCM) to
// their session's key and to their field before any store sees them, and
// opened only to be sent to the IdP or an upstream API (and the ID token
// once, as the id_token_hint of the logout redirect, after its session is
// gone). A sealed value copied into another session, or into the other
// field, does not open.

// Sealed fields: each value is bound to its session and its field.
const (
	fieldAccessToken = "access_token"
	fieldSecrets     = "secrets"
)

// setTokens seals a token response into the session. A response without a
// new refresh token or ID token keeps the previous ones (prevRefresh, and
// rawID == "" keeps the old ID token), as RFC 6749 allows an IdP to omit them.
func (s *Server) setTokens(sess *sessionstore.Session, tok *oauth2.Token, rawID, prevRefresh string, now time.Time) error {
	expiry := tok.Expiry
	if expiry.IsZero() {
		// No expires_in: assume the configured lifetime, never "forever",
		// so the token is still refreshed in time.
		expiry = now.Add(s.cfg.DefaultTokenLifetime)
	}
	at, err := s.sealer.Seal(sess.Key, fieldAccessToken, tokenpack.Pack(tok.AccessToken))
	if err != nil {
		return errSealFailed(err)
	}
	secrets := sessionstore.Secrets{RefreshToken: tok.RefreshToken, IDToken: rawID}
	if secrets.RefreshToken == "" {
		secrets.RefreshToken = prevRefresh
	}
	if secrets.IDToken == "" && len(sess.Secrets) > 0 {
		if old, err := s.openSecrets(sess); err == nil {
			secrets.IDToken = old.IDToken
		}
	}
	plain, err := tokenpack.EncodeSecrets(secrets)
	if err != nil {
		return errSealFailed(err)
	}
	sealed, err := s.sealer.Seal(sess.Key, fieldSecrets, plain)
	if err != nil {
		return errSealFailed(err)
	}
	sess.AccessToken, sess.Secrets = at, sealed
	sess.AccessIssuedAt, sess.AccessExpiresAt = now, expiry
	if scope, _ := tok.Extra("scope").(string); scope != "" {
		sess.Scope = scope
	}
	return nil
}

// openSecrets opens the session's refresh and ID tokens.
func (s *Server) openSecrets(sess *sessionstore.Session) (sessionstore.Secrets, error) {
	plain, err := s.sealer.Open(sess.Key, fieldSecrets, sess.Secrets)
	if err != nil {
		return sessionstore.Secrets{}, fmt.Errorf("open session secrets: %w", err)
	}
	return tokenpack.DecodeSecrets(plain)
}

// openAccessToken opens the session's access token, to be sent upstream.
func (s *Server) openAccessToken(sess *sessionstore.Session) (string, error) {
	if token, ok := s.accessTokens.get(sess.Key, sess.AccessToken); ok {
		return token, nil
	}
	plain, err := s.sealer.Open(sess.Key, fieldAccessToken, sess.AccessToken)
	if err != nil {
		// Sealed with a key that is no longer configured, or tampered with:
		// the session cannot be used, and the user must sign in again.
		return "", errSessionExpired(err)
	}
	token, err := tokenpack.Unpack(plain)
	if err != nil {
		return "", errSessionExpired(err)
	}
	s.accessTokens.put(sess.Key, sess.AccessToken, token)
	return token, nil
}

// describeTokenError keeps an IdP's error code for the log but drops the
// response body, which is the IdP's text and not ours to repeat.
func describeTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("token endpoint: status %d, error %q", status, re.ErrorCode)
	}
	return err
}
