package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cleanEnv is the test's environment without BFF_* settings, which would
// change what bff dev and bff admin do, and with HOME in the temp dir.
func cleanEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BFF_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home)
}

func waitHealthy(t *testing.T, ctx context.Context, healthURL string, exited <-chan error) {
	t.Helper()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("bff dev exited before it was healthy: %v", err)
		case <-ctx.Done():
			t.Fatalf("bff dev not healthy at %s: %v", healthURL, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// eventually retries f every 50 ms until it returns nil or timeout passes,
// and returns the last error and the time it took.
func retryFor(timeout time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil || time.Since(start) > timeout {
			return time.Since(start), err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
