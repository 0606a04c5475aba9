package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
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
