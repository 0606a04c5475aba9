package main

import (
	"context"
	"errors"
	"io"
	"testing"
)

func TestHealthURL(t *testing.T) {
	cases := []struct {
		listen string
		tls    bool
		want   string
	}{
		{"127.0.0.1:9091", false, "http://127.0.0.1:9091/healthz"},
		{"0.0.0.0:9091", false, "http://127.0.0.1:9091/healthz"},
		{":9091", true, "https://127.0.0.1:9091/healthz"},
		{"[::]:9091", false, "http://[::1]:9091/healthz"},
		{"10.1.2.3:9091", true, "https://10.1.2.3:9091/healthz"},
	}
	for _, c := range cases {
		if got, err := healthURL(c.listen, c.tls); err != nil || got != c.want {
			t.Errorf("healthURL(%q, %v) = %q, %v; want %q", c.listen, c.tls, got, err, c.want)
		}
	}
	if _, err := healthURL("9091", false); err == nil {
		t.Error("healthURL accepted an address without a port separator")
	}
}

// TestHealthcheckNeedsTheAdminListener: with the admin listener off there
// is nothing to ask; the check fails (exit 1) and says why.
func TestHealthcheckNeedsTheAdminListener(t *testing.T) {
	env := map[string]string{
		"BFF_ISSUER": "http://127.0.0.1:1", "BFF_CLIENT_ID": "x", "BFF_CLIENT_SECRET": "y",
		"BFF_PUBLIC_URL": "http://127.0.0.1:1", "BFF_KEYS": newKey(), "BFF_ADMIN_LISTEN": "off",
	}
	err := run(context.Background(), []string{"healthcheck"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if !errors.Is(err, errAdminOff) || exitCode(err) != 1 {
		t.Errorf("healthcheck with the admin listener off: %v (exit %d), want errAdminOff and exit 1", err, exitCode(err))
	}
}
