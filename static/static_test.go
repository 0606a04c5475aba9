package static

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// buildInputs is every file the build depends on, as build-stamp.mjs lists
// them: relative, slash-separated paths.
func buildInputs(t *testing.T) []string {
	t.Helper()
	inputs := []string{"index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"}
	err := filepath.WalkDir("src", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			inputs = append(inputs, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the sources: %v", err)
	}
	slices.Sort(inputs)
	return inputs
}

// sourceHash is build-stamp.mjs's hash: the SHA-256 of one line
// "<path>\0<hex sha-256 of the file>\n" per input, in path order.
func sourceHash(t *testing.T) string {
	t.Helper()
	all := sha256.New()
	for _, rel := range buildInputs(t) {
		b, err := os.ReadFile(filepath.FromSlash(rel))
		if err != nil {
			t.Fatalf("read %s: %v", rel, err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(all, "%s\x00%s\n", rel, hex.EncodeToString(sum[:]))
	}
	return hex.EncodeToString(all.Sum(nil))
}

// The committed build must come from the committed sources. File times are
// meaningless on a fresh clone, so the build records a hash of its inputs
// and this test recomputes it.
func TestCommittedBuildMatchesSources(t *testing.T) {
	stamp, err := os.ReadFile("dist/source-hash.txt")
	if err != nil {
		t.Fatalf("the build has no source hash (%v): run `npm ci && npm run build` in static/ and commit dist/", err)
	}
	if got, want := strings.TrimSpace(string(stamp)), sourceHash(t); got != want {
		t.Fatalf("static/dist is older than its sources (built from %s, sources are %s): run `npm run build` in static/ and commit dist/", got, want)
	}
}

var (
	scriptTag     = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	hashedAsset   = regexp.MustCompile(`^assets/[A-Za-z0-9_.-]+-[A-Za-z0-9_-]{8,}\.(js|css|svg|png|woff2)$`)
	assetRef      = regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`)
	inlineHandler = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
)

// The app runs under script-src 'self'; style-src 'self': no inline script
// or style in the entry page, and every asset a hashed file of the build
// (served with a year-long immutable cache, so a new build must change its
// names).
func TestBuildSatisfiesTheCSP(t *testing.T) {
	index, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	scripts := scriptTag.FindAllStringSubmatch(html, -1)
	if len(scripts) == 0 {
		t.Fatal("index.html loads no script")
	}
	for _, m := range scripts {
		if !strings.Contains(m[1], `src="/assets/`) || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline or foreign script in index.html: %s", m[0])
		}
	}
	lower := strings.ToLower(html)
	for _, bad := range []string{"<style", " style=", "javascript:"} {
		if strings.Contains(lower, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if inlineHandler.MatchString(html) {
		t.Error("index.html has an inline event handler")
	}
	refs := assetRef.FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d assets, want the script and the stylesheet", len(refs))
	}
	for _, m := range refs {
		if !hashedAsset.MatchString(m[1]) {
			t.Errorf("asset %s has no content hash in its name", m[1])
		}
		if _, err := fs.Stat(FS(), m[1]); err != nil {
			t.Errorf("index.html references %s, which the build lacks", m[1])
		}
	}
	assets, _ := fs.ReadDir(FS(), "assets")
	for _, a := range assets {
		if !hashedAsset.MatchString("assets/" + a.Name()) {
			t.Errorf("asset %s has no content hash in its name", a.Name())
		}
	}
}
