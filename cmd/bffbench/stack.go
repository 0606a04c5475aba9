package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/internal/syncbuf"
)

const (
	clientID     = "bff-bench"
	clientSecret = "bff-bench-secret"
	adminToken   = "bench-admin-token-0123456789"
)

// stack is what every target of one bench run shares: the 1 KB upstream,
// the embedded OP, the keys, and the BFF binary.
type stack struct {
	dir      string
	bin      string
	self     string // this binary, for its server and load modes
	keys     string
	upstream string // http://host:port
	op       *devstack.OP
	servers  []*http.Server
	procs    []*bffProc
}

// payload is the upstream's 1 KB JSON body.
var payload = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d"}`, i, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}()

// serveOn serves h on a new loopback listener and returns its address.
func (s *stack) serveOn(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// upstreamHandler answers every request with the 1 KB JSON payload.
func upstreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		_, _ = w.Write(payload)
	})
}

// bareProxy is a bare httputil.ReverseProxy to upstream: with the BFF's
// http.Transport settings (the baseline of every ratio), or with the
// BFF's own proxy transport (to tell what the BFF's session work costs
// apart from what its transport saves).
func bareProxy(upstream string, bffTransport bool) (http.Handler, error) {
	up, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	timeout := bff.DefaultConfig().UpstreamTimeout
	var transport http.RoundTripper = bff.NewUpstreamTransport(timeout)
	if bffTransport {
		transport = bff.NewProxyTransport(timeout)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.SetXForwarded()
		},
		Transport: transport,
	}, nil
}

// runServerMain is the "upstream" and "bare" modes: the server listens on
// -listen until the process is stopped. Each runs as its own process, as
// the BFF does, so that every server measured has the same share of the
// servers' core and its own Go runtime.
func runServerMain(mode string, args []string) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "upstream URL (bare mode)")
	bffTransport := fs.Bool("bff-transport", false, "proxy with the BFF's transport instead of http.Transport (bare mode)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	h := upstreamHandler()
	if mode == "bare" {
		var err error
		if h, err = bareProxy(*upstream, *bffTransport); err != nil {
			return err
		}
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// startServerProc starts this binary in "upstream" or "bare" mode and
// waits until it accepts connections.
func (s *stack) startServerProc(ctx context.Context, mode string, args ...string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	p := &bffProc{name: mode, listen: addr, exited: make(chan struct{})}
	p.cmd = exec.Command(s.self, append([]string{mode, "-listen", addr}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return "", err
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	s.procs = append(s.procs, p)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, nil
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("%s exited: %s", mode, p.out.String())
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s not listening after 10s", mode)
		}
	}
}

func (s *stack) ensureUpstream(ctx context.Context) error {
	if s.upstream != "" {
		return nil
	}
	addr, err := s.startServerProc(ctx, "upstream")
	s.upstream = "http://" + addr
	return err
}

// startOP starts the embedded OP with one client that may redirect to any
// of the given BFF addresses. wrap, when set, wraps its handler.
func (s *stack) startOP(ctx context.Context, atLifetime time.Duration, bffAddrs []string, wrap func(http.Handler) http.Handler) error {
	var redirects, postLogout []string
	for _, a := range bffAddrs {
		redirects = append(redirects, "http://"+a+"/bff/callback")
		postLogout = append(postLogout, "http://"+a+"/")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	op, err := devstack.NewOP(devstack.OPConfig{
		Issuer:              "http://" + ln.Addr().String(),
		AccessTokenLifetime: atLifetime,
		Clients: []devstack.Client{{
			ID: clientID, Secret: clientSecret,
			RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout,
		}},
	})
	if err != nil {
		ln.Close()
		return err
	}
	h := op.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	s.op = op
	return nil
}

func (s *stack) close() {
	for _, p := range s.procs {
		p.stop()
	}
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	if s.op != nil {
		_ = s.op.Close()
	}
}

// newStack builds the BFF binary into a temporary directory.
func newStack(ctx context.Context) (*stack, error) {
	dir, err := os.MkdirTemp("", "bffbench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "bff")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/bffproxy/bff/cmd/bff")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the bff binary: %v\n%s", err, out)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &stack{dir: dir, bin: bin, keys: base64.StdEncoding.EncodeToString(key)}, nil
}

// freeAddr reserves a loopback address for a process to listen on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// freeAddrs reserves n loopback addresses.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// bffProc is one `bff serve` process.
type bffProc struct {
	name   string
	listen string
	admin  string
	cmd    *exec.Cmd
	out    syncbuf.Buffer // stdout and stderr
	exited chan struct{}
}

// startBFF runs `bff serve` on listen with store and waits for /readyz.
func (s *stack) startBFF(ctx context.Context, name, listen, store string, extra ...string) (*bffProc, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &bffProc{name: name, listen: listen, admin: admin, exited: make(chan struct{})}
	home := filepath.Join(s.dir, "home-"+name)
	p.cmd = exec.Command(s.bin, "serve")
	p.cmd.Env = append([]string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"BFF_ISSUER=" + s.op.Issuer(),
		"BFF_CLIENT_ID=" + clientID, "BFF_CLIENT_SECRET=" + clientSecret,
		"BFF_PUBLIC_URL=http://" + listen,
		"BFF_LISTEN=" + listen, "BFF_ADMIN_LISTEN=" + admin, "BFF_ADMIN_TOKEN=" + adminToken,
		"BFF_KEYS=" + s.keys,
		"BFF_ROUTES=/api/=" + s.upstream,
		"BFF_STORE=" + store,
		"BFF_DATA_DIR=" + filepath.Join(s.dir, "data-"+name),
		"BFF_LOG_LEVEL=warn",
		// Every sign-in of the bench comes from one address; the
		// per-address limit on sign-ins is not what is measured.
		"BFF_LOGIN_RATE_LIMIT=0",
	}, extra...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	s.procs = append(s.procs, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("bff %s exited: %s", name, p.out.String())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bff %s not ready after 30s: %s", name, p.out.String())
		}
	}
}

func (p *bffProc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// login signs username in through the BFF at addr like a browser would
// (/bff/login, the OP's form, the callback) and returns the session
// cookie as a Cookie header value.
func (s *stack) login(ctx context.Context, addr, username, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	base := "http://" + addr
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/bff/login?returnTo=/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	drain(resp)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, s.op.Issuer()) {
		return "", fmt.Errorf("/bff/login: status %d", resp.StatusCode)
	}
	resp, err = s.op.Login(ctx, c, loc, username, password)
	if err != nil {
		return "", fmt.Errorf("OP login: %w", err)
	}
	drain(resp)
	callback := resp.Header.Get("Location")
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, callback, nil)
	req.Header.Set("Accept", "text/html")
	resp, err = c.Do(req)
	if err != nil {
		return "", fmt.Errorf("callback: %w", err)
	}
	drain(resp)
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("callback: status %d", resp.StatusCode)
	}
	u, _ := url.Parse(base + "/")
	for _, ck := range jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "bff-session") {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", errors.New("no session cookie after the callback")
}

func drain(resp *http.Response) {
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
