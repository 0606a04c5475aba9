package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHealthcheckCommand runs the real binary's `bff healthcheck` with the
// instance's own configuration: exit 0 while it runs, 1 once it is stopped.
func TestHealthcheckCommand(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	p := s.startBFF(t, "a", "memory:")

	if code, out := healthcheck(t, p); code != 0 {
		t.Fatalf("healthcheck against a running instance: exit %d\n%s", code, out)
	}
	p.stop()
	if code, out := healthcheck(t, p); code != 1 {
		t.Fatalf("healthcheck against a stopped instance: exit %d, want 1\n%s", code, out)
	}
}

func healthcheck(t *testing.T, p *bffProc) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bffBinary(t), "healthcheck")
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("healthcheck: %v", err)
	return -1, ""
}

// TestSIGTERMGracefulShutdown sends SIGTERM to a real `bff serve` while a
// session-event stream is open and a slow API call is in flight: the
// listener stops accepting, the stream is told "server-shutdown", the API
// call still gets its answer, and the process closes its store and exits 0
// within BFF_SHUTDOWN_TIMEOUT. A request that outlasts the timeout is cut
// and the process still exits 0, in time.
func TestSIGTERMGracefulShutdown(t *testing.T) {
	s := newProcStack(t, procStackOptions{})
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-time.After(1500 * time.Millisecond):
		}
		_, _ = w.Write([]byte(`{"done":true}`))
	}))
	defer slow.Close()
	defer close(release)
	routes := "BFF_ROUTES=/api/=" + s.apiURL + ",/slow/=" + slow.URL

	t.Run("drains", func(t *testing.T) {
		p := s.startBFF(t, "drain", "sqlite:"+s.tmp+"/drain.db", routes, "BFF_SHUTDOWN_TIMEOUT=10s")
		br := s.newLBBrowser()
		defer br.close()
		br.login(t, p, "alice", "alice-pass")
		stream := br.openStream(t, p, "/bff/session/events", false)
		<-stream.first

		call := make(chan callResult, 1)
		go func() { call <- br.call(p, "/slow/x", 20*time.Second) }()
		<-arrived
		start := time.Now()
		exited := make(chan struct{})
		var inTime bool
		var exitErr error
		go func() { inTime, exitErr = p.signal(syscall.SIGTERM, 15*time.Second); close(exited) }()

		select {
		case <-stream.done:
		case <-time.After(5 * time.Second):
			t.Fatal("the event stream was not closed within 5s of SIGTERM")
		}
		if events, lines := stream.snapshot(); !slices.Contains(events, "server-shutdown") {
			t.Errorf("event stream got %v before closing, want server-shutdown; lines %q", events, lines)
		}
		// The stream was closed after the listener: nothing new is accepted.
		if conn, err := net.DialTimeout("tcp", p.listen, time.Second); err == nil {
			conn.Close()
			t.Error("the public listener still accepts connections during the shutdown")
		}
		if r := <-call; r.err != nil || r.status != http.StatusOK || r.body["done"] != true {
			t.Errorf("API call in flight during the shutdown: %v, want 200 done", r)
		}
		<-exited
		if !inTime || exitErr != nil {
			t.Fatalf("after SIGTERM: exited in time %v, error %v\n%s", inTime, exitErr, p.out.String())
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("shutdown took %v, more than BFF_SHUTDOWN_TIMEOUT", took)
		}
		out := p.out.String()
		for _, want := range []string{"shutting down", "session store closed", "bff stopped"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "were cut") {
			t.Errorf("a request was cut although it finished within the timeout:\n%s", out)
		}
	})

	t.Run("cuts at the timeout", func(t *testing.T) {
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-r.Context().Done()
		}))
		defer hang.Close()
		p := s.startBFF(t, "cut", "memory:", "BFF_ROUTES=/api/="+s.apiURL+",/hang/="+hang.URL, "BFF_SHUTDOWN_TIMEOUT=1s")
		br := s.newLBBrowser()
		defer br.close()
		br.login(t, p, "alice", "alice-pass")
		call := make(chan callResult, 1)
		go func() { call <- br.call(p, "/hang/x", 20*time.Second) }()
		<-arrived
		start := time.Now()
		inTime, err := p.signal(syscall.SIGTERM, 10*time.Second)
		took := time.Since(start)
		if !inTime || err != nil {
			t.Fatalf("after SIGTERM with a hanging request: exited in time %v, error %v\n%s", inTime, err, p.out.String())
		}
		if took < time.Second || took > 4*time.Second {
			t.Errorf("exit %v after SIGTERM, want just after the 1s timeout", took)
		}
		if r := <-call; r.err == nil && r.status == http.StatusOK {
			t.Errorf("the hanging request got %v, want it cut", r)
		}
		if out := p.out.String(); !strings.Contains(out, "were cut") || !strings.Contains(out, "session store closed") {
			t.Errorf("log does not say the request was cut and the store closed:\n%s", out)
		}
	})
}
