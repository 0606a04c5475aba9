package bff_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/bffproxy/bff/bff"
)

// mustStartTracing turns tracing on, exporting to col.
func mustStartTracing(t *testing.T, col *collector) *bff.Tracing {
	t.Helper()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": col.srv.URL}
	tr, err := bff.StartTracing(t.Context(), func(k string) string { return env[k] }, "test")
	if err != nil || !tr.Enabled() {
		t.Fatalf("StartTracing: %v (enabled %v)", err, tr.Enabled())
	}
	t.Cleanup(func() { tr.Shutdown(context.Background()) })
	return tr
}

func flush(t *testing.T, tr *bff.Tracing) {
	t.Helper()
	if err := tr.Provider.ForceFlush(t.Context()); err != nil {
		t.Fatalf("flush spans: %v", err)
	}
}

func only(t *testing.T, col *collector, name string) *tracepb.Span {
	t.Helper()
	spans := col.named(name)
	if len(spans) != 1 {
		var names []string
		for _, s := range col.all() {
			names = append(names, s.Name)
		}
		t.Fatalf("%d spans named %q, want 1; spans: %q", len(spans), name, names)
	}
	return spans[0]
}

const browserTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestTracesOfSignInAndAPICall: with an OTLP endpoint, the sign-in and an
// API call export a span per request named by its route, child spans for
// the IdP token call (grant type only), the store and the upstream call,
// and the upstream receives the traceparent of the BFF's span — not the
// one the browser sent.
func TestTracesOfSignInAndAPICall(t *testing.T) {
	col := startCollector(t)
	tr := mustStartTracing(t, col)
	upstream := &headerRecorder{}
	st := mustStartStack(t, stackOptions{tracing: tr, upstream: upstream, configure: func(c *bff.Config) { c.LogRequests = true }})

	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	resp := b.get(t, "/api/whoami?q=secret-query", http.Header{"X-Csrf": {"1"}, "Traceparent": {browserTraceparent}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %d", resp.StatusCode)
	}
	flush(t, tr)

	login := only(t, col, "GET /bff/login")
	callback := only(t, col, "GET /bff/callback")
	api := only(t, col, "GET /api/")
	if spanAttr(api, "bff.request_id") != resp.Header.Get("X-Request-Id") || spanAttr(api, "http.route") != "/api/" {
		t.Errorf("API span attributes: %v", api.Attributes)
	}
	if api.Kind != tracepb.Span_SPAN_KIND_SERVER || login.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("request spans are not server spans")
	}
	// The request id joins the access log line and the span.
	if line := "request_id=" + resp.Header.Get("X-Request-Id") + " method=GET path=/api/whoami status=200"; !strings.Contains(st.logs.String(), line) ||
		!strings.Contains(st.logs.String(), "trace_id="+traceID(api)) {
		t.Errorf("no access log line with the request id and trace id %s", traceID(api))
	}
	exchange := only(t, col, "idp.token")
	if spanAttr(exchange, "oauth.grant_type") != "authorization_code" || spanID(callback) != hexID((exchange.ParentSpanId)) {
		t.Errorf("token call span: grant %q, parent %x (callback %s)", spanAttr(exchange, "oauth.grant_type"), exchange.ParentSpanId, spanID(callback))
	}
	var createUnderCallback bool
	for _, s := range col.named("store.create") {
		createUnderCallback = createUnderCallback || (traceID(s) == traceID(callback) && spanAttr(s, "bff.store.result") == "ok")
	}
	if !createUnderCallback {
		t.Error("no store.create span in the callback's trace")
	}
	var getUnderAPI bool
	for _, s := range col.named("store.get") {
		getUnderAPI = getUnderAPI || hexID((s.ParentSpanId)) == spanID(api)
	}
	if !getUnderAPI {
		t.Error("no store.get span under the API request's span")
	}

	up := only(t, col, "upstream /api/")
	if hexID((up.ParentSpanId)) != spanID(api) || spanAttr(up, "http.route") != "/api/" {
		t.Errorf("upstream span is not a child of the API span")
	}
	got := upstream.request().Header.Get("Traceparent")
	want := "00-" + traceID(api) + "-" + spanID(up) + "-01"
	if got != want {
		t.Errorf("upstream traceparent %q, want %q (the BFF's upstream span)", got, want)
	}
	for _, s := range col.all() {
		if traceID(s) == "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("span %q joined the trace the browser chose", s.Name)
		}
		if strings.ContainsAny(s.Name, "?=") {
			t.Errorf("span %q carries a query", s.Name)
		}
	}
	if strings.Contains(col.rawText(), "secret-query") {
		t.Error("an exported span carries the query")
	}
}

// TestTraceparentFromTrustedProxy: a trusted proxy's traceparent is
// continued: the request span is its child.
func TestTraceparentFromTrustedProxy(t *testing.T) {
	col := startCollector(t)
	tr := mustStartTracing(t, col)
	upstream := &headerRecorder{}
	st := mustStartStack(t, stackOptions{tracing: tr, upstream: upstream, configure: func(c *bff.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if resp := b.get(t, "/api/x", http.Header{"X-Csrf": {"1"}, "Traceparent": {browserTraceparent}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("api: %d", resp.StatusCode)
	}
	flush(t, tr)
	api := only(t, col, "GET /api/")
	if traceID(api) != "0af7651916cd43dd8448eb211c80319c" || hexID((api.ParentSpanId)) != "b7ad6b7169203331" {
		t.Errorf("request span %s/%x does not continue the proxy's trace", traceID(api), api.ParentSpanId)
	}
	if tp := upstream.request().Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-0af7651916cd43dd8448eb211c80319c-") || strings.Contains(tp, "b7ad6b7169203331") {
		t.Errorf("upstream traceparent %q", tp)
	}
}

// TestNoTracingWithoutEndpoint: without an OTLP endpoint variable tracing
// is off, and the browser's traceparent does not reach the upstream.
func TestNoTracingWithoutEndpoint(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "bff", "OTEL_TRACES_SAMPLER": "always_on"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
	} {
		tr, err := bff.StartTracing(t.Context(), func(k string) string { return env[k] }, "test")
		if err != nil || tr.Enabled() {
			t.Fatalf("%v: tracing on (%v)", env, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:4318", "ftp://x", "http://"} {
		env := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": bad}
		if _, err := bff.StartTracing(t.Context(), func(k string) string { return env[k] }, "test"); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
			t.Errorf("endpoint %q: %v, want an error naming the variable", bad, err)
		}
	}
	upstream := &headerRecorder{}
	st := mustStartStack(t, stackOptions{upstream: upstream})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	if resp := b.get(t, "/api/x", http.Header{"X-Csrf": {"1"}, "Traceparent": {browserTraceparent}, "Tracestate": {"a=b"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("api: %d", resp.StatusCode)
	}
	if h := upstream.request().Header; h.Get("Traceparent") != "" || h.Get("Tracestate") != "" {
		t.Errorf("the browser's trace context reached the upstream: %q %q", h.Get("Traceparent"), h.Get("Tracestate"))
	}
}
