package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// lbBrowser is a cookie jar with one HTTP client per instance: requests name
// the instance they go to, as a load balancer without stickiness would pick
// one. Redirects are not followed.
type lbBrowser struct {
	s       *procStack
	jar     http.CookieJar
	mu      sync.Mutex
	clients map[string]*http.Client
}

// client returns the client whose connections to the public URL reach p.
// Every other host (the OP) is dialled as named.
func (b *lbBrowser) client(p *bffProc) *http.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.clients[p.listen]; c != nil {
		return c
	}
	var d net.Dialer
	front, target := b.s.front, p.listen
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == front {
				addr = target
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 100,
	}
	c := &http.Client{
		Jar:           b.jar,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	b.clients[p.listen] = c
	return c
}

func (b *lbBrowser) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.clients {
		c.CloseIdleConnections()
	}
}

// login signs username in through p like a browser: /bff/login, the OP's
// form, the callback. It fails the test unless a session cookie results.
func (b *lbBrowser) login(t *testing.T, p *bffProc, username, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := b.client(p)
	resp, err := b.get(ctx, p, "/bff/login?returnTo=/", nil)
	if err != nil {
		t.Fatalf("login via %s: %v", p.name, err)
	}
	drainBody(resp)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, b.s.op.Issuer()) {
		t.Fatalf("/bff/login via %s: status %d, Location %q", p.name, resp.StatusCode, loc)
	}
	resp, err = b.s.op.Login(ctx, c, loc, username, password)
	if err != nil {
		t.Fatalf("OP login of %s: %v", username, err)
	}
	drainBody(resp)
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, b.s.publicURL+"/bff/callback?") {
		t.Fatalf("OP login ended at %q, want the BFF callback", callback)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, callback, nil)
	req.Header.Set("Accept", "text/html")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("callback via %s: %v", p.name, err)
	}
	body := drainBody(resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback via %s: status %d, Location %q: %.300s", p.name, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if b.cookie() == "" {
		t.Fatalf("no session cookie after the callback via %s", p.name)
	}
}

// cookie returns the session cookie value the browser holds, or "".
func (b *lbBrowser) cookie() string {
	u, _ := url.Parse(b.s.publicURL + "/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "bff-session" {
			return c.Value
		}
	}
	return ""
}

// get sends GET path (relative to the public URL) to instance p.
func (b *lbBrowser) get(ctx context.Context, p *bffProc, path string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.s.publicURL+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return b.client(p).Do(req)
}

// result is a finished JSON call.
type callResult struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
	err    error
	took   time.Duration
}

func (r callResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("error after %v: %v", r.took.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d after %v: %s", r.status, r.took.Round(time.Millisecond), strings.TrimSpace(r.raw))
}

// call sends GET path with the CSRF header to p, as the SPA's fetch does,
// and reads the JSON answer. timeout bounds the whole call.
func (b *lbBrowser) call(p *bffProc, path string, timeout time.Duration) callResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	resp, err := b.get(ctx, p, path, http.Header{"X-Csrf": {"1"}, "Accept": {"application/json"}})
	return readResult(resp, err, start)
}

// burst sends n calls of path at once, alternately to a and b, and returns
// their results and how long the burst took.
func (b *lbBrowser) burst(pa, pb *bffProc, path string, n int) ([]callResult, time.Duration) {
	results := make([]callResult, n)
	var wg sync.WaitGroup
	gun := make(chan struct{})
	for i := range n {
		p := pa
		if i%2 == 1 {
			p = pb
		}
		wg.Go(func() {
			<-gun
			results[i] = b.call(p, path, 30*time.Second)
		})
	}
	start := time.Now()
	close(gun)
	wg.Wait()
	return results, time.Since(start)
}

// readResult reads the answer to a call begun at start.
func readResult(resp *http.Response, err error, start time.Time) callResult {
	if err != nil {
		return callResult{err: err, took: time.Since(start)}
	}
	raw := drainBody(resp)
	r := callResult{status: resp.StatusCode, header: resp.Header, raw: string(raw), took: time.Since(start)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func drainBody(resp *http.Response) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b
}

// expectUnauthenticated checks the 401 contract with the given error code.
func expect401(t *testing.T, what string, r callResult, code string) {
	t.Helper()
	if r.err != nil || r.status != http.StatusUnauthorized ||
		r.header.Get("WWW-Authenticate") != `BFF error="`+code+`"` || r.body["error"] != code {
		t.Errorf("%s: %v, WWW-Authenticate %q; want 401 %s", what, r, r.header.Get("WWW-Authenticate"), code)
	}
}

// stream is an open event stream read in the background.
type sseStream struct {
	name   string
	mu     sync.Mutex
	lines  []string
	events []string // values of "event:" lines, in order
	first  chan struct{}
	done   chan struct{}
	doneAt time.Time
	err    error
	cancel context.CancelFunc
}

// openStream GETs path on p and reads the response line by line until it
// ends. It fails the test unless the answer is a 200 event stream.
func (b *lbBrowser) openStream(t *testing.T, p *bffProc, path string, csrf bool) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hdr := http.Header{"Accept": {"text/event-stream"}}
	if csrf {
		hdr.Set("X-Csrf", "1")
	}
	resp, err := b.get(ctx, p, path, hdr)
	if err != nil {
		cancel()
		t.Fatalf("stream %s via %s: %v", path, p.name, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body := drainBody(resp)
		cancel()
		t.Fatalf("stream %s via %s: status %d, %s: %.300s", path, p.name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	s := &sseStream{name: path, first: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.lines = append(s.lines, line)
			if ev, ok := strings.CutPrefix(line, "event:"); ok {
				s.events = append(s.events, strings.TrimSpace(ev))
			}
			s.mu.Unlock()
			once.Do(func() { close(s.first) })
		}
		s.mu.Lock()
		s.err, s.doneAt = sc.Err(), time.Now()
		s.mu.Unlock()
		close(s.done)
	}()
	return s
}

func (s *sseStream) snapshot() (events, lines []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...), append([]string(nil), s.lines...)
}

// adminDo sends an admin API request to p.
func procAdminDo(t *testing.T, p *bffProc, method, path string, timeout time.Duration) callResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+p.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+procAdminToken)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	return readResult(resp, err, start)
}

// lbTryLogin is login without the test's failure reporting, for load
// goroutines.
func lbTryLogin(br *lbBrowser, p *bffProc, username, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := br.get(ctx, p, "/bff/login", nil)
	if err != nil {
		return err
	}
	drainBody(resp)
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("login: %d", resp.StatusCode)
	}
	resp, err = br.s.op.Login(ctx, br.client(p), resp.Header.Get("Location"), username, password)
	if err != nil {
		return err
	}
	drainBody(resp)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, resp.Header.Get("Location"), nil)
	resp, err = br.client(p).Do(req)
	if err != nil {
		return err
	}
	drainBody(resp)
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("callback: %d", resp.StatusCode)
	}
	return nil
}
