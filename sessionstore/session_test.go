package sessionstore

import (
	"encoding/base64"
	"testing"
)

func TestHandleFromKey(t *testing.T) {
	key := KeyFromCookie("a cookie value")
	h := HandleFromKey(key)
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(raw[:16]); h != want || len(h) != 22 {
		t.Errorf("HandleFromKey(%q) = %q, want %q (22 characters)", key, h, want)
	}
	if h2 := HandleFromKey(KeyFromCookie("another cookie value")); h2 == h {
		t.Errorf("two keys share handle %q", h)
	}
	for _, bad := range []string{"", "short", key[:42], key + "A", key[:42] + "!", key[:42] + "B"} {
		if got := HandleFromKey(bad); got != "" {
			t.Errorf("HandleFromKey(%q) = %q, want \"\"", bad, got)
		}
	}
}
