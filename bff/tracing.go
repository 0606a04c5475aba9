package bff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the BFF's OpenTelemetry trace pipeline: OTLP over HTTP, on
// only when an OTLP endpoint is configured. Off, it is nothing at all — no
// exporter, no batching goroutine, no per-request span.
type Tracing struct {
	// Provider is nil when tracing is off.
	Provider *sdktrace.TracerProvider
}

// StartTracing builds the trace pipeline from the standard variables:
// tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or
// OTEL_EXPORTER_OTLP_ENDPOINT (with /v1/traces appended) is set, and
// OTEL_SDK_DISABLED is not true and OTEL_TRACES_EXPORTER is not none. The
// endpoint is read through getenv; the SDK reads the other OTEL_* variables
// (headers, timeout, compression, certificates, sampler, batch limits,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) from the process environment.
func StartTracing(ctx context.Context, getenv func(string) string, version string) (*Tracing, error) {
	endpoint, name := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if endpoint == "" {
		if base := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			endpoint, name = strings.TrimSuffix(base, "/")+"/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"
		}
	}
	if endpoint == "" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return &Tracing{}, nil
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: want an http:// or https:// URL", name)
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "bff"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil && res == nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return &Tracing{Provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))}, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t != nil && t.Provider != nil }

// Shutdown exports the spans still queued and stops the pipeline.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.Provider.Shutdown(ctx)
}

// tracer is the BFF's instrumentation scope.
const tracerName = "github.com/bffproxy/bff/bff"

// traceContext is W3C Trace Context (traceparent, tracestate): what the
// BFF reads from a trusted proxy and sends to upstreams.
var traceContext propagation.TextMapPropagator = propagation.TraceContext{}

// noSpan is what startSpan returns when tracing is off: every method is a
// no-op, so call sites need no checks.
var noSpan = trace.SpanFromContext(context.Background())

// startSpan starts a child span of the request's span, or does nothing
// when tracing is off.
func (s *Server) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, noSpan
	}
	return s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan records err (its text is the BFF's own wording: IdP and upstream
// bodies never reach an error, see describeTokenError) and ends the span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceRequests gives every browser request a server span named by its
// route pattern (never the path, query or a header value). A traceparent
// sent by the browser is ignored, so a page cannot choose the trace its
// requests join or flood a trace it does not own; only a trusted proxy in
// front of the BFF (BFF_TRUSTED_PROXIES) may continue its trace.
func (s *Server) traceRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if s.fromTrustedProxy(r) {
			ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		method := spanMethod(r.Method)
		ctx, span := s.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("bff.request_id", requestID(ctx))))
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(ctx)
		next.ServeHTTP(rec, r)
		// ServeMux has set the pattern it matched on this request.
		if route := routeOfPattern(r.Pattern); route != "" {
			span.SetName(method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// spanMethod keeps span names and attributes to the known methods.
func spanMethod(m string) string {
	if i := methodIndex(m); i < len(upstreamMethods)-1 {
		return upstreamMethods[i]
	}
	return "HTTP"
}

// routeOfPattern is the path part of a ServeMux pattern ("GET /bff/login"
// → "/bff/login").
func routeOfPattern(p string) string {
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// upstreamTransport is a route's view of the shared upstream transport: it
// times each call into bff_upstream_request_duration_seconds, counts open
// streams, and, when tracing is on, makes the call a client span and sends
// its traceparent to the upstream.
type upstreamTransport struct {
	next    http.RoundTripper
	route   string
	obs     *observerGrid
	streams prometheus.Gauge
	tracer  trace.Tracer // nil: tracing off
}

func (s *Server) upstreamTransport(route Route) http.RoundTripper {
	return &upstreamTransport{
		next: s.transport, route: route.Prefix, obs: s.metrics.upstreamObservers(route.Prefix),
		streams: s.metrics.openStreams[streamProxied], tracer: s.tracer,
	}
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	span := noSpan
	if t.tracer != nil {
		var ctx context.Context
		ctx, span = t.tracer.Start(req.Context(), "upstream "+t.route, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("http.route", t.route), attribute.String("http.request.method", spanMethod(req.Method))))
		// A RoundTripper must not change the caller's request.
		req = req.Clone(ctx)
		traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := t.next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.obs.at(methodIndex(req.Method), codeClassIndex(status, err)).Observe(time.Since(start).Seconds())
	if err != nil {
		endSpan(span, errors.New("upstream unreachable or timed out"))
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
	if isStream(resp) {
		t.streams.Inc()
		resp.Body = countedBody(resp.Body, t.streams.Dec)
	}
	return resp, nil
}

// isStream reports a long-lived response: a WebSocket (or other protocol)
// upgrade, or an event stream.
func isStream(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return true
	}
	// A prefix test, not a media-type parse: this runs on every response.
	return strings.HasPrefix(strings.ToLower(resp.Header.Get("Content-Type")), "text/event-stream")
}

// countedBody calls done once when the body is closed. An upgraded
// connection's body stays an io.ReadWriteCloser, which ReverseProxy needs.
func countedBody(body io.ReadCloser, done func()) io.ReadCloser {
	c := &closeOnce{done: done}
	if rw, ok := body.(io.ReadWriteCloser); ok {
		return &countedRW{ReadWriteCloser: rw, closeOnce: c}
	}
	return &countedRC{ReadCloser: body, closeOnce: c}
}

type closeOnce struct {
	once sync.Once
	done func()
}

type countedRC struct {
	io.ReadCloser
	*closeOnce
}

func (c *countedRC) Close() error {
	c.once.Do(c.done)
	return c.ReadCloser.Close()
}

type countedRW struct {
	io.ReadWriteCloser
	*closeOnce
}

func (c *countedRW) Close() error {
	c.once.Do(c.done)
	return c.ReadWriteCloser.Close()
}
