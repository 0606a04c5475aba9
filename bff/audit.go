package bff

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bffproxy/bff/sessionstore"
)

// Audit events: the stable values of the event field of audit lines (log
// message "audit"), one line per session lifecycle event, for operators to
// ship to their SIEM. They are part of the product's interface: add new
// ones, never rename one.
const (
	auditLogin          = "login"              // a session was created by a completed login
	auditLogout         = "logout"             // the user signed out
	auditAdminKill      = "admin_kill"         // an admin ended the session (actor: admin@<address>)
	auditBackchannel    = "backchannel_logout" // the IdP ended it (OIDC Back-Channel Logout)
	auditRefreshRefused = "refresh_refused"    // the IdP refused the refresh token; the session ended
	auditReplaced       = "replaced"           // a new login in the same browser ended it
	auditStepUp         = "step_up"            // the user signed in again at a higher level or more recently; the session kept, its tokens replaced
	auditDeviceSignOut  = "device_signed_out"  // the user ended it from another of their sessions
	auditExpiry         = "expiry"             // idle or absolute timeout (see auditExpiry)
	auditEnded          = "session_ended"      // any other cause
)

// auditEvent names the end of a session by its cause.
func auditEvent(cause sessionstore.Cause) string {
	switch cause {
	case sessionstore.CauseUserLogout:
		return auditLogout
	case sessionstore.CauseAdmin:
		return auditAdminKill
	case sessionstore.CauseBackchannel:
		return auditBackchannel
	case sessionstore.CauseRefreshDenied:
		return auditRefreshRefused
	case sessionstore.CauseReplaced:
		return auditReplaced
	case sessionstore.CauseUserRevoked:
		return auditDeviceSignOut
	case sessionstore.CauseExpired:
		return auditExpiry
	}
	return auditEnded
}

// audit writes one audit line: event, then the subject and the session's
// public handle (never a token or cookie value), the extra attributes, and
// the request id and trace id that tie it to the request's other lines
// and spans.
func (s *Server) audit(ctx context.Context, event, sub, handle string, extra ...slog.Attr) {
	attrs := make([]slog.Attr, 0, 6+len(extra))
	attrs = append(attrs, slog.String("event", event))
	if sub != "" {
		attrs = append(attrs, slog.String("sub", sub))
	}
	attrs = append(attrs, slog.String("handle", handle))
	attrs = append(attrs, extra...)
	if id := requestID(ctx); id != "" {
		attrs = append(attrs, slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// Expiry audit budget per instance (20 a second on average); see auditExpiry.
const (
	expiryAuditBurst  = 100
	expiryAuditWindow = 5 * time.Second
)

// auditExpiry logs the expiry of the session under key, once. A session
// that times out simply disappears from the store, so the BFF learns of it
// when its browser next presents the cookie and finds neither a session
// nor a tombstone; the replay cache makes that one line per session
// cluster-wide, however many requests or tabs follow. The subject is no
// longer known; the handle is (it derives from the key). A cookie the BFF
// never issued looks the same, so the checks are rate-limited per instance:
// a flood of made-up cookies costs bounded store writes and log lines.
func (s *Server) auditExpiry(ctx context.Context, key string) {
	if !s.expiryAudit.Take("instance", time.Now()) {
		return
	}
	first, err := s.store.Remember(ctx, "expired:"+key, s.cfg.TombstoneTTL)
	if err != nil || !first {
		return
	}
	s.audit(ctx, auditExpiry, "", sessionstore.HandleFromKey(key), slog.String("cause", string(sessionstore.CauseExpired)))
}
