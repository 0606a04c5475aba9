// Package devstack runs a real OpenID Provider and a demo API in-process, for
// `bff dev` (the one-command demo) and for the BFF's integration tests.
//
// The OP is github.com/zitadel/oidc/v3 pkg/op (an OpenID-certified OP
// library) on top of its example in-memory storage, wrapped to give the BFF
// what a production IdP gives it: configurable token lifetimes, JWT access
// tokens, rotating refresh tokens, a `sid` claim per login, registered
// post-logout redirect URIs, and a small HTML login form. Tests also get
// hooks a real IdP does not offer: counters of token requests, a switch that
// makes the token endpoint fail (IdP outage), revocation of every grant of a
// user (admin action at the IdP), and a signer for back-channel logout tokens.
//
// Nothing here is shared between instances: every OP has its own keys, users,
// clients, tokens and listener, so one test process can run many of them.
//
// This package is for development and tests only. Its users and clients live
// in memory and its login form checks plain-text passwords.
package devstack
