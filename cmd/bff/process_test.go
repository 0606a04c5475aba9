package main

// Helpers for the process-level tests (cluster_test.go): the bff binary built
// once per test run, real `bff serve` processes, an embedded OP and demo API
// in the test process, a "browser" that reaches any instance under one public
// URL (a load balancer without stickiness), and Redis servers.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/bffproxy/bff/bff/devstack"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if procBinDir != "" {
		_ = os.RemoveAll(procBinDir)
	}
	os.Exit(code)
}

var (
	procBinOnce sync.Once
	procBinDir  string
	procBinPath string
	procBinErr  error
)

// bffBinary builds ./cmd/bff once per test run and returns its path. It
// skips the test with -short: process tests are slow.
func bffBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process test: runs real bff processes")
	}
	procBinOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			procBinErr = fmt.Errorf("no go command to build the binary with: %w", err)
			return
		}
		if procBinDir, err = os.MkdirTemp("", "bff-process-test-"); err != nil {
			procBinErr = err
			return
		}
		procBinPath = filepath.Join(procBinDir, "bff")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, goTool, "build", "-o", procBinPath, ".").CombinedOutput(); err != nil {
			procBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if procBinErr != nil {
		t.Fatal(procBinErr)
	}
	return procBinPath
}

const (
	procClientID     = "bff-test"
	procClientSecret = "bff-test-secret"
	procAdminToken   = "admin-token-0123456789abcdef"
)

// stack is what every BFF process of one test shares: the OP, the demo API,
// the keys and the public URL. The public URL's address (front) is reserved
// but never listened on: browsers reach an instance by dialling its listen
// address while the URL, the Host header and the cookies stay those of the
// public URL, as behind a load balancer.
type procStack struct {
	op        *devstack.OP
	apiURL    string
	front     string // host:port of the public URL
	publicURL string
	keys      string
	tmp       string
}

type procStackOptions struct {
	accessTokenLifetime time.Duration
	// wrapOP, when set, wraps the OP's handler (to delay or fail requests).
	wrapOP func(http.Handler) http.Handler
}

func newProcStack(t *testing.T, o procStackOptions) *procStack {
	t.Helper()
	bffBinary(t)
	ctx := context.Background()
	front := freeAddr(t)
	publicURL := "http://" + front
	cfg := devstack.OPConfig{
		AccessTokenLifetime: o.accessTokenLifetime,
		Clients: []devstack.Client{{
			ID: procClientID, Secret: procClientSecret,
			RedirectURIs:           []string{publicURL + "/bff/callback"},
			PostLogoutRedirectURIs: []string{publicURL + "/"},
		}},
	}
	var op *devstack.OP
	if o.wrapOP == nil {
		var err error
		if op, err = devstack.StartOP(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = op.Close() })
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Issuer = "http://" + ln.Addr().String()
		if op, err = devstack.NewOP(cfg); err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: o.wrapOP(op.Handler())}}
		srv.Start()
		t.Cleanup(srv.Close)
	}
	api, err := devstack.NewDemoAPI(ctx, op.Issuer(), procClientID)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &procStack{
		op: op, apiURL: apiSrv.URL, front: front, publicURL: publicURL,
		keys: base64.StdEncoding.EncodeToString(key), tmp: t.TempDir(),
	}
}

// refreshGate holds refresh-token grants on their way to the OP while
// holding is on: it reports each one on arrived and answers it 503 without
// passing it on (so the OP never rotates the token) once the caller goes
// away.
type refreshGate struct {
	holding atomic.Bool
	arrived chan struct{}
}

func newRefreshGate() *refreshGate { return &refreshGate{arrived: make(chan struct{}, 16)} }

func (g *refreshGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.holding.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") &&
			r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
			select {
			case g.arrived <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bffProc is one `bff serve` instance. Restarts keep its addresses and
// environment; the output of every run lands in one buffer.
type bffProc struct {
	t      *testing.T
	name   string
	listen string // public listener
	admin  string // admin listener
	env    []string
	out    *lockedBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	runs   int
}

// startBFF starts `bff serve` with store and waits until /readyz answers.
// extra are additional NAME=value settings.
func (s *procStack) startBFF(t *testing.T, name, store string, extra ...string) *bffProc {
	t.Helper()
	p := &bffProc{t: t, name: name, listen: freeAddr(t), admin: freeAddr(t), out: &lockedBuffer{}}
	home := filepath.Join(s.tmp, "home-"+name)
	p.env = append(cleanEnv(home),
		"BFF_ISSUER="+s.op.Issuer(),
		"BFF_CLIENT_ID="+procClientID,
		"BFF_CLIENT_SECRET="+procClientSecret,
		"BFF_PUBLIC_URL="+s.publicURL,
		"BFF_LISTEN="+p.listen,
		"BFF_ADMIN_LISTEN="+p.admin,
		"BFF_ADMIN_TOKEN="+procAdminToken,
		"BFF_KEYS="+s.keys,
		"BFF_ROUTES=/api/="+s.apiURL,
		"BFF_STORE="+store,
		"BFF_DATA_DIR="+filepath.Join(s.tmp, "data-"+name),
	)
	p.env = append(p.env, extra...)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of bff %s:\n%s", p.name, p.out.String())
		}
	})
	p.start()
	return p
}

