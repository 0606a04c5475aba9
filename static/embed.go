// Package static holds the single-page app served by the BFF: its build,
// committed in dist/ and embedded into the binary, so that one file is the
// whole deployment.
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
