package auditlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the C2SP tlog-tiles tile height: 256 hashes a tile.
const TileHeight = 8

// A Source is what the tiles handler reads.
type Source interface {
	// Checkpoint returns the latest signed checkpoint; tiles are served
	// up to its size.
	Checkpoint(ctx context.Context) (*Checkpoint, error)
	// ReadHashes returns stored hashes (tlog.StoredHashIndex numbering).
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// ReadEntries returns entries [start, start+count).
	ReadEntries(ctx context.Context, start, count int64) ([][]byte, error)
}

// MaxEntrySize is the largest entry the tlog-tiles entry bundles can hold
// (a big-endian uint16 length prefixes each entry).
const MaxEntrySize = 1<<16 - 1

// Handler serves the log in the C2SP tlog-tiles layout:
//
//	GET /checkpoint                      the latest checkpoint
//	GET /tile/<L>/<N>[.p/<W>]            hash tiles
//	GET /tile/entries/<N>[.p/<W>]        entry bundles
//
// A tile's content never changes — a partial tile's path names its width
// — so tiles are served cacheable (full ones immutable); the checkpoint
// is revalidated. The handler reads the request's path as it was sent,
// escaped, so that it answers for the same path a router matched: a
// router that sends "/tile/entries%2F000" to a route other than the
// entries' must not have it served as entries. Entry bundles are served
// only when entries is true, so that a handler for the public hash tiles
// can never serve them, whatever reaches it. fail writes an error
// response: 404 for what the log does not hold (or, with entries false,
// for an entry bundle), 500 for a failure to read it (err then carries the
// cause, for the server's log); nil writes plain text.
func Handler(src Source, entries bool, fail func(w http.ResponseWriter, status int, err error)) http.Handler {
	if fail == nil {
		fail = func(w http.ResponseWriter, status int, err error) { http.Error(w, err.Error(), status) }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			fail(w, http.StatusMethodNotAllowed, errors.New("the log is read with GET"))
			return
		}
		ctx := r.Context()
		c, err := src.Checkpoint(ctx)
		if err != nil {
			fail(w, http.StatusNotFound, errors.New("the log has no checkpoint yet"))
			return
		}
		path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
		if path == "checkpoint" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(c.Note)
			return
		}
		t, err := ParseTilePath(path)
		if err != nil {
			fail(w, http.StatusNotFound, err)
			return
		}
		if t.L == -1 && !entries {
			fail(w, http.StatusNotFound, fmt.Errorf("entry bundles are not served here"))
			return
		}
		if !withinTree(t, c.Size) {
			fail(w, http.StatusNotFound, fmt.Errorf("tile %s lies beyond the checkpoint's %d entries", path, c.Size))
			return
		}
		var data []byte
		if t.L == -1 {
			entries, err := src.ReadEntries(ctx, t.N<<TileHeight, int64(t.W))
			if err != nil {
				fail(w, http.StatusInternalServerError, fmt.Errorf("reading entries %s: %w", path, err))
				return
			}
			data = EntryBundle(entries)
		} else {
			data, err = tlog.ReadTileData(t, tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) { return src.ReadHashes(ctx, ix) }))
			if err != nil {
				fail(w, http.StatusInternalServerError, fmt.Errorf("reading tile %s: %w", path, err))
				return
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if t.W == 1<<TileHeight {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=86400")
		}
		w.Write(data)
	})
}

// withinTree reports whether every hash of tile t (or, at level -1, every
// entry of the bundle) lies within a tree of size entries. A tile at
// level L ≥ 0 holds hashes N·256 … N·256+W−1 of that level, each of 256^L
// entries; it lies within the tree when (N·256+W)·256^L ≤ size, which is
// computed as N·256+W ≤ size / 256^L so that no level or index, however
// large, overflows.
func withinTree(t tlog.Tile, size int64) bool {
	if t.N < 0 || t.W <= 0 || t.W > 1<<TileHeight || t.L < -1 || size < 0 {
		return false
	}
	level := max(t.L, 0)
	if level*TileHeight >= 63 {
		return false // a single hash of that level covers more than any tree
	}
	covered := size >> (uint(level) * TileHeight)
	if t.N > covered>>TileHeight {
		return false
	}
	return int64(t.W) <= covered-t.N<<TileHeight // N·256 ≤ covered: no overflow
}

// EntryBundle encodes entries as a tlog-tiles entry bundle: each entry
// preceded by its length as a big-endian uint16.
func EntryBundle(entries [][]byte) []byte {
	var out []byte
	for _, e := range entries {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out
}

// TilePath returns the C2SP tlog-tiles path of a tile (level -1 for entry
// bundles).
func TilePath(t tlog.Tile) string {
	if t.L == -1 {
		return "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/data/")
	}
	return "tile/" + strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", TileHeight))
}

// ParseTilePath parses a C2SP tlog-tiles path.
func ParseTilePath(path string) (tlog.Tile, error) {
	var sumdb string
	if rest, ok := strings.CutPrefix(path, "tile/entries/"); ok {
		sumdb = fmt.Sprintf("tile/%d/data/%s", TileHeight, rest)
	} else if rest, ok := strings.CutPrefix(path, "tile/"); ok {
		sumdb = fmt.Sprintf("tile/%d/%s", TileHeight, rest)
	} else {
		return tlog.Tile{}, fmt.Errorf("auditlog: %q is not a tile path", path)
	}
	t, err := tlog.ParseTilePath(sumdb)
	if err != nil || TilePath(t) != path {
		return tlog.Tile{}, fmt.Errorf("auditlog: %q is not a tile path", path)
	}
	return t, nil
}
