package bff_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// grafanaPanel is the part of a Grafana panel the test reads.
type grafanaPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's panels
}

// TestGrafanaDashboardQueriesExistingMetrics: deploy/grafana-dashboard.json
// parses, and every metric its queries name is one the BFF registers (a
// histogram's _bucket, _count and _sum by its family name).
func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string         `json:"title"`
		UID    string         `json:"uid"`
		Panels []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Fatal("dashboard without title or uid")
	}

	reg := prometheus.NewRegistry()
	mustStartStack(t, stackOptions{registry: reg})
	registered := map[string]bool{}
	descs := make(chan *prometheus.Desc)
	go func() { reg.Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			registered[m[1]] = true
		}
	}
	if !registered["bff_sessions_active"] || !registered["bff_upstream_request_duration_seconds"] {
		t.Fatalf("registered metrics: %v", registered)
	}

	metricName := regexp.MustCompile(`\bbff_[a-z0-9_]+`)
	queried := map[string]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, target := range p.Targets {
				names := metricName.FindAllString(target.Expr, -1)
				if len(names) == 0 {
					t.Errorf("panel %q queries no BFF metric: %s", p.Title, target.Expr)
				}
				for _, n := range names {
					queried[n] = true
					base := n
					for _, suffix := range []string{"_bucket", "_count", "_sum"} {
						if b, ok := strings.CutSuffix(n, suffix); ok && registered[b] {
							base = b
						}
					}
					if !registered[base] {
						t.Errorf("panel %q queries %s, which the BFF does not export", p.Title, n)
					}
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if len(queried) < 10 {
		t.Errorf("the dashboard queries only %d metrics", len(queried))
	}
}
