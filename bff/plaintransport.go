package bff

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// plainTransport carries the bulk of an API's traffic — a GET, HEAD or
// OPTIONS without a body to a plain-http upstream — over pooled HTTP/1.1
// connections, writing the request and reading the answer on the
// request's own goroutine. Go's http.Transport hands every exchange to two
// goroutines of its connection (a writer and a reader) and back; in the
// bench's profile that hand-off was the largest cost of a proxied call
// after the system calls themselves. Everything else goes to next
// (http.Transport): bodies, upgrades, Expect, https (where it speaks
// HTTP/2) and any method that is not safe to send twice.
//
// Only replayable requests are carried because a pooled connection can
// have been closed by the upstream while it sat idle (Node's default is
// five seconds); the request is then sent again once, on a new connection,
// exactly as http.Transport does for the same requests.
type plainTransport struct {
	next           http.RoundTripper
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout  time.Duration // from writing the request to the end of the answer's headers; 0: none
	idleTimeout    time.Duration
	maxIdlePerHost int

	mu       sync.Mutex
	idle     map[string][]*plainConn // by host:port, most recently used last
	sweeping bool                    // a sweep is scheduled
}

// maxUpstreamHeaderBytes bounds an answer's header block, as
// http.Transport's default does.
const maxUpstreamHeaderBytes = 10 << 20

// maxInformational bounds the 1xx answers before the final one.
const maxInformational = 5

// newPlainTransport takes its dialer, timeouts and pool limits from next,
// which carries every call it does not.
func newPlainTransport(next *http.Transport) *plainTransport {
	t := &plainTransport{
		next:           next,
		dial:           next.DialContext,
		headerTimeout:  next.ResponseHeaderTimeout,
		idleTimeout:    next.IdleConnTimeout,
		maxIdlePerHost: next.MaxIdleConnsPerHost,
		idle:           make(map[string][]*plainConn),
	}
	if t.dial == nil {
		t.dial = (&net.Dialer{}).DialContext
	}
	// Idle connections always close in time here (the sweep needs a
	// period); an unset per-host limit is http.Transport's default.
	if t.idleTimeout <= 0 {
		t.idleTimeout = 90 * time.Second
	}
	if t.maxIdlePerHost <= 0 {
		t.maxIdlePerHost = http.DefaultMaxIdleConnsPerHost
	}
	return t
}

// carries reports whether req takes the direct path.
func (t *plainTransport) carries(req *http.Request) bool {
	if req.URL.Scheme != "http" || (req.Body != nil && req.Body != http.NoBody) {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	_, upgrade := req.Header["Upgrade"]
	_, expect := req.Header["Expect"]
	return !upgrade && !expect && len(req.Trailer) == 0
}

func (t *plainTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.carries(req) {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	pc, reused, err := t.conn(ctx, addr, true)
	if err != nil {
		return nil, err
	}
	resp, answered, err := pc.exchange(ctx, req)
	if err == nil || !reused || answered || ctx.Err() != nil {
		return resp, err
	}
	// The upstream had closed the idle connection (or restarted, closing
	// every one): once more, on a new connection.
	if pc, _, err = t.conn(ctx, addr, false); err != nil {
		return nil, err
	}
	resp, _, err = pc.exchange(ctx, req)
	return resp, err
}

// conn takes the most recently used idle connection to addr when pooled
// is true and there is one, or dials one.
func (t *plainTransport) conn(ctx context.Context, addr string, pooled bool) (pc *plainConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[addr]; pooled && len(list) > 0; list = t.idle[addr] {
		pc = list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		if now.Sub(pc.idleSince) < t.idleTimeout {
			t.mu.Unlock()
			return pc, true, nil
		}
		pc.conn.Close()
	}
	t.mu.Unlock()
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("dial upstream: %w", err)
	}
	pc = &plainConn{t: t, addr: addr, conn: conn}
	pc.limited = &limitedReader{r: conn}
	pc.br = bufio.NewReader(pc.limited)
	pc.bw = bufio.NewWriter(conn)
	return pc, false, nil
}

// put returns a connection whose last answer was read to its end.
func (t *plainTransport) put(pc *plainConn) {
	pc.idleSince = time.Now()
	t.mu.Lock()
	list := t.idle[pc.addr]
	keep := len(list) < t.maxIdlePerHost
	if keep {
		list = append(list, pc)
	}
	t.idle[pc.addr] = list
	if keep && !t.sweeping {
		t.sweeping = true
		time.AfterFunc(t.idleTimeout, t.sweep)
	}
	t.mu.Unlock()
	if !keep {
		pc.conn.Close()
	}
}

// sweep closes the connections idle for longer than the idle timeout, and
// comes back while any stay pooled: a pool that is no longer used does not
// keep its connections (one timer for the pool, not one per connection).
func (t *plainTransport) sweep() {
	now := time.Now()
	var stale []*plainConn
	t.mu.Lock()
	pooled := 0
	for addr, list := range t.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].idleSince) >= t.idleTimeout {
			n++ // oldest first
		}
		stale = append(stale, list[:n]...)
		if n == len(list) {
			delete(t.idle, addr)
			continue
		}
		t.idle[addr] = list[n:]
		pooled += len(list) - n
	}
	t.sweeping = pooled > 0
	if t.sweeping {
		time.AfterFunc(t.idleTimeout/2, t.sweep)
	}
	t.mu.Unlock()
	for _, pc := range stale {
		pc.conn.Close()
	}
}

