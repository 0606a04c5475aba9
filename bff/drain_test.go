package bff_test

import (
	"testing"
	"time"
)

// Proxied event streams and WebSockets never end by themselves either: a
// shutdown that left them open would wait its whole timeout for them, and
// a hijacked WebSocket would outlive even the server's Close. Drain cuts
// them, as it closes the session-event streams, and the browser reconnects
// to another instance.
func TestDrainCutsProxiedStreams(t *testing.T) {
	st := mustStartStack(t, stackOptions{})
	b := st.newBrowser(t)
	b.mustLogin(t, "alice")
	s, wsEnded := b.openStreams(t)

	start := time.Now()
	st.server.Drain()
	assertStreamsCut(t, s, wsEnded, start, "Drain", "at once")
}
