package bff

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are created and registered once, at start-up: creating metric
// vectors per request is a known throughput killer in auth proxies. No
// metric has a label whose values come from a user (a sub, a session, a
// path): every label set is bounded by the configuration.
type metrics struct {
	requests *prometheus.CounterVec
	// requestsByClass holds the children of requests for 1xx…5xx, resolved
	// once: the access path then increments without a label lookup.
	requestsByClass    [5]prometheus.Counter
	logins             prometheus.Counter
	refreshes          prometheus.Counter
	refreshFailures    prometheus.Counter
	revocationFailures prometheus.Counter
	sessionsEnded      *prometheus.CounterVec
	adminAuthFailures  prometheus.Counter

	upstream *prometheus.HistogramVec // route, method, code class
	store    *observerGrid            // op × result
	// refreshDuration is indexed by refreshOK, refreshRefused, refreshError.
	refreshDuration [3]prometheus.Observer
	lockWait        [5]prometheus.Observer // indexed like lockWaitResults
	loginOutcomes   *prometheus.CounterVec
	loginOK         prometheus.Counter
	csrfRefusals    [4]prometheus.Counter // indexed by csrfKind
	openStreams     [2]prometheus.Gauge   // indexed by streamKind
}

// Label values of the bounded label sets.
var (
	upstreamMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
	codeClasses     = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "error"}
	refreshResults  = []string{"ok", "refused", "error"}
	lockWaitResults = []string{"acquired", "refreshed_elsewhere", "timeout", "session_gone", "error"}
	csrfKinds       = []string{"cross_site", "missing_header", "websocket_origin", "stream_origin"}
	streamKinds     = []string{"session_events", "proxied"}
)

const (
	refreshOK = iota
	refreshRefused
	refreshError
)

// Indexes into lockWait, in the order of lockWaitResults.
const (
	lockAcquired = iota
	lockRefreshedElsewhere
	lockTimeout
	lockSessionGone
	lockError
)

type csrfKind int

const (
	csrfCrossSite csrfKind = iota
	csrfMissingHeader
	csrfWebSocketOrigin
	csrfStreamOrigin
)

type streamKind int

const (
	streamSessionEvents streamKind = iota
	streamProxied
)

// Buckets: upstream calls and refreshes are network round trips (ms to
// seconds); store operations are sub-millisecond in memory and Redis.
var (
	networkBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	storeBuckets    = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	lockWaitBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_http_requests_total", Help: "Browser-side requests by status class.",
		}, []string{"class"}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_logins_total", Help: "Sessions created by a completed login.",
		}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_token_refreshes_total", Help: "Refresh grants sent to the IdP.",
		}),
		refreshFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_token_refresh_failures_total", Help: "Refresh grants that failed for a reason other than a refusal.",
		}),
		revocationFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_token_revocation_failures_total", Help: "Refresh-token revocations the IdP did not confirm.",
		}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_sessions_ended_total", Help: "Sessions ended early, by cause.",
		}, []string{"cause"}),
		adminAuthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bff_admin_auth_failures_total", Help: "Admin API calls refused for bad credentials.",
		}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bff_upstream_request_duration_seconds",
			Help:    "Proxied API calls, from sending the request to the upstream's response headers, by route prefix, method and status class (error: no response).",
			Buckets: networkBuckets,
		}, []string{"route", "method", "code"}),
		loginOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_login_outcomes_total", Help: "Completed callbacks by result: ok, or the error code the browser was shown.",
		}, []string{"result"}),
	}
	storeVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_store_operation_duration_seconds", Help: "Session store operations by operation and result.",
		Buckets: storeBuckets,
	}, []string{"op", "result"})
	m.store = newObserverGrid(storeVec, storeOps, storeResults)
	refreshVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_token_refresh_duration_seconds", Help: "Refresh-token grants at the IdP by result (refused: invalid_grant and the like).",
		Buckets: networkBuckets,
	}, []string{"result"})
	for i, r := range refreshResults {
		m.refreshDuration[i] = refreshVec.WithLabelValues(r) // exported before the first refresh
	}
	lockVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_refresh_lock_wait_seconds", Help: "Time a refresh waited for another instance's refresh lock, by outcome.",
		Buckets: lockWaitBuckets,
	}, []string{"result"})
	for i, r := range lockWaitResults {
		m.lockWait[i] = lockVec.WithLabelValues(r)
	}
	csrf := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_csrf_refusals_total", Help: "Requests refused by the CSRF guards, by kind.",
	}, []string{"kind"})
	for i, k := range csrfKinds {
		m.csrfRefusals[i] = csrf.WithLabelValues(k)
	}
	streams := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bff_open_streams", Help: "Open long-lived responses: session event streams, and proxied event streams and WebSockets.",
	}, []string{"kind"})
	for i, k := range streamKinds {
		m.openStreams[i] = streams.WithLabelValues(k)
	}
	for i := range m.requestsByClass {
		m.requestsByClass[i] = m.requests.WithLabelValues(fmt.Sprintf("%dxx", i+1))
	}
	m.loginOK = m.loginOutcomes.WithLabelValues("ok")
	reg.MustRegister(m.requests, m.logins, m.refreshes, m.refreshFailures, m.revocationFailures, m.sessionsEnded, m.adminAuthFailures,
		m.upstream, storeVec, refreshVec, lockVec, m.loginOutcomes, csrf, streams)
	return m
}

