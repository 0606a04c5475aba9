package main

// Helpers for the process-level tests (cluster_test.go, crash_test.go): the
// bff binary built once per test run, real `bff serve` processes, and an
// embedded OP and demo API in the test process. lbbrowser_test.go has the
// "browser" that reaches any instance under one public URL (a load balancer
// without stickiness); redis_child_test.go the Redis servers.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff/devstack"
	"github.com/bffproxy/bff/internal/syncbuf"
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
	out    *syncbuf.Buffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	runs   int
}

// startBFF starts `bff serve` with store and waits until /readyz answers.
// extra are additional NAME=value settings.
func (s *procStack) startBFF(t *testing.T, name, store string, extra ...string) *bffProc {
	t.Helper()
	p := &bffProc{t: t, name: name, listen: freeAddr(t), admin: freeAddr(t), out: &syncbuf.Buffer{}}
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

	waitReady(t, context.Background(), http.DefaultClient, "http://"+p.admin+"/readyz", exited, p.out)
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

func (s *procStack) newLBBrowser() *lbBrowser {
	jar, _ := cookiejar.New(nil)
	return &lbBrowser{s: s, jar: jar, clients: map[string]*http.Client{}}
}

var (
	procFlushOnce sync.Once
	procFlushErr  error
)
