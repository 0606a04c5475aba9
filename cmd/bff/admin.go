package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bffproxy/bff/bff"
)

// adminUsage is the help of bff admin. It is written out rather than built
// with PrintDefaults because the flags are shared by the command and its
// subcommands, and one page describes both.
const adminUsage = `Usage: bff admin [flags] <command> [args]

List and end sessions through the admin API of a running BFF.

Commands:
  sessions [--sub SUB]   list live sessions: all of them, or those of one user
  kill HANDLE            end one session (HANDLE as shown by sessions)
  kill-user SUB          end every session of a user

Flags (before or right after the command):
  --url URL          admin API base URL [BFF_ADMIN_URL] (default ` + defaultAdminURL + `)
  --token TOKEN      admin bearer token [BFF_ADMIN_TOKEN]; other users can
                     see command lines, so prefer a file:
  --token-file FILE  file holding the token [BFF_ADMIN_TOKEN_FILE]
  --json             print the server's JSON instead of a table

Handles can start with "-": put them after "--", as in bff admin kill -- -x1Y.
bff dev keeps its admin token in the file named in its banner (admin-token in
its data directory).
`

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

// usageError is a mistake on the command line: it exits with status 2, and
// is caught before any request is sent.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func adminUsageErr(format string, args ...any) error {
	return &usageError{msg: "admin: " + fmt.Sprintf(format, args...) + " (see bff admin --help)"}
}

// adminOptions are the flags shared by bff admin and its subcommands.
type adminOptions struct {
	url, token, tokenFile string
	json                  bool
}

// register adds the shared flags to fs with their current values as
// defaults, so that flags given before the command survive the
// subcommand's parse and flags after it can still override them.
func (o *adminOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "url", o.url, "admin API base URL")
	fs.StringVar(&o.token, "token", o.token, "admin bearer token")
	fs.StringVar(&o.tokenFile, "token-file", o.tokenFile, "file holding the admin bearer token")
	fs.BoolVar(&o.json, "json", o.json, "print JSON")
}

// runAdmin is bff admin: a small client of the admin API (bff.AdminHandler)
// for operators, so that ending a stolen session is one command rather than
// a hand-written curl with a bearer token.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var opts adminOptions
	fs := newAdminFlagSet("admin")
	opts.register(fs)
	if err := parseAdminFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return adminUsageErr("missing command: sessions, kill or kill-user")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]

	sub := newAdminFlagSet(cmd)
	opts.register(sub)
	var subject string
	switch cmd {
	case "sessions":
		sub.StringVar(&subject, "sub", "", "only the sessions of this subject")
	case "kill", "kill-user":
	case "help":
		fmt.Fprint(stdout, adminUsage)
		return nil
	default:
		return adminUsageErr("unknown command %q", sanitize(cmd))
	}
	if err := parseAdminFlags(sub, rest, stdout); err != nil {
		return err
	}
	positional := sub.Args()

	// Check the arguments before reading the token: a typo should say so,
	// not complain about configuration.
	var target string
	switch cmd {
	case "sessions":
		if len(positional) > 0 {
			return adminUsageErr("sessions takes no arguments; to list one user's sessions use --sub SUB")
		}
		if flagWasSet(sub, "sub") && strings.TrimSpace(subject) == "" {
			return adminUsageErr("--sub must not be empty")
		}
	case "kill", "kill-user":
		what := map[string]string{"kill": "HANDLE", "kill-user": "SUB"}[cmd]
		switch {
		case len(positional) == 0:
			return adminUsageErr("%s needs a %s", cmd, what)
		case len(positional) > 1:
			return adminUsageErr("%s takes one %s, got %d arguments (flags go before the %s)", cmd, what, len(positional), what)
		case strings.TrimSpace(positional[0]) == "":
			return adminUsageErr("%s: %s must not be empty", cmd, what)
		}
		target = positional[0]
	}

	c, err := newAdminClient(opts, getenv)
	if err != nil {
		return err
	}
	if c.cleartextRemote() {
		fmt.Fprintf(stderr, "bff admin: warning: sending the admin token unencrypted to %s; use https or an SSH tunnel\n", c.base.Host)
	}
	switch cmd {
	case "sessions":
		return c.listSessions(ctx, subject, opts.json, stdout)
	case "kill":
		return c.killSession(ctx, target, opts.json, stdout)
	default:
		return c.killUser(ctx, target, opts.json, stdout)
	}
}

// newAdminFlagSet returns a flag set that reports nothing itself: runAdmin
// turns parse errors into one error line and --help into the usage page on
// stdout.
func newAdminFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func parseAdminFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, adminUsage)
		return err // main exits 0 and prints nothing more
	}
	where := ""
	if fs.Name() != "admin" {
		where = fs.Name() + ": "
	}
	return adminUsageErr("%s%s", where, sanitize(err.Error()))
}

func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

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

// adminToken finds the bearer token. Its value never appears in an error:
// only where it was looked for.
func adminToken(o adminOptions, getenv func(string) string) (string, error) {
	var token, source string
	switch {
	case o.token != "":
		token, source = o.token, "--token"
	case o.tokenFile != "":
		t, err := readTokenFile(o.tokenFile, "--token-file")
		if err != nil {
			return "", err
		}
		token, source = t, "--token-file"
	case getenv("BFF_ADMIN_TOKEN") != "":
		token, source = getenv("BFF_ADMIN_TOKEN"), "BFF_ADMIN_TOKEN"
	case getenv("BFF_ADMIN_TOKEN_FILE") != "":
		t, err := readTokenFile(getenv("BFF_ADMIN_TOKEN_FILE"), "BFF_ADMIN_TOKEN_FILE")
		if err != nil {
			return "", err
		}
		token, source = t, "BFF_ADMIN_TOKEN_FILE"
	default:
		return "", errors.New("admin: no admin token: pass --token or --token-file, or set BFF_ADMIN_TOKEN or BFF_ADMIN_TOKEN_FILE (bff dev writes it to admin-token in its data directory)")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", fmt.Errorf("admin: the admin token from %s is empty", source)
	}
	// A header cannot carry control characters; say so rather than let the
	// HTTP client fail with a less helpful message.
	for _, r := range token {
		if r < 0x21 || r > 0x7e {
			return "", fmt.Errorf("admin: the admin token from %s contains spaces or non-printable characters", source)
		}
	}
	return token, nil
}

func readTokenFile(path, source string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin: %s: %w", source, err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fmt.Errorf("admin: %s: %s is empty", source, path)
	}
	return string(b), nil
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

// redactAdminURL hides a password in a URL before it is printed.
func redactAdminURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
