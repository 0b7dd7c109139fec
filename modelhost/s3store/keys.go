package s3store

import (
	"strings"

	"github.com/manta-ml/manta/modelhost"
)

// Object names inside a store root.
const (
	manifestName = modelhost.ManifestName
	latestName   = modelhost.LatestName
)

// Every id, version and path is checked with modelhost's validators
// before a key is built from it, so a bad one never reaches the server.
var (
	checkID      = modelhost.ValidID
	checkVersion = modelhost.ValidVersion
)

// checkPath accepts an artifact path (modelhost.ValidPath) or the manifest.
func checkPath(p string) error {
	if p == manifestName {
		return nil
	}
	return modelhost.ValidPath(p)
}

// versionLess orders valid versions numerically.
func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// keys builds object names under the store root ("" or "prefix/").
type keys struct{ root string }

func newKeys(prefix string) keys {
	if prefix == "" {
		return keys{}
	}
	return keys{root: prefix + "/"}
}

func (k keys) model(id string) string         { return k.root + id + "/" }
func (k keys) version(id, v string) string    { return k.root + id + "/" + v + "/" }
func (k keys) file(id, v, path string) string { return k.root + id + "/" + v + "/" + path }
func (k keys) manifest(id, v string) string   { return k.file(id, v, manifestName) }
func (k keys) latest(id string) string        { return k.root + id + "/" + latestName }

// parsed is what an object name means in the layout.
type parsed struct {
	ID, Version, Path string // Version and Path empty for LATEST
	Latest            bool
}

// parse maps an object name back to the layout; ok is false for a name
// outside the root or not in the layout (bad id, version or path).
func (k keys) parse(name string) (p parsed, ok bool) {
	rest, found := strings.CutPrefix(name, k.root)
	if !found {
		return p, false
	}
	id, rest, found := strings.Cut(rest, "/")
	if !found || checkID(id) != nil {
		return p, false
	}
	p.ID = id
	if rest == latestName {
		p.Latest = true
		return p, true
	}
	v, path, found := strings.Cut(rest, "/")
	if !found || checkVersion(v) != nil || checkPath(path) != nil {
		return p, false
	}
	p.Version, p.Path = v, path
	return p, true
}
