package bff

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countedUpstream is an httptest server that counts the connections it
// accepted and closed.
type countedUpstream struct {
	*httptest.Server
	conns, closed atomic.Int32
}

// newCountedUpstream starts the server after configure (if any) has set
// up its http.Server.
func newCountedUpstream(t *testing.T, h http.HandlerFunc, configure ...func(*http.Server)) *countedUpstream {
	t.Helper()
	u := &countedUpstream{Server: httptest.NewUnstartedServer(h)}
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.conns.Add(1)
		case http.StateClosed:
			u.closed.Add(1)
		}
	}
	for _, c := range configure {
		c(u.Config)
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func okHandler(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }

// heldUpstream answers "ok", holding every request to /wait until
// fillPool lets them go.
func heldUpstream(t *testing.T) (*countedUpstream, chan struct{}) {
	release := make(chan struct{})
	return newCountedUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		w.Write([]byte("ok"))
	}), release
}

// fillPool makes n calls to /wait at once, so that each has its own
// connection, and lets them finish together: up to n connections pooled.
func fillPool(t *testing.T, tr http.RoundTripper, up *countedUpstream, release chan struct{}, n int32) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { get(t, tr, "GET", up.URL+"/wait") })
	}
	for up.conns.Load() < n {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
}

func newTestPlainTransport() *plainTransport {
	return newPlainTransport(NewUpstreamTransport(5 * time.Second))
}

// get sends one request through rt and returns the whole body.
func get(t *testing.T, rt http.RoundTripper, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, string(body)
}

func TestPlainTransportCarriesOnlyReplayableBodilessPlainRequests(t *testing.T) {
	tr := newTestPlainTransport()
	cases := []struct {
		method, url string
		body        io.Reader
		header      string
		want        bool
	}{
		{"GET", "http://api/x", nil, "", true},
		{"HEAD", "http://api/x", nil, "", true},
		{"OPTIONS", "http://api/x", nil, "", true},
		{"GET", "https://api/x", nil, "", false},   // http.Transport speaks HTTP/2 there
		{"DELETE", "http://api/x", nil, "", false}, // not sent twice on a stale connection
		{"POST", "http://api/x", strings.NewReader("a"), "", false},
		{"GET", "http://api/x", strings.NewReader("a"), "", false},
		{"GET", "http://api/x", nil, "Upgrade", false},
		{"GET", "http://api/x", nil, "Expect", false},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, c.url, c.body)
		if c.header != "" {
			req.Header.Set(c.header, "websocket")
		}
		if got := tr.carries(req); got != c.want {
			t.Errorf("%s %s body=%v header=%q: carries = %v, want %v", c.method, c.url, c.body != nil, c.header, got, c.want)
		}
	}
}

func TestPlainTransportReusesItsConnection(t *testing.T) {
	up := newCountedUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			w.Write([]byte("part one "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		default:
			w.Write([]byte("hello " + r.Method))
		}
	})
	tr := newTestPlainTransport()
	for range 10 {
		if _, body := get(t, tr, "GET", up.URL+"/x"); body != "hello GET" {
			t.Fatalf("body %q", body)
		}
		if _, body := get(t, tr, "GET", up.URL+"/chunked"); body != "part one part two" {
			t.Fatalf("chunked body %q", body)
		}
		if resp, _ := get(t, tr, "HEAD", up.URL+"/x"); resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD: %d", resp.StatusCode)
		}
		if resp, _ := get(t, tr, "GET", up.URL+"/empty"); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("204: %d", resp.StatusCode)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("40 sequential exchanges used %d connections, want 1", n)
	}
}

func TestPlainTransportSendsAGetAgainWhenTheUpstreamClosedTheIdleConnection(t *testing.T) {
	up, release := heldUpstream(t)
	tr := newTestPlainTransport()
	// Three connections in the pool, all closed by the upstream (as a
	// restart or its own idle timeout would): each next call still works.
	fillPool(t, tr, up, release, 3)
	up.CloseClientConnections()
	for i := range 5 {
		if _, body := get(t, tr, "GET", up.URL); body != "ok" {
			t.Fatalf("request %d after the close: %q", i, body)
		}
	}
}

func TestPlainTransportClosesWhatItCannotReuse(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	up := newCountedUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Path == "/big" {
			w.Write([]byte(big))
			return
		}
		w.Write([]byte("ok"))
	})
	tr := newTestPlainTransport()

	// An answer closed before its end: its connection is not reused.
	req, _ := http.NewRequest("GET", up.URL+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get(t, tr, "GET", up.URL+"/x")
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("after a half-read answer: %d connections, want 2", n)
	}

	// Connection: close from the upstream.
	get(t, tr, "GET", up.URL+"/close")
	get(t, tr, "GET", up.URL+"/x")
	if n := up.conns.Load(); n != 3 {
		t.Fatalf("after Connection: close: %d connections, want 3", n)
	}
}

