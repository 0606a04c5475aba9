package bff_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff"
)

var auditField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// auditLines returns the audit lines of the log, each as its fields.
func auditLines(logs string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, " msg=audit ") {
			continue
		}
		fields := map[string]string{}
		for _, m := range auditField.FindAllStringSubmatch(line, -1) {
			fields[m[1]] = strings.Trim(m[2], `"`)
		}
		out = append(out, fields)
	}
	return out
}

// TestAuditLinesOfAFullFlow walks every lifecycle event — login, logout,
// admin kill, back-channel logout, a login replacing a session, a refused
// refresh and an idle expiry — and reads back exactly one audit line each,
// in order, with the stable event names and the fields operators rely on.
func TestAuditLinesOfAFullFlow(t *testing.T) {
	st := mustStartStack(t, stackOptions{accessTokenLifetime: 2 * time.Second, configure: func(c *bff.Config) {
		c.IdleTimeout, c.TouchInterval = 4*time.Second, time.Second
	}})

	b1 := st.newBrowser(t)
	b1.mustLogin(t, "alice")
	if resp := b1.get(t, "/bff/logout?sid="+userSID(t, b1), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}

	b2 := st.newBrowser(t)
	b2.mustLogin(t, "alice")
	if resp, body := st.adminDo(t, http.MethodDelete, "/admin/sessions/"+userSID(t, b2), testAdminToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("admin kill: %d %s", resp.StatusCode, body)
	}

	b3 := st.newBrowser(t)
	b3.mustLogin(t, "bob")
	claims := st.op.LogoutTokenClaims(testClientID, "user-bob", st.idpSID(t, b3))
	if resp, body := st.postLogoutToken(t, st.sign(t, claims)); resp.StatusCode != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", resp.StatusCode, body)
	}

	b4 := st.newBrowser(t)
	b4.mustLogin(t, "alice")
	b4.mustLogin(t, "alice") // the same browser again: the first session is replaced

	b5 := st.newBrowser(t)
	b5.mustLogin(t, "bob")
	st.op.RevokeSubject("user-bob")
	time.Sleep(1100 * time.Millisecond) // inside the refresh margin (half of 2 s)
	assertUnauthenticated(t, b5.api(t, "/api/whoami"), "session_expired")

	time.Sleep(4 * time.Second) // b4 has been idle longer than the idle timeout
	assertUnauthenticated(t, b4.api(t, "/bff/user"), "login_required")
	assertUnauthenticated(t, b4.api(t, "/bff/user"), "login_required") // no second expiry line

	lines := auditLines(st.logs.String())
	var events []string
	for _, l := range lines {
		events = append(events, l["event"])
	}
	want := []string{"login", "logout", "login", "admin_kill", "login", "backchannel_logout",
		"login", "replaced", "login", "login", "refresh_refused", "expiry"}
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Fatalf("audit events\n got %q\nwant %q", events, want)
	}
	for i, l := range lines {
		if l["handle"] == "" || l["request_id"] == "" {
			t.Errorf("line %d (%s) lacks handle or request_id: %v", i, l["event"], l)
		}
		if l["event"] != "expiry" && !strings.HasPrefix(l["sub"], "user-") {
			t.Errorf("line %d (%s) lacks the subject: %v", i, l["event"], l)
		}
	}
	kill := lines[3]
	if kill["actor"] != "admin@127.0.0.1" || kill["cause"] != "admin" || kill["revocation"] != "ok" {
		t.Errorf("admin kill line: %v", kill)
	}
	if lines[1]["actor"] != "user" || lines[5]["actor"] != "idp" || lines[0]["client_ip"] != "127.0.0.1" {
		t.Errorf("actors: logout %q, back-channel %q; login client_ip %q", lines[1]["actor"], lines[5]["actor"], lines[0]["client_ip"])
	}
	if exp := lines[11]; exp["cause"] != "expired" || exp["handle"] != lines[8]["handle"] {
		t.Errorf("expiry line %v does not name the expired session %s", exp, lines[8]["handle"])
	}
}
