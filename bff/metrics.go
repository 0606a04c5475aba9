package bff

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are created and registered once, at start-up: creating metric
// vectors per request is a known throughput killer in auth proxies.
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
}

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
	}
	for i := range m.requestsByClass {
		m.requestsByClass[i] = m.requests.WithLabelValues(fmt.Sprintf("%dxx", i+1))
	}
	reg.MustRegister(m.requests, m.logins, m.refreshes, m.refreshFailures, m.revocationFailures, m.sessionsEnded, m.adminAuthFailures)
	return m
}
