package sessionstore

import "context"

// SessionCounter is an optional ability of a Store: counting its live
// sessions, for the sessions-active gauge. The BFF samples it rarely (at
// most every 15 s, and only when metrics are scraped), so a backend may pay
// a walk of its keys for it, but never a decode of every record.
type SessionCounter interface {
	// CountSessions returns the number of live sessions. Backends say how
	// exact the number is.
	CountSessions(ctx context.Context) (int, error)
}
