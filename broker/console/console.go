// Package console holds the broker's web console: a page and its script
// and style, embedded in the binary and served at /ui/ by broker/api under
// a strict Content-Security-Policy. The page talks to the broker's own API
// with the session cookie a one-time sign-in code buys (spec/api/README.md,
// "Console sessions"); nothing is loaded from anywhere else.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the console's files; the caller strips the /ui prefix.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
