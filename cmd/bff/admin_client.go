package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bffproxy/bff/bff"
)

const (
	defaultAdminURL = "http://127.0.0.1:9091"
	// adminTimeout bounds each request, so a hung server cannot hang a script.
	adminTimeout = 30 * time.Second
	// adminPageSize is the server's largest page: fewer round trips.
	adminPageSize = 1000
	// maxAdminResponse bounds what is read of one response (a full page of
	// 1000 sessions is well under a megabyte).
	maxAdminResponse = 32 << 20
	// maxTableUserAgent shortens user agents in the table; --json has them whole.
	maxTableUserAgent = 80
)

// adminClient talks to one admin API with one token.
type adminClient struct {
	base  *url.URL // no trailing slash, query or fragment
	token string
	http  *http.Client
}

// newAdminClient resolves the URL and token: flags first, then the
// environment, then the default URL (the token has no default).
func newAdminClient(o adminOptions, getenv func(string) string) (*adminClient, error) {
	raw := firstNonEmpty(o.url, getenv("BFF_ADMIN_URL"), defaultAdminURL)
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, adminUsageErr("admin URL %q: want http://host:port or https://host:port", sanitize(redactAdminURL(raw)))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, adminUsageErr("admin URL %q: must not carry a query, fragment or credentials", sanitize(redactAdminURL(raw)))
	}
	token, err := adminToken(o, getenv)
	if err != nil {
		return nil, err
	}
	return &adminClient{
		base:  u,
		token: token,
		http: &http.Client{
			Timeout: adminTimeout,
			// The admin API never redirects. A redirect means --url points
			// somewhere else (a proxy, the public listener): following it
			// would turn a DELETE into a GET and could carry the token on.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// cleartextRemote reports whether the token would cross a network in the
// clear: plain http to anything but a loopback address.
func (c *adminClient) cleartextRemote() bool {
	if c.base.Scheme != "http" {
		return false
	}
	host := c.base.Hostname()
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// endpoint builds the URL of an admin route from already escaped path
// segments.
func (c *adminClient) endpoint(escapedPath string, query url.Values) (string, error) {
	u, err := url.Parse(c.base.String() + escapedPath)
	if err != nil {
		return "", fmt.Errorf("admin: build request URL: %w", err)
	}
	u.RawQuery = query.Encode()
	return u.String(), nil
}

// pathSegment escapes s as one path segment. url.PathEscape leaves "." and
// ".." alone, which the server's router would resolve as relative segments
// (DELETE /admin/users/../sessions is not kill-user); escaping their dots
// keeps them data.
func pathSegment(s string) string {
	e := url.PathEscape(s)
	if s == "." || s == ".." {
		e = strings.ReplaceAll(e, ".", "%2E")
	}
	return e
}

// do sends one request and returns the body of a 2xx answer. Every other
// answer becomes an error carrying the server's code and message.
func (c *adminClient) do(ctx context.Context, method, escapedPath string, query url.Values) ([]byte, error) {
	target, err := c.endpoint(escapedPath, query)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bff-admin/"+version)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminResponse+1))
	if err != nil {
		return nil, fmt.Errorf("admin: reading the answer of %s: %w", c.base.Redacted(), err)
	}
	if len(body) > maxAdminResponse {
		return nil, fmt.Errorf("admin: the answer of %s is larger than %d bytes", c.base.Redacted(), maxAdminResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(resp, body)
	}
	return body, nil
}

// transportError explains a request that got no answer.
func (c *adminClient) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("admin: %w", ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("admin: no answer from the admin API at %s within %s", c.base.Redacted(), adminTimeout)
		}
		err = ue.Err // the URL is named below, once
	}
	return fmt.Errorf("admin: cannot reach the admin API at %s: %w (is bff running? set --url or BFF_ADMIN_URL)", c.base.Redacted(), err)
}

// adminErrorBody is how the admin API reports errors.
type adminErrorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

// statusError turns a non-2xx answer into "admin: 404 not_found: message".
// The body is the server's, possibly a proxy's: it is sanitized before it
// reaches the terminal.
func (c *adminClient) statusError(resp *http.Response, body []byte) error {
	var e adminErrorBody
	var msg string
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = fmt.Sprintf("admin: %d %s", resp.StatusCode, sanitize(e.Error))
		if e.Message != "" {
			msg += ": " + sanitize(e.Message)
		}
		if e.RequestID != "" {
			msg += " (request " + sanitize(e.RequestID) + ")"
		}
	} else {
		msg = fmt.Sprintf("admin: %s", resp.Status)
		if text := strings.TrimSpace(string(body)); text != "" {
			msg += ": " + sanitize(truncate(text, 200))
		}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		msg += "; check --token, BFF_ADMIN_TOKEN or BFF_ADMIN_TOKEN_FILE"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		msg += fmt.Sprintf("; redirected to %q: is %s the admin listener?", sanitize(resp.Header.Get("Location")), c.base.Redacted())
	case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
		msg += "; retry after " + sanitize(resp.Header.Get("Retry-After")) + "s"
	}
	return errors.New(msg)
}

// sessionPage is one answer of GET /admin/sessions; it is also the shape
// --json prints, with every page in one document and next empty.
type sessionPage struct {
	Sessions []json.RawMessage `json:"sessions"`
	Next     string            `json:"next"`
}

// listSessions prints the sessions of subject, or all sessions when subject
// is empty, following the cursor to the last page.
func (c *adminClient) listSessions(ctx context.Context, subject string, asJSON bool, stdout io.Writer) error {
	all := []json.RawMessage{}
	if subject != "" {
		page, err := c.sessionPage(ctx, url.Values{"sub": {subject}})
		if err != nil {
			return err
		}
		all = append(all, page.Sessions...)
	} else {
		seen := map[string]bool{}
		cursor := ""
		for {
			q := url.Values{"limit": {strconv.Itoa(adminPageSize)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			page, err := c.sessionPage(ctx, q)
			if err != nil {
				return err
			}
			all = append(all, page.Sessions...)
			if page.Next == "" {
				break
			}
			// A cursor seen before would loop forever.
			if seen[page.Next] {
				return errors.New("admin: the server returned the same page cursor twice; stopping")
			}
			seen[page.Next] = true
			cursor = page.Next
		}
	}

	sessions := make([]bff.AdminSession, len(all))
	for i, raw := range all {
		if err := json.Unmarshal(raw, &sessions[i]); err != nil {
			return fmt.Errorf("admin: unexpected session in the answer: %w", err)
		}
	}
	if asJSON {
		return writeIndentedJSON(stdout, sessionPage{Sessions: all})
	}
	if len(sessions) == 0 {
		if subject != "" {
			fmt.Fprintf(stdout, "no live sessions of %s\n", sanitize(subject))
		} else {
			fmt.Fprintln(stdout, "no live sessions")
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HANDLE\tSUB\tCREATED\tLAST SEEN\tEXPIRES\tCLIENT IP\tUSER AGENT")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(s.Handle), cell(s.Sub), timeCell(s.Created), timeCell(s.LastSeen), timeCell(s.Expires),
			cell(s.ClientIP), cell(truncate(s.UserAgent, maxTableUserAgent)))
	}
	return tw.Flush()
}

func (c *adminClient) sessionPage(ctx context.Context, q url.Values) (*sessionPage, error) {
	body, err := c.do(ctx, http.MethodGet, "/admin/sessions", q)
	if err != nil {
		return nil, err
	}
	var page sessionPage
	if err := json.Unmarshal(body, &page); err != nil || page.Sessions == nil {
		return nil, fmt.Errorf("admin: unexpected answer from %s (is it the admin listener?)", c.base.Redacted())
	}
	return &page, nil
}

func (c *adminClient) killSession(ctx context.Context, handle string, asJSON bool, stdout io.Writer) error {
	n, body, err := c.kill(ctx, "/admin/sessions/"+pathSegment(handle))
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONBody(stdout, body)
	}
	if n == 0 {
		// The session was found, but something else ended it first.
		fmt.Fprintf(stdout, "session %s had already ended\n", sanitize(handle))
		return nil
	}
	fmt.Fprintf(stdout, "ended session %s\n", sanitize(handle))
	return nil
}

func (c *adminClient) killUser(ctx context.Context, subject string, asJSON bool, stdout io.Writer) error {
	n, body, err := c.kill(ctx, "/admin/users/"+pathSegment(subject)+"/sessions")
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONBody(stdout, body)
	}
	if n == 0 {
		fmt.Fprintf(stdout, "no live sessions of %s\n", sanitize(subject))
		return nil
	}
	noun := "sessions"
	if n == 1 {
		noun = "session"
	}
	fmt.Fprintf(stdout, "ended %d %s of %s\n", n, noun, sanitize(subject))
	return nil
}

// kill sends a DELETE and returns how many sessions the server ended.
func (c *adminClient) kill(ctx context.Context, escapedPath string) (int, []byte, error) {
	body, err := c.do(ctx, http.MethodDelete, escapedPath, nil)
	if err != nil {
		return 0, nil, err
	}
	var out struct {
		Ended *int `json:"ended"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Ended == nil {
		return 0, nil, fmt.Errorf("admin: unexpected answer from %s (is it the admin listener?)", c.base.Redacted())
	}
	return *out.Ended, body, nil
}

func writeIndentedJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeJSONBody prints a JSON answer indented like writeIndentedJSON.
func writeJSONBody(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(body), "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// sanitize makes text from the server or the command line safe for a
// terminal: user agents and subjects come from browsers and IdPs, and an
// escape sequence in one must not reach the operator's terminal, nor a tab
// or newline break the table.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return sanitize(s)
}

// timeCell prints times in UTC, as the server and its logs do.
func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
