package sessionstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

func testSession() *Session {
	now := time.Now()
	return &Session{
		Key:               KeyFromCookie("cookie"),
		Handle:            "h-123",
		Subject:           "sub-1",
		Issuer:            "https://issuer.example/",
		IdPSID:            "isid-1",
		Claims:            map[string]string{"name": "Ada Lovelace", "email": "ada@example.org", "unicode": "Grüße ✓"},
		AccessToken:       []byte{1, 2, 3, 0, 255},
		AccessExpiresAt:   now.Add(5 * time.Minute),
		AccessIssuedAt:    now,
		Secrets:           []byte("sealed secrets"),
		Scope:             "openid profile offline_access",
		CreatedAt:         now.Add(-time.Second),
		LastSeen:          now,
		AbsoluteExpiresAt: now.Add(8 * time.Hour),
		ExpiresAt:         now.Add(30 * time.Minute),
		UserAgent:         "Mozilla/5.0 (test)",
		ClientIP:          "192.0.2.7",
		Version:           7,
	}
}

// sameRecord compares every field of two sessions, times by instant.
func sameRecord(t *testing.T, got, want *Session) {
	t.Helper()
	gt, wt := got.times(), want.times()
	for i := range gt {
		if !gt[i].Equal(wt[i]) || gt[i].IsZero() != wt[i].IsZero() {
			t.Errorf("time %d = %v, want %v", i, gt[i], wt[i])
		}
		if gt[i] != gt[i].Round(0) {
			t.Errorf("time %d carries a monotonic reading", i)
		}
	}
	if !maps.Equal(got.Claims, want.Claims) || !bytes.Equal(got.AccessToken, want.AccessToken) || !bytes.Equal(got.Secrets, want.Secrets) ||
		!bytes.Equal(got.RouteTokens, want.RouteTokens) {
		t.Errorf("claims or tokens differ: got %+v, want %+v", got, want)
	}
	str := func(s *Session) [10]string {
		return [10]string{s.Key, s.Handle, s.Subject, s.Issuer, s.IdPSID, s.Scope, s.UserAgent, s.ClientIP, fmt.Sprint(s.Version), fmt.Sprint(s.Claims == nil)}
	}
	if g, w := str(got), str(want); g != w {
		t.Errorf("fields = %q, want %q", g, w)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	loc := time.FixedZone("X", 5*3600+1800)
	cases := map[string]func(s *Session){
		"typical":       func(*Session) {},
		"minimal":       func(s *Session) { *s = Session{Key: s.Key, Handle: "h", Subject: "s", ExpiresAt: s.ExpiresAt} },
		"no CreatedAt":  func(s *Session) { s.CreatedAt = time.Time{} },
		"no claims":     func(s *Session) { s.Claims = nil },
		"zone":          func(s *Session) { s.ExpiresAt = s.ExpiresAt.In(loc); s.CreatedAt = s.CreatedAt.In(loc) },
		"epoch":         func(s *Session) { s.CreatedAt = time.Unix(0, 0) },
		"before epoch":  func(s *Session) { s.CreatedAt = time.Date(1601, 1, 1, 0, 0, 0, 999, time.UTC) },
		"far future":    func(s *Session) { s.ExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) },
		"far past":      func(s *Session) { s.LastSeen = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) },
		"fraction only": func(s *Session) { s.LastSeen = s.CreatedAt.Add(time.Nanosecond) },
		"UUIDs": func(s *Session) {
			s.Subject, s.IdPSID = "5f0c3a4e-8d2b-4c1e-9a7f-000000000123", "b1e2d3c4-a5b6-4789-8abc-def012345678"
		},
		"UUID upper case":  func(s *Session) { s.Subject = "5F0C3A4E-8D2B-4C1E-9A7F-000000000123" },
		"UUID misplaced":   func(s *Session) { s.Subject = "5f0c3a4e8-d2b-4c1e-9a7f-000000000123" },
		"base64url handle": func(s *Session) { s.Handle = "q3Zk9pL2xR7vT1wYb4nC8g" },
		"non-canonical":    func(s *Session) { s.Handle = "q3Zk9pL2xR7vT1wYb4nC8h" },
		"route tokens":     func(s *Session) { s.RouteTokens = []byte("sealed route tokens") },
		"binary strings": func(s *Session) {
			s.UserAgent, s.ClientIP, s.Claims["\x00"] = "\xff\x00\x01", "", "\xfe"
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			want := testSession()
			change(want)
			b, err := Encode(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(want.Key, want.Version, b)
			if err != nil {
				t.Fatal(err)
			}
			sameRecord(t, got, want)
			again, err := Encode(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs: %v", err)
			}
		})
	}
}

