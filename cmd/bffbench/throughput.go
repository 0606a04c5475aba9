package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// target is one server under load.
type target struct {
	name   string
	addr   string
	cookie string
	// minRatio is the least share of the bare proxy's requests/s this
	// target must reach; 0 for the bare proxies, which have no target.
	minRatio float64
	rounds   []loadResult
}

// Targets of the throughput scenario: the share of the bare proxy's
// requests/s each store must reach, and the p99 bound for all of them.
var minRatio = map[string]float64{"memory": 0.95, "sqlite": 0.92, "redis": 0.85}

const maxP99Ratio = 1.2

// throughput measures the bare proxy and the BFF with each store, in
// interleaved rounds, and prints one table.
func throughput(ctx context.Context, st *stack, o *options, out io.Writer) (bool, error) {
	if err := st.ensureUpstream(ctx); err != nil {
		return false, err
	}
	bareAddr, err := st.startServerProc(ctx, "bare", "-upstream", st.upstream)
	if err != nil {
		return false, err
	}
	addrs, err := freeAddrs(len(o.stores))
	if err != nil {
		return false, err
	}
	if err := st.startOP(ctx, time.Hour, addrs, nil); err != nil {
		return false, err
	}
	sameTransportAddr, err := st.startServerProc(ctx, "bare", "-upstream", st.upstream, "-bff-transport")
	if err != nil {
		return false, err
	}
	targets := []*target{{name: "bare proxy", addr: bareAddr}, {name: sameTransportName, addr: sameTransportAddr}}
	for i, name := range o.stores {
		spec, ok := storeSpec(name, o.redisURL, st.dir)
		if !ok {
			return false, fmt.Errorf("unknown store %q (memory, sqlite, redis)", name)
		}
		p, err := st.startBFF(ctx, name, addrs[i], spec)
		if err != nil {
			return false, err
		}
		cookie, err := st.login(ctx, p.listen, "alice", "alice-pass")
		if err != nil {
			return false, fmt.Errorf("%s: %w", name, err)
		}
		targets = append(targets, &target{name: "bff " + name, addr: p.listen, cookie: cookie, minRatio: minRatio[name]})
	}

	spec := func(t *target, d time.Duration) loadSpec {
		return loadSpec{Addr: t.addr, Path: "/api/bench", Cookie: t.cookie, Conns: o.conns, Duration: d}
	}
	for _, t := range targets {
		res, err := runLoadProcess(ctx, o.self, o.loadCPU, spec(t, o.warmup))
		if err != nil {
			return false, err
		}
		if res.Errors > 0 {
			return false, fmt.Errorf("%s: %d errors in the warm-up, first: %s", t.name, res.Errors, res.FirstError)
		}
	}
	for r := range o.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			res, err := runLoadProcess(ctx, o.self, o.loadCPU, spec(t, o.duration))
			if err != nil {
				return false, err
			}
			if res.Errors > 0 {
				return false, fmt.Errorf("%s: %d errors, first: %s", t.name, res.Errors, res.FirstError)
			}
			t.rounds = append(t.rounds, res)
		}
	}
	return printThroughput(out, targets), nil
}

func storeSpec(name, redisURL, dir string) (string, bool) {
	switch name {
	case "memory":
		return "memory:", true
	case "sqlite":
		return "sqlite:" + dir + "/bench-" + fmt.Sprint(time.Now().UnixNano()) + ".db", true
	case "redis":
		return redisURL, true
	}
	return "", false
}

// printThroughput prints the table and reports whether every target held.
// Ratios are per round (each target against the bare proxy of the same
// round); the table shows their median and their spread.
func printThroughput(out io.Writer, targets []*target) bool {
	bare := targets[0]
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\treq/s ratio (min–max)\tp99 ratio (min–max)\ttarget\tresult\t")
	allOK := true
	for _, t := range targets {
		var rps, p50, p99, p99r []float64
		for i, res := range t.rounds {
			rps = append(rps, res.perSecond())
			p50 = append(p50, float64(res.P50))
			p99 = append(p99, float64(res.P99))
			p99r = append(p99r, float64(res.P99)/float64(bare.rounds[i].P99))
		}
		ratio := rpsRatios(t, bare)
		row := fmt.Sprintf("%s\t%.0f\t%v\t%v\t", t.name, median(rps), ms(median(p50)), ms(median(p99)))
		switch {
		case t == bare:
			fmt.Fprintln(tw, row+"1.00\t1.00\t\t\t")
			continue
		case t.minRatio == 0:
			fmt.Fprintf(tw, "%s%s\t%s\tnone\t\t\n", row, spread(ratio), spread(p99r))
			continue
		}
		ok := median(ratio) >= t.minRatio && median(p99r) <= maxP99Ratio
		allOK = allOK && ok
		verdict := "ok"
		if !ok {
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t≥ %.2f, ≤ %.1f×\t%s\t\n", row, spread(ratio), spread(p99r), t.minRatio, maxP99Ratio, verdict)
	}
	tw.Flush()
	printSessionWork(out, targets)
	return allOK
}

// sameTransportName is the bare proxy with the BFF's own proxy transport.
const sameTransportName = "bare, bff transport"

// printSessionWork prints each BFF's requests/s over the bare proxy with
// the same transport, round by round: what the session work (cookie,
// store read, token, headers, metrics) costs on the same proxy path.
func printSessionWork(out io.Writer, targets []*target) {
	var base *target
	for _, t := range targets {
		if t.name == sameTransportName {
			base = t
		}
	}
	if base == nil {
		return
	}
	var parts []string
	for _, t := range targets {
		if t.minRatio == 0 {
			continue
		}
		parts = append(parts, strings.TrimPrefix(t.name, "bff ")+" "+spread(rpsRatios(t, base)))
	}
	fmt.Fprintf(out, "\nsession work: req/s over %q in the same round: %s\n", sameTransportName, strings.Join(parts, ", "))
}

// rpsRatios is t's requests/s over base's, round by round.
func rpsRatios(t, base *target) []float64 {
	var r []float64
	for i, res := range t.rounds {
		r = append(r, res.perSecond()/base.rounds[i].perSecond())
	}
	return r
}

// spread is the median of v with its min–max.
func spread(v []float64) string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(v), slices.Min(v), slices.Max(v))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(ns float64) string {
	return fmt.Sprintf("%.2fms", ns/float64(time.Millisecond))
}
