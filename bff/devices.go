package bff

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// device is one of the signed-in user's sessions as the user sees it in
// "your devices": enough to recognise it and end it, nothing more. The
// handle is the public session handle (never the cookie value), and no
// token, IP address or IdP sid is shown.
type device struct {
	Handle   string    `json:"handle"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	Device   string    `json:"device"`
	Current  bool      `json:"current"`
}

// handleListDevices lists the signed-in user's own sessions, this one
// first, then the most recently used.
func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request, sess *sessionstore.Session) error {
	list, err := s.ownSessions(r, sess)
	if err != nil {
		return err
	}
	out := make([]device, 0, len(list))
	for _, other := range list {
		out = append(out, device{
			Handle:   other.Handle,
			Created:  other.CreatedAt.UTC(),
			LastSeen: other.LastSeen.UTC(),
			Device:   describeDevice(other.UserAgent),
			Current:  other.Key == sess.Key,
		})
	}
	// ListBySubject is newest first; the current session leads, the rest
	// keep that order.
	for i, d := range out {
		if d.Current && i > 0 {
			copy(out[1:i+1], out[:i])
			out[0] = d
			break
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// handleEndDevice ends one of the user's own sessions through the one kill
// path. A handle that is unknown, expired or another user's is the same 404,
// so the endpoint cannot be used to probe for other people's sessions.
func (s *Server) handleEndDevice(w http.ResponseWriter, r *http.Request, sess *sessionstore.Session) error {
	handle := r.PathValue("handle")
	target, err := s.store.GetByHandle(r.Context(), handle)
	if isNotFound(err) || handle == "" || (err == nil && (target.Subject != sess.Subject || target.Issuer != sess.Issuer)) {
		return errNoSuchDevice()
	}
	if err != nil {
		return errStoreUnavailable(err)
	}
	ended, err := s.endSession(r.Context(), target.Key, sessionstore.CauseUserRevoked, userActor(sess))
	if err != nil {
		return errStoreUnavailable(err)
	}
	if ended == nil {
		return errNoSuchDevice() // ended meanwhile by someone else
	}
	if target.Key == sess.Key {
		s.expireSessionCookie(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]int{"ended": 1})
	return nil
}

// handleEndOtherDevices ends every session of the user but this one ("sign
// out everywhere else"). It requires others=true: a DELETE of the whole
// collection must never quietly mean "every session, this one included".
func (s *Server) handleEndOtherDevices(w http.ResponseWriter, r *http.Request, sess *sessionstore.Session) error {
	if r.URL.Query().Get("others") != "true" {
		return errOthersRequired()
	}
	list, err := s.ownSessions(r, sess)
	if err != nil {
		return err
	}
	others := list[:0]
	for _, other := range list {
		if other.Key != sess.Key {
			others = append(others, other)
		}
	}
	n, err := s.endSessions(r.Context(), others, sessionstore.CauseUserRevoked, userActor(sess))
	if err != nil {
		return errStoreUnavailable(fmt.Errorf("ended %d sessions of %d: %w", n, len(others), err))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
	return nil
}

// ownSessions is the live sessions of the signed-in user at this IdP.
func (s *Server) ownSessions(r *http.Request, sess *sessionstore.Session) ([]*sessionstore.Session, error) {
	list, err := s.store.ListBySubject(r.Context(), sess.Subject)
	if err != nil {
		return nil, errStoreUnavailable(err)
	}
	now := time.Now()
	own := list[:0]
	for _, other := range list {
		if other.Issuer == sess.Issuer && other.Live(now) {
			own = append(own, other)
		}
	}
	return own, nil
}

// userActor names the session that asked, for the audit line.
func userActor(sess *sessionstore.Session) string {
	return "user@" + sess.Handle
}

// describeDevice turns a User-Agent into a short label such as "Firefox on
// Windows", so a user can tell their sessions apart. It is a hint for a
// human, not an identification: the header is whatever the client sent.
func describeDevice(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	browser := "Unknown browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
		{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"HeadlessChrome/", "Chrome (headless)"}, {"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Chromium/", "Chromium"},
		{"Safari/", "Safari"},
		{"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			return browser + " on " + o.name
		}
	}
	return browser
}