// observerGrid resolves the children of a two-label histogram lazily, each
// once: a hot path then observes through an array index instead of a label
// lookup, and only combinations that occurred are exported.
type observerGrid struct {
	vec        *prometheus.HistogramVec
	rows, cols []string
	cells      []atomic.Pointer[observerCell]
	// labels maps a cell to its label values; nil means {row, col}.
	labels func(row, col string) []string
}

type observerCell struct{ prometheus.Observer }

func newObserverGrid(vec *prometheus.HistogramVec, rows, cols []string) *observerGrid {
	return &observerGrid{vec: vec, rows: rows, cols: cols, cells: make([]atomic.Pointer[observerCell], len(rows)*len(cols))}
}

func (g *observerGrid) at(row, col int) prometheus.Observer {
	cell := &g.cells[row*len(g.cols)+col]
	if c := cell.Load(); c != nil {
		return c.Observer
	}
	values := []string{g.rows[row], g.cols[col]}
	if g.labels != nil {
		values = g.labels(g.rows[row], g.cols[col])
	}
	c := &observerCell{g.vec.WithLabelValues(values...)}
	cell.Store(c) // a concurrent first use stores the same child
	return c.Observer
}

// upstreamObservers is a route's row of the upstream histogram.
func (m *metrics) upstreamObservers(prefix string) *observerGrid {
	g := newObserverGrid(m.upstream, upstreamMethods, codeClasses)
	g.labels = func(method, class string) []string { return []string{prefix, method, class} }
	return g
}

// methodIndex maps a request method to its row in upstreamMethods; any
// method outside the list is "other", so a client cannot grow the label set.
func methodIndex(method string) int {
	switch method {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	}
	return 7
}

// codeClassIndex maps a response status to its column in codeClasses; no
// response at all (err != nil) is "error".
func codeClassIndex(status int, err error) int {
	if err != nil {
		return 5
	}
	return statusClass(status)
}

// countLogin records the outcome of a callback by the error code the
// browser was shown. The codes are the callback's own constants, so the
// label set stays bounded.
func (s *Server) countLogin(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := next(w, r)
		if err == nil {
			s.metrics.loginOK.Inc()
			return nil
		}
		code := "internal_error"
		if e, ok := err.(*Error); ok {
			code = e.Code
		}
		s.metrics.loginOutcomes.WithLabelValues(code).Inc()
		return err
	}
}
