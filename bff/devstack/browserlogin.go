package devstack

import (
	"context"
	"net/http"
)

// The dev OP remembers which browser a user signed in with, as an OP's own
// session cookie does: a user who signs in again in the same browser (to
// confirm it is them, a step-up) keeps the login's `sid`, so the client's
// session stays matched to it for back-channel logout. The password is
// still asked every time (there is no silent sign-in: prompt=none fails).

// opBrowserCookie names the dev OP's browser cookie.
const opBrowserCookie = "devop_browser"

// maxBrowsers bounds the remembered browsers; beyond it one is forgotten.
const maxBrowsers = 10_000

type browserLogin struct {
	sid, subject string
}

// keepLogin runs after a successful password check of an authorization
// request: if the browser (its cookie value prev) signed in before as the
// same user, that login's sid is used again. It returns the browser's
// cookie value to set.
func (s *devStorage) keepLogin(ctx context.Context, authRequestID, prev string) string {
	ar, err := s.exampleStorage.AuthRequestByID(ctx, authRequestID)
	if err != nil {
		return prev
	}
	subject := ar.GetSubject()
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.browsers[prev]; ok && b.subject == subject {
		s.sids[authRequestID] = b.sid
		return prev
	}
	if len(s.browsers) >= maxBrowsers {
		for k := range s.browsers {
			delete(s.browsers, k)
			break
		}
	}
	token := randomID()
	s.browsers[token] = browserLogin{sid: s.sids[authRequestID], subject: subject}
	return token
}

// forgetLogin drops the browsers signed in with sid (logout ends it).
// The caller holds s.mu.
func (s *devStorage) forgetLogin(sid string) {
	for k, b := range s.browsers {
		if b.sid == sid {
			delete(s.browsers, k)
		}
	}
}

// rememberBrowser keeps the browser's sign-in after a password check.
func (f *loginForm) rememberBrowser(w http.ResponseWriter, r *http.Request, authRequestID string) {
	var prev string
	if c, err := r.Cookie(opBrowserCookie); err == nil {
		prev = c.Value
	}
	token := f.op.storage.keepLogin(r.Context(), authRequestID, prev)
	http.SetCookie(w, &http.Cookie{Name: opBrowserCookie, Value: token, Path: f.op.prefix + "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
