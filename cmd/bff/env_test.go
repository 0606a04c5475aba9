package main

import (
	"context"
	"fmt"
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

// waitReady polls url with c until it answers 200, for at most 20 seconds.
// It fails the test if the server exits first (its error is put back on
// exited for whoever waits on it next) or ctx ends, and shows logs, if any.
func waitReady(t *testing.T, ctx context.Context, c *http.Client, url string, exited chan error, logs fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	output := ""
	if logs != nil {
		output = "\n" + logs.String()
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err
			if logs != nil {
				output = "\n" + logs.String()
			}
			t.Fatalf("exited before %s answered 200: %v%s", url, err, output)
		case <-ctx.Done():
			if logs != nil {
				output = "\n" + logs.String()
			}
			t.Fatalf("%s did not answer 200: %v%s", url, err, output)
		case <-time.After(50 * time.Millisecond):
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
