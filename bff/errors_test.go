package bff

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clientErrors calls every error constructor of errors.go once. A new
// constructor must be added here; TestErrorConstructorsListed says so.
func clientErrors() map[string]*Error {
	cause := errors.New("cause")
	return map[string]*Error{
		"errLoginRequired":       errLoginRequired(),
		"errSessionExpired":      errSessionExpired(cause),
		"errSessionEnded":        errSessionEnded(),
		"errCSRF":                errCSRF("reason"),
		"errStepUpRequired":      errStepUpRequired(stepUp{ACRValues: []string{"urn:x"}, MaxAge: 60}, cause),
		"errBadLoginRequest":     errBadLoginRequest("max_age must be a number of seconds"),
		"errStepUpNotMet":        errStepUpNotMet(cause),
		"errBadPath":             errBadPath("reason"),
		"errStoreUnavailable":    errStoreUnavailable(cause),
		"errCanceled":            errCanceled(cause),
		"errInternal":            errInternal(cause),
		"errNotFound":            errNotFound(),
		"errNoApp":               errNoApp(cause),
		"errLoginStart":          errLoginStart(cause),
		"errIdPError":            errIdPError("access_denied"),
		"errUnknownState":        errUnknownState(),
		"errStateReused":         errStateReused(),
		"errIssuerMismatch":      errIssuerMismatch(cause),
		"errMissingCode":         errMissingCode(),
		"errCodeExchange":        errCodeExchange(cause),
		"errNoIDToken":           errNoIDToken(),
		"errInvalidIDToken":      errInvalidIDToken(cause),
		"errNonceMismatch":       errNonceMismatch(),
		"errSealFailed":          errSealFailed(cause),
		"errInvalidLogout":       errInvalidLogout(),
		"errBadLogoutToken":      errBadLogoutToken(cause),
		"errRateLimited":         errRateLimited("slow down", time.Second),
		"errRefreshInProgress":   errRefreshInProgress(cause),
		"errIdPUnavailable":      errIdPUnavailable(cause),
		"errMethodNotAllowed":    errMethodNotAllowed(),
		"errTokenExchange":       errTokenExchange(cause),
		"errTooManyStreams":      errTooManyStreams(16),
		"errStreamCapacity":      errStreamCapacity(),
		"errUpstreamTimeout":     errUpstreamTimeout(cause),
		"errUpstreamUnavailable": errUpstreamUnavailable(cause),
		"errAdminUnauthorized":   errAdminUnauthorized(),
		"errEmptySubject":        errEmptySubject(),
		"errUnknownHandle":       errUnknownHandle(),
		"errNotReady":            errNotReady(cause),
		"errNoSuchDevice":        errNoSuchDevice(),
		"errOthersRequired":      errOthersRequired(),
	}
}

// TestErrorLiteralsOnlyInErrorsGo keeps the client's error codes in one
// home: an Error literal anywhere but errors.go is a code nobody will find
// in the list.
func TestErrorLiteralsOnlyInErrorsGo(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	for _, name := range files {
		if name == "errors.go" {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "&"+"Error{") {
			t.Errorf("%s builds an Error literal; add a constructor to errors.go instead", name)
		}
	}
}

// TestErrorConstructorsListed finds every function of errors.go that writes
// an Error literal and checks clientErrors calls it, so the README check
// below sees every code.
func TestErrorConstructorsListed(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if lit, ok := n.(*ast.CompositeLit); ok {
				if id, ok := lit.Type.(*ast.Ident); ok && id.Name == "Error" {
					found = append(found, fn.Name.Name)
					return false
				}
			}
			return true
		})
	}
	if len(found) < 10 {
		t.Fatalf("found only %d constructors in errors.go: %v", len(found), found)
	}
	listed := clientErrors()
	for _, name := range found {
		if _, ok := listed[name]; !ok {
			t.Errorf("constructor %s is not in clientErrors", name)
		}
	}
	for name := range listed {
		if !slices.Contains(found, name) {
			t.Errorf("clientErrors lists %s, which errors.go does not define with an Error literal", name)
		}
	}
}

// TestErrorCodesMatchREADME checks the README's table of error codes against
// the constructors: every code the BFF sends is documented with its status,
// and every documented code is sent.
func TestErrorCodesMatchREADME(t *testing.T) {
	want := map[string]int{}
	for name, e := range clientErrors() {
		if e.Code == "" || e.Status < 400 || e.Message == "" {
			t.Errorf("%s: incomplete error %+v", name, e)
		}
		if st, ok := want[e.Code]; ok && st != e.Status {
			t.Errorf("code %q has two statuses, %d and %d", e.Code, st, e.Status)
		}
		want[e.Code] = e.Status
	}
	got := readmeErrorCodes(t)
	for code, status := range want {
		if st, ok := got[code]; !ok {
			t.Errorf("README's error table has no row for %q (%d)", code, status)
		} else if st != status {
			t.Errorf("README says %q is %d; the BFF sends %d", code, st, status)
		}
	}
	for code := range got {
		if _, ok := want[code]; !ok {
			t.Errorf("README's error table lists %q, which no constructor sends", code)
		}
	}
}

var errorRow = regexp.MustCompile("^\\| `([a-z_]+)` \\| (\\d{3}) \\|")

// readmeErrorCodes reads the table under the README's "Error codes"
// heading: code → status.
func readmeErrorCodes(t *testing.T) map[string]int {
	t.Helper()
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "\n### Error codes\n")
	if !ok {
		t.Fatal(`README.md has no "### Error codes" section`)
	}
	codes := map[string]int{}
	inTable := false
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		if m := errorRow.FindStringSubmatch(line); m != nil {
			status, _ := strconv.Atoi(m[2])
			if _, dup := codes[m[1]]; dup {
				t.Errorf("README lists %q twice", m[1])
			}
			codes[m[1]] = status
		}
	}
	if len(codes) == 0 {
		t.Fatal("README's error table has no rows")
	}
	return codes
}
