package bff_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The hot path: cookie → session → access token → upstream, compared with
// a bare httputil.ReverseProxy to the same 1 KB upstream. Ratios, not
// absolute times, are what to compare across machines:
//
//	go test -run '^$' -bench HotPath -benchtime 20000x ./bff/
func BenchmarkHotPath(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})
	st := mustStartBenchStack(b, upstream)

	upURL, _ := url.Parse(st.api.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) },
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512},
	})
	defer bare.Close()

	cookie := st.benchCookie
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512}}
	call := func(target string, withSession bool) {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if withSession {
			req.Header.Set("X-Csrf", "1")
			req.Header.Set("Cookie", cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", target, resp.StatusCode)
		}
	}
	run := func(b *testing.B, target string, withSession bool) {
		b.SetParallelism(8)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call(target, withSession)
			}
		})
	}
	b.Run("bare", func(b *testing.B) { run(b, bare.URL+"/api/x", false) })
	b.Run("bff", func(b *testing.B) { run(b, st.bff.URL+"/api/x", true) })

	// Both measured in the same run, interleaved, as a throughput ratio.
	b.Run("ratio", func(b *testing.B) {
		measure := func(target string, withSession bool, n int) time.Duration {
			var wg sync.WaitGroup
			start := time.Now()
			per := n / 16
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						call(target, withSession)
					}
				}()
			}
			wg.Wait()
			return time.Since(start)
		}
		n := max(b.N, 3200)
		var bareT, bffT time.Duration
		for range 3 {
			bareT += measure(bare.URL+"/api/x", false, n)
			bffT += measure(st.bff.URL+"/api/x", true, n)
		}
		ratio := float64(bareT) / float64(bffT)
		b.ReportMetric(ratio*100, "%-of-bare")
		b.Logf("BFF throughput = %.0f%% of a bare ReverseProxy (%d requests each, 16 clients)", ratio*100, 3*n)
	})
}

type benchStack struct {
	*stack
	benchCookie string
}

// mustStartBenchStack logs a user in once and returns the stack with the
// session cookie, with a long access token lifetime so no refresh happens.
func mustStartBenchStack(b *testing.B, upstream http.Handler) *benchStack {
	b.Helper()
	st := mustStartStack(b, stackOptions{upstream: upstream, accessTokenLifetime: time.Hour})
	resp := st.newBrowser(b).login(b, "alice", "alice-pass", "/")
	var cookie string
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "bff-session") {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		b.Fatal("no session cookie")
	}
	return &benchStack{stack: st, benchCookie: cookie}
}