// plainConn is one HTTP/1.1 connection to an upstream, used by one
// exchange at a time.
type plainConn struct {
	t         *plainTransport
	addr      string
	conn      net.Conn
	limited   *limitedReader
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// exchange writes req and reads the answer's headers. Ending ctx closes
// the connection, which ends a read or write under way (this is how a
// killed session's request is cut). answered says whether any answer
// came back, so a failure on a reused connection can be retried.
func (pc *plainConn) exchange(ctx context.Context, req *http.Request) (resp *http.Response, answered bool, err error) {
	stop := context.AfterFunc(ctx, func() { pc.conn.Close() })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		pc.conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, answered, err
	}
	if pc.t.headerTimeout > 0 {
		pc.conn.SetReadDeadline(time.Now().Add(pc.t.headerTimeout))
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(fmt.Errorf("write request upstream: %w", err))
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(fmt.Errorf("write request upstream: %w", err))
	}
	pc.limited.n = maxUpstreamHeaderBytes
	for informational := 0; ; informational++ {
		if _, err := pc.br.Peek(1); err != nil {
			return fail(fmt.Errorf("read upstream answer: %w", err))
		}
		answered = true
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			if pc.limited.n <= 0 {
				err = fmt.Errorf("upstream answer headers exceed %d bytes", maxUpstreamHeaderBytes)
			}
			return fail(fmt.Errorf("read upstream answer: %w", err))
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || informational == maxInformational {
			return fail(fmt.Errorf("read upstream answer: unexpected %s", resp.Status))
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err)
			}
		}
	}
	pc.limited.n = -1
	if pc.t.headerTimeout > 0 {
		pc.conn.SetReadDeadline(time.Time{})
	}
	reuse := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		pc.release(stop, reuse)
		return resp, true, nil
	}
	resp.Body = &plainBody{pc: pc, body: resp.Body, stop: stop, reuse: reuse, ctx: ctx}
	return resp, true, nil
}

// release ends an exchange: the connection goes back to the pool when its
// answer was read to the end and nothing closed it meanwhile.
func (pc *plainConn) release(stop func() bool, reuse bool) {
	// Bytes beyond the answer would be read as the next request's answer.
	if stop() && reuse && pc.br.Buffered() == 0 {
		pc.t.put(pc)
		return
	}
	pc.conn.Close()
}

// plainBody is an answer's body on a plainConn. Reading it to the end
// gives the connection back; closing it earlier closes the connection
// (draining an event stream to reuse it could take forever).
type plainBody struct {
	pc    *plainConn
	body  io.ReadCloser
	stop  func() bool
	reuse bool
	ctx   context.Context
	done  atomic.Bool
}

func (b *plainBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		b.finish(false)
		if b.ctx.Err() != nil {
			err = b.ctx.Err()
		}
	}
	return n, err
}

func (b *plainBody) Close() error {
	b.finish(false)
	return nil
}

func (b *plainBody) finish(complete bool) {
	if b.done.CompareAndSwap(false, true) {
		b.pc.release(b.stop, complete && b.reuse)
	}
}

// limitedReader fails a read once n bytes were read while n >= 0; n < 0
// reads without a limit.
type limitedReader struct {
	r io.Reader
	n int64
}

var errHeaderLimit = errors.New("header limit reached")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderLimit
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
