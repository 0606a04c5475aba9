package bff

// Drain is the first step of a graceful shutdown, called once the listeners
// stop accepting: every open session-event stream is sent "server-shutdown"
// and closed, as are streams opened from now on. Event streams never end by
// themselves, so without this a shutdown would wait for them until its
// timeout and then cut them without a word. Other requests in flight are
// not touched: they finish normally.
func (s *Server) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}
