package tokenpack

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/internal/ids"
)

// jwt builds a JWS-shaped token from a JSON header and payload and a random
// signature of sigLen bytes.
func jwt(header, payload string, sigLen int) string {
	sig := make([]byte, sigLen)
	rand.Read(sig)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

const (
	jwtHeader = `{"alg":"RS256","kid":"Hk3ZqP9xW2vN7mYc1rBgT5eLd8","typ":"JWT"}`
	idClaims  = `{"exp":1735689600,"iat":1735687800,"auth_time":1735687790,"jti":"5c1e9a7f-2b4c-4e1d-8a3f-0c9b8d7e6f5a","iss":"https://login.example.com/realms/main","aud":"bff-client","sub":"5f0c3a4e-8d2b-4c1e-9a7f-000000000123","typ":"ID","azp":"bff-client","nonce":"Zk3mQ9pL2xR7vT1wYb4nC8","sid":"b1e2d3c4-a5b6-4789-8abc-000000000247","email_verified":true,"name":"Ada Lovelace","preferred_username":"ada","given_name":"Ada","family_name":"Lovelace","email":"ada@example.org"}`
)

// packCases are tokens that must survive packing byte for byte, JWTs and
// everything that merely looks like one.
func packCases() map[string]string {
	idToken := jwt(jwtHeader, idClaims, 256)
	return map[string]string{
		"empty":                 "",
		"JWT":                   idToken,
		"JWT without signature": jwt(`{"alg":"none"}`, idClaims, 0),
		"JWE":                   "eyJhbGciOiJSU0EtT0FFUCJ9.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jvQRb.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ",
		"opaque base64url":      "Zk3mQ9pL2xR7vT1wYb4nC8Hk3ZqP9xW2vN7mYc1rBgT5",
		"base32 refresh token":  "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGH",
		"non-canonical bits":    idToken[:strings.LastIndexByte(idToken, '.')] + ".AB",
		"bad segment length":    idToken[:strings.LastIndexByte(idToken, '.')] + ".ABCDE",
		"padding":               idToken + "==",
		"padded segment":        "eyJhbGciOiJub25lIn0=.e30.",
		"standard base64":       "ab+/cd.ef/+gh.ij",
		"newline inside":        "eyJh\nbGciOiJub25lIn0.e30.",
		"carriage return":       "eyJhbGciOiJub25lIn0.e30\r.",
		"space":                 "eyJhbGciOiJub25lIn0 .e30.",
		"non-ASCII":             "eyJhbGciOiJub25lIn0.Grüße✓.e30",
		"invalid UTF-8":         "eyJhbGciOiJub25lIn0.\xff\xfe.e30",
		"leading control byte":  "\x01eyJhbGciOiJub25lIn0.e30.",
		"leading NUL":           "\x00abc",
		"only dots":             "..",
		"one dot":               ".",
		"empty segments":        "abcd..efgh",
		"too many segments":     "a.b.c.d.e.f.g.h.i.j",
		"eight segments":        "abcd.abcd.abcd.abcd.abcd.abcd.abcd.abcd",
		"nine segments":         "abcd.abcd.abcd.abcd.abcd.abcd.abcd.abcd.abcd",
		"short":                 "x",
		"JSON claims in clear":  jwt(jwtHeader, strings.Repeat(`{"a":"b"}`, 40), 32),
		"access token":          jwt(jwtHeader, accessClaims, 256),
		"JSON with codes":       jwt(`{"alg":"RS256","kid":"0123456789abcdef0123456789abcdef01234"}`, `{"h":"`+strings.Repeat("0123456789abcdef", 40)+`","u":"5F0C3A4E-8D2B-4C1E-9A7F-000000000123","v":"5f0c3a4e-8d2b-4c1e-9a7f-00000000012","w":"5f0c3a4e-8d2b-4c1e-9a7f-000000000123","x":"abcde"}`, 0),
		"JSON with control":     jwt(jwtHeader, `{"a":"`+"\x1e\x01"+`","iss":"https://x"}`, 16),
	}
}

func TestPackTokenRoundTrip(t *testing.T) {
	for name, tok := range packCases() {
		t.Run(name, func(t *testing.T) {
			for _, squeeze := range []bool{false, true} {
				b := packToken(tok, squeeze)
				got, err := Unpack(b)
				if err != nil {
					t.Fatalf("Unpack(packToken(%q, %v)): %v", tok, squeeze, err)
				}
				if got != tok {
					t.Fatalf("round trip (squeeze %v) = %q, want %q", squeeze, got, tok)
				}
				if len(b) > len(tok)+1 {
					t.Errorf("packed to %d bytes, token is %d", len(b), len(tok))
				}
			}
		})
	}
}

// TestPackTokenSmaller checks that packing pays: a JWT is stored decoded,
// and its claims are deflated in the secrets.
func TestPackTokenSmaller(t *testing.T) {
	tok := jwt(jwtHeader, idClaims, 256)
	if b := Pack(tok); b[0] != tokenCoded || len(b) > len(tok)*2/3 {
		t.Errorf("Pack(JWT of %d bytes) = %d bytes (format %#x), want coded, under two thirds", len(tok), len(b), b[0])
	}
	if b := packToken(tok, true); len(b) > len(tok)*2/3 {
		t.Errorf("packToken(JWT of %d bytes, squeeze) = %d bytes, want under two thirds", len(tok), len(b))
	}
	if b := Pack("not a jwt!"); b[0] != tokenRaw {
		t.Errorf("Pack(not base64url) has format %#x, want raw", b[0])
	}
}

// deflatePlain deflates b without a dictionary, to show what the
// dictionary buys.
func deflatePlain(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestDictionaryPays: the claims and header of a realistic ID token deflate
// smaller against jwtDict than without it.
func TestDictionaryPays(t *testing.T) {
	for _, seg := range []string{jwtHeader, idClaims, accessClaims} {
		with, without := deflate([]byte(seg)), deflatePlain(t, []byte(seg))
		if len(with) >= len(without) {
			t.Errorf("%.20s…: %d bytes deflated with the dictionary, %d without", seg, len(with), len(without))
		}
		t.Logf("%d bytes: %d deflated with the dictionary, %d without, %d coded", len(seg), len(with), len(without), len(mustCode(t, seg)))
	}
	tok := jwt(jwtHeader, idClaims, 256)
	with := packToken(tok, true)
	if with[0] != tokenDict {
		t.Errorf("packToken(ID token, squeeze) has format %#x, want tokenDict", with[0])
	}
	// The same token with its claims deflated without the dictionary.
	dot1, dot2 := strings.IndexByte(tok, '.'), strings.LastIndexByte(tok, '.')
	claims, _ := ids.B64.DecodeString(tok[dot1+1 : dot2])
	old := len(jwtHeader) + len(deflatePlain(t, claims)) + 256 + 5
	if len(with) > old-100 {
		t.Errorf("ID token of %d chars packs to %d bytes with the dictionary, %d without: want 100 fewer", len(tok), len(with), old)
	}
}

func mustCode(t *testing.T, seg string) []byte {
	z, ok := encodeJSON([]byte(seg))
	if !ok {
		t.Fatalf("encodeJSON(%q) refused", seg)
	}
	return z
}

// TestCodedJSON: coding round-trips, shrinks the access token's JSON by
// more than half, and leaves alone JSON that holds control bytes.
func TestCodedJSON(t *testing.T) {
	for _, seg := range []string{jwtHeader, idClaims, accessClaims, "{", `{"x":"` + strings.Repeat("a", 600) + `"}`} {
		z := mustCode(t, seg)
		got, err := decodeJSON(nil, z)
		if err != nil || string(got) != seg {
			t.Errorf("decodeJSON(encodeJSON(%q)) = %q, %v", seg, got, err)
		}
	}
	if z := mustCode(t, accessClaims); len(z) > len(accessClaims)/2 {
		t.Errorf("access claims of %d bytes code to %d, want under half", len(accessClaims), len(z))
	}
	if _, ok := encodeJSON([]byte("{\"a\":\"\x1f\"}")); ok {
		t.Error("encodeJSON coded JSON with a control byte")
	}
}

func TestUnpackGarbage(t *testing.T) {
	tok := Pack(jwt(jwtHeader, idClaims, 256))
	cases := map[string][]byte{
		"unknown format":        {0x07, 'a'},
		"high byte":             {0xff},
		"space first":           []byte(" token"),
		"segments truncated":    {tokenSegments},
		"zero segments":         {tokenSegments, 0, 0},
		"too many segments":     {tokenSegments, maxSegments + 1, 0},
		"mask beyond segments":  {tokenSegments, 2, 0x04, 0},
		"length beyond the end": {tokenSegments, 2, 0, 50, 'a'},
		"bad uvarint":           {tokenSegments, 2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"bad deflate":           {tokenSegments, 1, 1, 0xff, 0xff, 0xff},
		"bad dict deflate":      {tokenDict, 1, 1, 0xff, 0xff, 0xff},
		"code zero":             {tokenCoded, 1, 1, '{', 0x00},
		"truncated UUID":        {tokenCoded, 1, 1, codeUUID, 1, 2, 3},
		"hex without length":    {tokenCoded, 1, 1, '{', codeHex},
		"empty hex run":         {tokenCoded, 1, 1, codeHex, 0},
		"truncated hex run":     {tokenCoded, 1, 1, codeHex, 5, 0x12},
		"odd hex run, low bits": {tokenCoded, 1, 1, codeHex, 3, 0x12, 0x34},
		"truncated JWT":         tok[: len(tok)/2 : len(tok)/2],
	}
	for name, b := range cases {
		if name == "truncated JWT" {
			// Cutting a packed JWT short leaves a shorter signature, not an
			// error: only the seal protects integrity. Just no panic.
			Unpack(b)
			continue
		}
		if _, err := Unpack(b); !errors.Is(err, sessionstore.ErrInvalid) {
			t.Errorf("Unpack(%s) error = %v, want sessionstore.ErrInvalid", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"unknown format":   {0x05},
		"length too large": {secretsFormat, 10, 'a'},
		"bad JSON":         []byte(`{"rt":`),
		"bad refresh":      {secretsFormat, 1, 0x07},
		"bad ID token":     {secretsFormat, 0, 0x07},
	} {
		if _, err := DecodeSecrets(b); !errors.Is(err, sessionstore.ErrInvalid) {
			t.Errorf("DecodeSecrets(%s) error = %v, want sessionstore.ErrInvalid", name, err)
		}
	}
}

func TestSecretsRoundTrip(t *testing.T) {
	cases := packCases()
	for _, rt := range []string{"", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGH", cases["JWT"], "\x00"} {
		for name, it := range cases {
			want := sessionstore.Secrets{RefreshToken: rt, IDToken: it}
			b, err := EncodeSecrets(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeSecrets(b)
			if err != nil || got != want {
				t.Fatalf("DecodeSecrets(EncodeSecrets(rt %q, %s)) = %+v, %v", rt, name, got, err)
			}
		}
	}
}

func FuzzPackToken(f *testing.F) {
	for _, tok := range packCases() {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, squeeze := range []bool{false, true} {
			b := packToken(tok, squeeze)
			got, err := Unpack(b)
			if err != nil || got != tok {
				t.Fatalf("packToken(%q, %v) round trip = %q, %v", tok, squeeze, got, err)
			}
		}
		sb, _ := EncodeSecrets(sessionstore.Secrets{RefreshToken: tok, IDToken: tok + "." + tok})
		s, err := DecodeSecrets(sb)
		if err != nil || s.RefreshToken != tok || s.IDToken != tok+"."+tok {
			t.Fatalf("secrets round trip of %q = %+v, %v", tok, s, err)
		}
		// The same bytes as a packed value: garbage must fail cleanly.
		if _, err := Unpack([]byte(tok)); err != nil && !errors.Is(err, sessionstore.ErrInvalid) {
			t.Fatalf("Unpack(%q) error %v does not wrap sessionstore.ErrInvalid", tok, err)
		}
		if _, err := DecodeSecrets([]byte(tok)); err != nil && !errors.Is(err, sessionstore.ErrInvalid) {
			t.Fatalf("DecodeSecrets(%q) error %v does not wrap sessionstore.ErrInvalid", tok, err)
		}
		for _, f := range []byte{tokenSegments, tokenDict, tokenCoded} {
			b := append([]byte{f, 1, 1}, tok...)
			if _, err := Unpack(b); err != nil && !errors.Is(err, sessionstore.ErrInvalid) {
				t.Fatalf("Unpack(%q) error %v does not wrap sessionstore.ErrInvalid", b, err)
			}
		}
		// And a valid packed token with its tail cut must not panic.
		for _, b := range [][]byte{packToken(tok, true), packToken(tok, false), sb} {
			for i := range min(len(b), 8) {
				Unpack(b[:len(b)-i])
				DecodeSecrets(bytes.Clone(b[:len(b)-i]))
			}
		}
	})
}

// accessClaims are the claims of a typical (Keycloak) access token.
const accessClaims = `{"iss":"https://login.example.com/realms/main","sub":"5f0c3a4e-8d2b-4c1e-9a7f-000000000123","aud":"https://api.example.com","exp":1735689600,"iat":1735687800,"jti":"0e6f2a1b-7c3d-4e5f-9a8b-1c2d3e4f5a6b","scope":"openid profile email offline_access","client_id":"bff","sid":"b1e2d3c4-a5b6-4789-8abc-000000000247"}`

// BenchmarkUnpackToken measures what every proxied request pays to restore
// the access token from its packed form.
func BenchmarkUnpackToken(b *testing.B) {
	header := `{"alg":"RS256","kid":"5d7c1f0c4b2e8a9d3f6e1b7a0c2d4e6f8a1b3c5d","typ":"JWT"}`
	tok := jwt(header, accessClaims, 256)
	p := Pack(tok)
	b.ReportAllocs()
	for b.Loop() {
		if got, err := Unpack(p); err != nil || len(got) != len(tok) {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(len(p)), "packed-bytes")
}
