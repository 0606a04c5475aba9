package bff_test

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP trace receiver in the test process: it decodes
// each export with the OTLP protobuf definitions and keeps the spans and
// the raw bytes (for leak checks).
type collector struct {
	srv *httptest.Server

	mu    sync.Mutex
	raw   []byte
	spans []*tracepb.Span
	posts int
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces with protobuf", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.posts++
	c.raw = append(c.raw, raw...)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (c *collector) all() []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tracepb.Span(nil), c.spans...)
}

// rawText is every byte exported, with every string attribute value
// appended decoded, for "does this secret appear anywhere" checks.
func (c *collector) rawText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sb strings.Builder
	sb.Write(c.raw)
	for _, s := range c.spans {
		sb.WriteString("\n" + s.Name)
		for _, kv := range s.Attributes {
			sb.WriteString("\n" + kv.Key + "=" + anyValue(kv.Value))
		}
		if s.Status != nil {
			sb.WriteString("\n" + s.Status.Message)
		}
	}
	return sb.String()
}

func (c *collector) named(name string) []*tracepb.Span {
	var out []*tracepb.Span
	for _, s := range c.all() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case nil:
		return ""
	default:
		return v.String()
	}
}

func spanAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return anyValue(kv.Value)
		}
	}
	return ""
}

func traceID(s *tracepb.Span) string { return hex.EncodeToString(s.TraceId) }
func spanID(s *tracepb.Span) string  { return hex.EncodeToString(s.SpanId) }
func hexID(b []byte) string          { return hex.EncodeToString(b) }
