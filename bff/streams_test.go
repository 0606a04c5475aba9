package bff_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/sessionstore"
	"github.com/bffproxy/bff/sessionstore/memory"
)

// killOnGet ends a session through the admin API right after a request has
// read it from the store: a kill between reading the session and proxying,
// which the request must still notice.
type killOnGet struct {
	sessionstore.Store
	armed atomic.Bool
	kill  func(handle string)
}

func (k *killOnGet) Get(ctx context.Context, key string) (*sessionstore.Session, error) {
	sess, err := k.Store.Get(ctx, key)
	if err == nil && k.armed.CompareAndSwap(true, false) {
		k.kill(sess.Handle)
	}
	return sess, err
}

func TestProxyStreamOpenedWhileItsSessionIsKilledIsCut(t *testing.T) {
	mem := memory.New(memory.Options{})
	t.Cleanup(func() { mem.Close() })
	store := &killOnGet{Store: mem}
	st := mustStartStack(t, stackOptions{store: store})
	killed := make(chan int, 1)
	store.kill = func(handle string) {
		req, _ := http.NewRequest(http.MethodDelete, st.admin.URL+"/admin/sessions/"+handle, nil)
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			killed <- 0
			return
		}
		resp.Body.Close()
		killed <- resp.StatusCode
	}
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	store.armed.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.bff.URL+"/api/events?interval=50ms", nil)
	req.Header.Set("X-Csrf", "1")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if code := <-killed; code != http.StatusNoContent && code != http.StatusOK {
		t.Fatalf("admin kill: %d", code)
	}
	if resp.StatusCode == http.StatusOK {
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
			}
		}()
		select {
		case <-ended:
		case <-time.After(3 * time.Second):
			t.Fatal("the stream of a session killed while it opened is still open after 3s")
		}
		return
	}
	assertUnauthenticated(t, resp, "session_ended")
}

// A proxied stream whose session ends without this instance being told (a
// lost pub/sub message) is cut at its next heartbeat.
func TestProxyStreamNoticesAnEndedSessionOnHeartbeat(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: func(c *bff.Config) {
		c.HeartbeatInterval = 200 * time.Millisecond
	}})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	s, wsEnded := b.openStreams(t)

	list, err := st.store.ListBySubject(t.Context(), "user-alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("sessions: %v %d", err, len(list))
	}
	// Deleted in the store only: no event reaches the BFF.
	if _, err := st.store.Delete(t.Context(), list[0].Key, tombstone()); err != nil {
		t.Fatal(err)
	}
	assertStreamsCut(t, s, wsEnded, time.Now(), "the session ended", "within about one heartbeat (200ms)")
}

// openStreams opens two proxied streams of the browser's session: the demo
// API's event stream (read up to its first event) and its WebSocket echo.
// The channel gets the time the WebSocket ended.
func (b *browser) openStreams(t *testing.T) (*stream, <-chan time.Time) {
	t.Helper()
	s := b.openStream(t, "/api/events?interval=50ms", csrf())
	s.waitLine(t, "data:", 3*time.Second)
	ws, _, err := b.dialWS(t)
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	ended := make(chan time.Time, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				ended <- time.Now()
				return
			}
		}
	}()
	return s, ended
}

// assertStreamsCut checks that both streams of openStreams end within two
// seconds of start, when what happened.
func assertStreamsCut(t *testing.T, s *stream, wsEnded <-chan time.Time, start time.Time, what, want string) {
	t.Helper()
	if d := s.waitEnd(t, start, 5*time.Second); d > 2*time.Second {
		t.Errorf("event stream cut %v after %s, want %s", d, what, want)
	}
	select {
	case at := <-wsEnded:
		if d := at.Sub(start); d > 2*time.Second {
			t.Errorf("WebSocket cut %v after %s, want %s", d, what, want)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("WebSocket still open 5s after %s", what)
	}
}

// dialWS opens the demo API's WebSocket echo through the BFF, from the
// public origin.
func (b *browser) dialWS(t *testing.T) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, strings.Replace(b.st.bff.URL, "http", "ws", 1)+"/api/ws",
		&websocket.DialOptions{HTTPClient: b.Client, HTTPHeader: http.Header{"Origin": {b.st.bff.URL}}})
}

// openRaw opens a stream and returns its response and a function that
// closes it. A 200 stream is read up to its first line, which says it is
// established.
func (b *browser) openRaw(t *testing.T, path string, header http.Header) (*http.Response, func()) {
	t.Helper()
	resp, closeFn := b.send(t, path, header)
	if resp.StatusCode == http.StatusOK {
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}
	return resp, closeFn
}

func TestStreamsPerSessionAreCapped(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")

	var closers []func()
	for i := range 16 {
		path := "/bff/session/events"
		hdr := http.Header(nil)
		if i%4 == 3 {
			path, hdr = "/api/events?interval=1s", csrf()
		}
		resp, closeFn := b.openRaw(t, path, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d (%s): status %d", i+1, path, resp.StatusCode)
		}
		closers = append(closers, closeFn)
	}
	resp, _ := b.openRaw(t, "/bff/session/events", nil)
	body := assertJSONError(t, resp, http.StatusTooManyRequests, "too_many_streams")
	if !strings.Contains(body["message"], "16") {
		t.Errorf("429 message %q does not say the limit", body["message"])
	}
	resp, _ = b.openRaw(t, "/api/events?interval=1s", csrf())
	assertJSONError(t, resp, http.StatusTooManyRequests, "too_many_streams")
	// Ordinary API calls are not streams.
	if resp := b.api(t, "/api/whoami"); resp.StatusCode != http.StatusOK {
		t.Errorf("API call with 16 streams open: %d", resp.StatusCode)
	}
	// Another session has its own budget.
	other := st.newBrowser(t)
	other.mustLogin(t, "bob")
	if resp, _ := other.openRaw(t, "/bff/session/events", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("another session's stream: %d", resp.StatusCode)
	}
	// A closed stream gives its place back.
	closers[0]()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, closeFn := b.openRaw(t, "/bff/session/events", nil)
		if resp.StatusCode == http.StatusOK {
			closeFn()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a stream, a new one still gets %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamsPerInstanceAreCapped(t *testing.T) {
	st := mustStartStack(t, stackOptions{configure: func(c *bff.Config) { c.MaxStreams = 3 }})
	alice, bob := st.newBrowser(t), st.newBrowser(t)
	alice.mustLogin(t, "alice")
	bob.mustLogin(t, "bob")
	for i, b := range []*browser{alice, bob} {
		if resp, _ := b.openRaw(t, "/bff/session/events", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, resp.StatusCode)
		}
	}
	ws, _, err := alice.dialWS(t)
	if err != nil {
		t.Fatalf("third stream, a WebSocket: %v", err)
	}
	defer ws.CloseNow()
	if _, resp, err := bob.dialWS(t); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("fourth stream, a WebSocket: %v %v, want 503", err, resp)
	}
	for _, path := range []string{"/bff/session/events", "/api/events?interval=1s"} {
		resp, _ := bob.openRaw(t, path, csrf())
		assertJSONError(t, resp, http.StatusServiceUnavailable, "stream_capacity")
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", path)
		}
	}
}
