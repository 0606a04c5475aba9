package tokenpack

import "strings"

// jwtDict is the preset dictionary that JSON segments of packed tokens
// (tokenDict) are deflated against. A JWT's header and claims are short,
// a few hundred bytes, and without a dictionary deflate finds little in
// them to repeat; most of their text, though, is the same in every token of
// every IdP: the header, the claim names with the JSON punctuation around
// them, the common scope and boolean values. With those in the dictionary,
// each is a back-reference of two or three bytes.
//
// Deflate codes nearer matches in fewer bits, so the most common text comes
// last. The dictionary is part of the format: a token deflated against it
// inflates only with the very same bytes, so it must never change. A
// different dictionary needs a new format byte (tokenDict is this one).
var jwtDict = strings.Join([]string{
	// Rarer claims and values, of various IdPs (Entra, Okta, Auth0, Google).
	`"ver":"2.0"`, `"tid":"`, `"oid":"`, `"uti":"`, `"rh":"`, `"idp":"`,
	`"https://login.microsoftonline.com/`, `"https://sts.windows.net/`,
	`"https://accounts.google.com"`, `"hd":"`, `"picture":"https://`,
	`"cid":"`, `"uid":"`, `"ver":1,`, `"scp":["openid","profile","email","offline_access"]`,
	`"gty":"client-credentials"`, `"permissions":["`, `"groups":["`, `"roles":["`,
	`"locale":"en"`, `"zoneinfo":"`, `"updated_at":`, `"phone_number":"`,
	`"phone_number_verified":false`, `"cnf":{"jkt":"`, `"cnf":{"x5t#S256":"`,
	`"s_hash":"`, `"c_hash":"`, `"amr":["pwd"]`, `"amr":["mfa"]`,
	`"x5t":"`, `"x5t#S256":"`,
	// Keycloak.
	`"realm_access":{"roles":["offline_access","uma_authorization","default-roles-`,
	`"resource_access":{"account":{"roles":["manage-account","manage-account-links","view-profile"]}}`,
	`"allowed-origins":["https://`, `"session_state":"`, `"acr":"1"`, `"typ":"ID"`,
	`"typ":"Bearer"`, `/realms/`, `"azp":"`,
	// Headers, rarer algorithms and types first.
	`{"alg":"HS256","typ":"JWT"}`, `{"alg":"EdDSA","kid":"`, `{"alg":"RS512","kid":"`,
	`{"alg":"PS256","kid":"`, `{"typ":"at+jwt","alg":"ES256","kid":"`,
	`{"alg":"ES256","typ":"JWT","kid":"`, `{"alg":"RS256","typ":"at+jwt","kid":"`,
	`{"kid":"`, `","alg":"RS256","typ":"JWT"}`, `","typ":"at+jwt"}`,
	`{"alg":"RS256","typ":"JWT","kid":"`,
	// ID token claims, as an IdP orders them.
	`{"exp":1`, `,"iat":1`, `,"auth_time":1`, `,"jti":"`, `","iss":"https://`,
	`","aud":"`, `","sub":"`, `","typ":"ID","azp":"`, `","nonce":"`,
	`","session_state":"`, `","at_hash":"`, `","acr":"1","sid":"`,
	`","email_verified":true,"name":"`, `","preferred_username":"`,
	`","given_name":"`, `","family_name":"`, `","email":"`, `"}`,
	`{"iss":"https://`, `","sub":"`, `","aud":"`, `","exp":1`, `,"iat":1`,
	`,"auth_time":1`, `,"nonce":"`, `","sid":"`, `","at_hash":"`, `","name":"`,
	`","email":"`, `","preferred_username":"`, `","email_verified":true}`,
	// Access token claims, the most common of all.
	`{"iss":"https://`, `","sub":"`, `","aud":"https://`, `","exp":1`, `,"iat":1`,
	`,"jti":"`, `","scope":"openid profile email offline_access","client_id":"`,
	`","sid":"`, `"}`,
	// The header of almost every token.
	`{"alg":"RS256","kid":"`, `","typ":"JWT"}`,
}, "")

var jwtDictBytes = []byte(jwtDict)