// start runs the process (again) and waits for its admin /readyz.
func (p *bffProc) start() {
	t := p.t
	t.Helper()
	p.mu.Lock()
	p.runs++
	fmt.Fprintf(p.out, "----- run %d of bff %s (public %s, admin %s)\n", p.runs, p.name, p.listen, p.admin)
	cmd := exec.Command(bffBinary(t), "serve")
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("bff %s exited before it was healthy: %v\n%s", p.name, err, p.out.String())
		case <-ctx.Done():
			t.Fatalf("bff %s not healthy: %v\n%s", p.name, err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signal sends sig and waits up to wait for the process to exit; it kills
// the process if it does not. It reports whether the process exited in time,
// and its exit error (nil for exit 0).
func (p *bffProc) signal(sig os.Signal, wait time.Duration) (inTime bool, err error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return true, nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case err := <-exited:
		return true, err
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		return false, <-exited
	}
}

// stop ends the process gracefully (SIGTERM) and fails the test if it does
// not exit cleanly within 15 s.
func (p *bffProc) stop() {
	p.t.Helper()
	if inTime, err := p.signal(syscall.SIGTERM, 15*time.Second); !inTime || err != nil {
		p.t.Errorf("bff %s after SIGTERM: exited in time %v, error %v", p.name, inTime, err)
	}
}

// kill ends the process at once (SIGKILL: no shutdown code runs).
func (p *bffProc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// browser is a cookie jar with one HTTP client per instance: requests name
// the instance they go to, as a load balancer without stickiness would pick
// one. Redirects are not followed.
type lbBrowser struct {
	s       *procStack
	jar     http.CookieJar
	mu      sync.Mutex
	clients map[string]*http.Client
}

func (s *procStack) newLBBrowser() *lbBrowser {
	jar, _ := cookiejar.New(nil)
	return &lbBrowser{s: s, jar: jar, clients: map[string]*http.Client{}}
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
	if err != nil {
		return callResult{err: err, took: time.Since(start)}
	}
	raw := drainBody(resp)
	r := callResult{status: resp.StatusCode, header: resp.Header, raw: string(raw), took: time.Since(start)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// sharedRedisURL returns the URL of the shared test Redis (BFF_TEST_REDIS
// or 127.0.0.1:6379), database 5, emptied once per test run. The redis store
// takes no key prefix in its URL, so the process tests own a database of
// their own. Without Redis the test is skipped, or fails when CI=true.
func sharedRedisURL(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process test: runs real bff processes")
	}
	addr := os.Getenv("BFF_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	const db = 5
	c := goredis.NewClient(&goredis.Options{Addr: addr, DB: db, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s (set BFF_TEST_REDIS): %v", addr, err)
		}
		t.Skipf("no Redis at %s (set BFF_TEST_REDIS): %v", addr, err)
	}
	procFlushOnce.Do(func() { procFlushErr = c.FlushDB(ctx).Err() })
	if procFlushErr != nil {
		t.Fatalf("FLUSHDB on %s/%d: %v", addr, db, procFlushErr)
	}
	return "redis://" + addr + "/" + strconv.Itoa(db)
}

var (
	procFlushOnce sync.Once
	procFlushErr  error
)

// redisServer is a redis-server child process of the test.
type redisChild struct {
	addr string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startRedisServer runs a dedicated, non-persistent redis-server on a free
// port. Without redis-server the test is skipped, or fails when CI=true.
func startRedisChild(t *testing.T) *redisChild {
	t.Helper()
	if testing.Short() {
		t.Skip("process test: runs real bff processes")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no redis-server: %v", err)
		}
		t.Skipf("no redis-server: %v", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	rs := &redisChild{addr: addr, out: &lockedBuffer{}, done: make(chan struct{})}
	rs.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	rs.cmd.Stdout, rs.cmd.Stderr = rs.out, rs.out
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = rs.cmd.Wait(); close(rs.done) }()
	t.Cleanup(func() {
		_ = rs.cmd.Process.Signal(syscall.SIGCONT)
		rs.kill()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", rs.out.String())
		}
	})
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not answering: %v\n%s", addr, err, rs.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rs *redisChild) kill() {
	select {
	case <-rs.done:
		return
	default:
	}
	_ = rs.cmd.Process.Kill()
	<-rs.done
}

// signal sends sig (SIGSTOP, SIGCONT) to redis-server.
func (rs *redisChild) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := rs.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

// eventually retries f every 50 ms until it returns nil or timeout passes,
// and returns the last error and the time it took.
func retryFor(timeout time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil || time.Since(start) > timeout {
			return time.Since(start), err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
