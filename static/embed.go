// Package static holds the single-page app served by the BFF: its source in
// src/ (React and TypeScript, built with Vite: npm run build) and its build
// in dist/, committed and embedded into the binary, so that one file is the
// whole deployment and a Go build needs no npm. check.sh (and
// TestCommittedBuildMatchesSources) fail when dist/ is not the build of src/.
package static

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// FS returns the build: index.html at its root, hashed assets under assets/.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// dist is embedded at compile time; a missing directory fails the build.
		panic(err)
	}
	return sub
}
