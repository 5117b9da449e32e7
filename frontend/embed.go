// Package frontend embeds the built browser app so the Go binary
// serves it without Node at run time.
//
// Vite writes the build into dist/; a committed placeholder keeps
// `go build` working before the app has been built (make demo builds it).
package frontend

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist returns the built app rooted at the dist folder: index.html at its
// top and the content-hashed assets under assets/. Before `npm run build`
// it holds only placeholder.html.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "dist" is valid.
		panic(err)
	}
	return sub
}
