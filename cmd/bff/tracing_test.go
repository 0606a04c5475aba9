package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/internal/syncbuf"
)

// TestServeExportsTracesOnlyWithEndpoint runs `serve` twice against an
// OTLP/HTTP receiver: without OTEL_EXPORTER_OTLP_ENDPOINT nothing is sent
// and no exporter goroutine exists; with it, the requests' spans arrive
// (flushed at shutdown) and the batching goroutine runs. Both runs export
// bff_sessions_active through the store the serve path builds (sqlite
// behind its record cache, and memory).
func TestServeExportsTracesOnlyWithEndpoint(t *testing.T) {
	var posts atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
	}))
	defer receiver.Close()

	for _, on := range []bool{false, true} {
		env := map[string]string{"OTEL_SERVICE_NAME": "bff-test"}
		if on {
			env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.URL
		}
		var metrics string
		if !on {
			env["BFF_STORE"] = "sqlite:" + filepath.Join(t.TempDir(), "sessions.db")
		}
		exporting := serveBriefly(t, env, func(admin string) {
			adminGet(t, admin, "/metrics")
			metrics = adminGet(t, admin, "/metrics") // shows the first scrape's count, and no second one
		})
		if !strings.Contains(metrics, "\nbff_sessions_active 0\n") || !strings.Contains(metrics, "bff_store_operation_duration_seconds_count{op=\"count\",result=\"ok\"} 1") {
			t.Errorf("store %s: no sessions-active gauge through the serve path's store:\n%s", env["BFF_STORE"], metrics)
		}
		switch {
		case !on && exporting:
			t.Error("without an endpoint, an OpenTelemetry SDK goroutine runs")
		case !on && posts.Load() != 0:
			t.Errorf("without an endpoint, %d exports arrived", posts.Load())
		case on && !exporting:
			t.Error("with an endpoint, no batching goroutine runs (the goroutine check cannot see it)")
		case on && posts.Load() == 0:
			t.Error("with an endpoint, no spans arrived")
		}
	}
}

func adminGet(t *testing.T, admin, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+path, nil)
	req.Header.Set("Authorization", "Bearer trace-test-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// serveBriefly runs serve with env added to a working configuration, makes
// a few requests, reports whether an OpenTelemetry SDK goroutine is
// running, and stops the server.
func serveBriefly(t *testing.T, extra map[string]string, check func(admin string)) (sdkGoroutine bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	public, admin := freeAddr(t), freeAddr(t)
	op, err := devstack.StartOP(ctx, devstack.OPConfig{Clients: []devstack.Client{{
		ID: "trace-test", Secret: "trace-test-secret", RedirectURIs: []string{"http://" + public + "/bff/callback"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	env := map[string]string{
		"BFF_ISSUER": op.Issuer(), "BFF_CLIENT_ID": "trace-test", "BFF_CLIENT_SECRET": "trace-test-secret",
		"BFF_PUBLIC_URL": "http://" + public, "BFF_LISTEN": public, "BFF_ADMIN_LISTEN": admin,
		"BFF_ADMIN_TOKEN": "trace-test-admin-token", "BFF_KEYS": newKey(), "BFF_STORE": "memory:",
	}
	for k, v := range extra {
		env[k] = v
	}
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &stderr, &stderr) }()
	waitReady(t, ctx, http.DefaultClient, "http://"+admin+"/readyz", done, &stderr)

	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp := mustGet(t, c, "http://"+public+"/bff/login", nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	mustGet(t, c, "http://"+public+"/bff/user", http.Header{"X-Csrf": {"1"}})

	check(admin)

	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	sdkGoroutine = strings.Contains(stacks, "go.opentelemetry.io/otel/sdk/trace.") || strings.Contains(stacks, "otlptracehttp")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	return sdkGoroutine
}
