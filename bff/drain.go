package bff

// Drain is the first step of a graceful shutdown, called once the listeners
// stop accepting: every open session-event stream is sent "server-shutdown"
// and closed, proxied event streams and WebSockets are cut, and so are
// streams opened from now on; the browser reconnects to another instance.
// Streams never end by themselves, so without this a shutdown would wait
// for them until its timeout. Other requests in flight are not touched:
// they finish normally.
func (s *Server) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}
