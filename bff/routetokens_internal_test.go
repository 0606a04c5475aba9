package bff

import (
	"testing"
	"time"
)

func TestRouteTokenSetRoundTripKeepsMilliseconds(t *testing.T) {
	now := time.UnixMilli(time.Now().UnixMilli())
	set := routeTokenSet{
		"https://orders.test/ ":      {value: "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJvcmRlcnMifQ.c2ln", issued: now, expiresAt: now.Add(2*time.Second + 900*time.Millisecond)},
		"exchange partner-api  read": {value: "opaque-token", issued: now, expiresAt: now.Add(time.Hour)},
	}
	got, err := decodeRouteTokens(set.encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(set) {
		t.Fatalf("decoded %d tokens, want %d", len(got), len(set))
	}
	for k, want := range set {
		g := got[k]
		if g.value != want.value || !g.issued.Equal(want.issued) || !g.expiresAt.Equal(want.expiresAt) {
			t.Errorf("%q: got %+v, want %+v", k, g, want)
		}
	}
	for name, b := range map[string][]byte{
		"empty": nil, "old format": {1, 0}, "truncated": set.encode()[:10], "trailing": append(set.encode(), 0),
		"huge count": {routeTokensFormat, 0xff, 0xff, 0x03},
	} {
		if _, err := decodeRouteTokens(b); err == nil {
			t.Errorf("decode(%s) accepted", name)
		}
	}
}
