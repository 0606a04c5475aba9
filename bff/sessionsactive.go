package bff

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bffproxy/bff/sessionstore"
)

// sessionsActiveEvery bounds how often bff_sessions_active asks the store:
// a scrape within this interval of the last count gets the last count.
const sessionsActiveEvery = 15 * time.Second

// sessionsActive is the bff_sessions_active gauge. It counts at scrape
// time rather than on a timer, so an instance nobody scrapes never asks,
// and concurrent scrapes share one count.
type sessionsActive struct {
	desc    *prometheus.Desc
	store   *observedStore
	counter sessionstore.SessionCounter

	mu    sync.Mutex
	at    time.Time
	value float64
	known bool
}

func newSessionsActive(st sessionstore.Store, counter sessionstore.SessionCounter) *sessionsActive {
	o, _ := st.(*observedStore)
	return &sessionsActive{
		desc: prometheus.NewDesc("bff_sessions_active",
			"Live sessions in the store (all instances that share it), counted at most every 15 s.", nil, nil),
		store: o, counter: counter,
	}
}

func (g *sessionsActive) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *sessionsActive) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.known || time.Since(g.at) >= sessionsActiveEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var n int
		var err error
		if g.store != nil {
			n, err = g.store.countSessions(ctx, g.counter)
		} else {
			n, err = g.counter.CountSessions(ctx)
		}
		cancel()
		g.at = time.Now() // a failed count is not retried at once either
		if err == nil {
			g.value, g.known = float64(n), true
		}
	}
	if g.known { // an unknown count is absent, not zero
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value)
	}
}