// rawUpstream answers every connection with fn, on a bare TCP listener, so
// a test can send what no well-behaved HTTP server sends.
func rawUpstream(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int32{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// readRequests reads requests from br until the connection ends, calling
// answer for each.
func readRequests(br *bufio.Reader, answer func(*http.Request) bool) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if !answer(req) {
			return
		}
	}
}

func TestPlainTransportDropsAConnectionWithBytesBeyondTheAnswer(t *testing.T) {
	url, conns := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		readRequests(br, func(*http.Request) bool {
			// The second "answer" was never asked for; read as the answer
			// to the next request it would give that request a forged body.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"+
				"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
			return true
		})
	})
	tr := newTestPlainTransport()
	for range 3 {
		if _, body := get(t, tr, "GET", url); body != "ok" {
			t.Fatalf("body %q, want ok", body)
		}
	}
	if n := conns.Load(); n < 2 {
		// With only the first write buffered the check cannot see the
		// extra answer; the upstream wrote both in one write, so it can.
		t.Errorf("connections = %d: the connection with an unasked answer was reused", n)
	}
}

func TestPlainTransportBoundsTheAnswersHeaders(t *testing.T) {
	url, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		readRequests(br, func(*http.Request) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n")
			line := "X-Filler: " + strings.Repeat("a", 64<<10) + "\r\n"
			for written := 0; written <= maxUpstreamHeaderBytes; written += len(line) {
				if _, err := io.WriteString(c, line); err != nil {
					return false
				}
			}
			return false
		})
	})
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := newTestPlainTransport().RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("an answer with more than 10 MB of headers was accepted")
	}
	if !strings.Contains(err.Error(), "exceed") {
		t.Errorf("error %q does not say the headers were too large", err)
	}
}

func TestPlainTransportHeaderTimeout(t *testing.T) {
	url, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		readRequests(br, func(*http.Request) bool {
			io.Copy(io.Discard, br) // never answers; waits for the client to hang up
			return false
		})
	})
	tr := newPlainTransport(NewUpstreamTransport(100 * time.Millisecond))
	req, _ := http.NewRequest("GET", url, nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timed out after %v, want about 100ms", d)
	}
}

func TestPlainTransportEndsAnAnswerWhenItsContextEnds(t *testing.T) {
	up := newCountedUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := w.Write([]byte("data: tick\n\n")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/events", nil)
	tr := newTestPlainTransport()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the answer went on after its context ended")
	}
	// The cut connection is not pooled: the next request dials.
	get(t, tr, "HEAD", up.URL)
	if n := up.conns.Load(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

func TestPlainTransportPoolLimits(t *testing.T) {
	up, release := heldUpstream(t)
	tr := newTestPlainTransport()
	tr.maxIdlePerHost = 1
	fillPool(t, tr, up, release, 3)
	tr.mu.Lock()
	idle := 0
	for _, list := range tr.idle {
		idle += len(list)
	}
	tr.mu.Unlock()
	if idle != 1 {
		t.Errorf("idle connections = %d, want 1 (the per-host limit)", idle)
	}
}

func TestPlainTransportClosesIdleConnections(t *testing.T) {
	up := newCountedUpstream(t, okHandler)
	tr := newTestPlainTransport()
	tr.idleTimeout = 50 * time.Millisecond

	// Left alone, the pool closes its idle connection.
	get(t, tr, "GET", up.URL)
	for deadline := time.Now().Add(2 * time.Second); up.closed.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an unused pool kept its idle connection open")
		}
	}
	tr.mu.Lock()
	pooled := len(tr.idle)
	tr.mu.Unlock()
	if pooled != 0 {
		t.Errorf("%d hosts still pooled after the sweep", pooled)
	}

	// A connection idle for too long is not reused, even before a sweep.
	tr.idleTimeout = time.Hour
	get(t, tr, "GET", up.URL)
	tr.idleTimeout = time.Nanosecond
	before := up.conns.Load()
	get(t, tr, "GET", up.URL)
	if up.conns.Load() != before+1 {
		t.Error("a connection idle for longer than the idle timeout was reused")
	}
}

// An upstream that closes idle connections early (Node's default keeps
// them five seconds) must not turn a call into a 502.
func TestPlainTransportOutlivesAnUpstreamsShortIdleTimeout(t *testing.T) {
	up := newCountedUpstream(t, okHandler, func(srv *http.Server) { srv.IdleTimeout = 30 * time.Millisecond })
	tr := newTestPlainTransport()
	for i := range 8 {
		if _, body := get(t, tr, "GET", up.URL); body != "ok" {
			t.Fatalf("call %d: %q", i, body)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if n := up.conns.Load(); n < 2 {
		t.Errorf("connections = %d: the upstream's idle timeout never closed one, so nothing was tested", n)
	}
}