// TestEncodeSize: a typical record is a small fraction of its JSON.
func TestEncodeSize(t *testing.T) {
	s := testSession()
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(s)
	if len(b) > len(j)/2 {
		t.Errorf("record is %d bytes, JSON %d: want at most half", len(b), len(j))
	}
}

func TestDecodeInvalid(t *testing.T) {
	good, err := Encode(testSession())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":              nil,
		"unknown format":     {0x09},
		"truncated":          good[:len(good)-1],
		"trailing":           append(bytes.Clone(good), 0),
		"after route tokens": append(bytes.Clone(good), 1, 'r', 0),
		"bad JSON":           []byte(`{"h":`),
		"huge claim count":   {recordFormat, 1, 'h', 1, 's', 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"too large":          bytes.Repeat([]byte{0}, MaxRecordSize+1),
		"no expiry":          {recordFormat, 1, 'h', 1, 's', 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"bad time flags":     {recordFormat, 1, 'h', 1, 's', 0, 0, 0, 0, 0, 0, 0, 0, 0x40},
		"bad fraction":       binary.AppendVarint([]byte{recordFormat, 1, 'h', 1, 's', 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 2}, 1e9),
		"negative fraction":  binary.AppendVarint([]byte{recordFormat, 1, 'h', 1, 's', 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 2}, -1),
		"repeated claim":     {recordFormat, 1, 'h', 1, 's', 0, 0, 0, 0, 0, 2, 1, 'a', 0, 1, 'a', 0, 0, 0, 0x20, 2, 0},
	}
	for name, b := range cases {
		if _, err := Decode("k", 1, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%s) error = %v, want ErrInvalid", name, err)
		}
	}
	s := testSession()
	s.Claims["big"] = strings.Repeat("x", MaxRecordSize)
	if _, err := Encode(s); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode(huge claim) error = %v, want ErrInvalid", err)
	}
}

// FuzzDecode: Decode of anything fails with ErrInvalid or yields a session
// that encodes and decodes to itself; it never panics.
func FuzzDecode(f *testing.F) {
	good, _ := Encode(testSession())
	f.Add(good)
	j, _ := json.Marshal(testSession())
	f.Add(j)
	min := testSession()
	*min = Session{Key: "k", Handle: "h", Subject: "s", ExpiresAt: time.Unix(1, 1)}
	mb, _ := Encode(min)
	f.Add(mb)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode("k", 1, b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v does not wrap ErrInvalid", err)
			}
			return
		}
		e, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode of a decoded session: %v", err)
		}
		s2, err := Decode("k", 1, e)
		if err != nil {
			t.Fatalf("Decode of a re-encoded session: %v", err)
		}
		sameRecord(t, s2, s)
	})
}

// FuzzEncodeIDs: identifiers, stored decoded when they can be, come back
// exactly whatever they are.
func FuzzEncodeIDs(f *testing.F) {
	f.Add("q3Zk9pL2xR7vT1wYb4nC8g", "5f0c3a4e-8d2b-4c1e-9a7f-000000000123", "")
	f.Add("h", "sub", "b1e2d3c4-a5b6-4789-8abc-def01234567G")
	f.Fuzz(func(t *testing.T, handle, subject, sid string) {
		want := testSession()
		want.Handle, want.Subject, want.IdPSID = handle, subject, sid
		b, err := Encode(want)
		if err != nil {
			if handle == "" || subject == "" {
				return
			}
			t.Fatal(err)
		}
		got, err := Decode(want.Key, want.Version, b)
		if err != nil {
			t.Fatal(err)
		}
		sameRecord(t, got, want)
	})
}
