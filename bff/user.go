package bff

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bffproxy/bff/sessionstore"
)

// userInfo is what the SPA learns of its session: who is signed in and how
// to sign out. No token, and not the IdP's sid.
type userInfo struct {
	Sub               string `json:"sub"`
	Name              string `json:"name,omitempty"`
	Email             string `json:"email,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	SID               string `json:"sid"`
	LogoutURL         string `json:"logoutUrl"`
	SessionExpiresIn  int64  `json:"sessionExpiresIn"`
	// ACR and AuthTime are the authentication context class and time of
	// the session's latest sign-in (a step-up updates them).
	ACR      string `json:"acr,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, sess *sessionstore.Session) error {
	s.touch(r.Context(), sess)
	authTime, _ := strconv.ParseInt(sess.Claims["auth_time"], 10, 64)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, userInfo{
		Sub:               sess.Subject,
		Name:              sess.Claims["name"],
		Email:             sess.Claims["email"],
		PreferredUsername: sess.Claims["preferred_username"],
		SID:               sess.Handle,
		LogoutURL:         s.cfg.Prefix + "/logout?sid=" + url.QueryEscape(sess.Handle),
		SessionExpiresIn:  int64(sess.ExpiresAt.Sub(time.Now()).Seconds()),
		ACR:               sess.Claims["acr"],
		AuthTime:          authTime,
	})
	return nil
}
