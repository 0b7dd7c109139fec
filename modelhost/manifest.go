package modelhost

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/manta-ml/manta/api"
)

// ManifestName is the name of a version's manifest file in the store.
const ManifestName = "manifest.json"

// LatestName is the name of a model's optional LATEST pointer in the store.
const LatestName = "LATEST"

// maxVersionDigits bounds versions so that every version fits an int64 and
// "next version" arithmetic is plain integer arithmetic.
const maxVersionDigits = 18

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// badInput builds an error wrapping api.ErrBadInput.
func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", api.ErrBadInput, fmt.Sprintf(format, args...))
}

// validIDFast is idPattern.MatchString without the regexp machine (ValidID
// runs on every request): ^[a-z0-9][a-z0-9._-]{0,127}$.
func validIDFast(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether id is a valid model id: it matches
// ^[a-z0-9][a-z0-9._-]{0,127}$ and never contains "..". The error wraps
// api.ErrBadInput. Every store checks ids with it before building a path or key.
func ValidID(id string) error {
	if !validIDFast(id) {
		return badInput("invalid model id %q: want ^[a-z0-9][a-z0-9._-]{0,127}$", id)
	}
	if strings.Contains(id, "..") {
		return badInput("invalid model id %q: contains \"..\"", id)
	}
	return nil
}

// ValidVersion reports whether v is a valid version: a positive decimal
// integer without leading zeros, at most 18 digits (so it fits an int64).
// The error wraps api.ErrBadInput.
func ValidVersion(v string) error {
	if v == "" {
		return badInput("invalid version \"\": want a positive integer")
	}
	if len(v) > maxVersionDigits {
		return badInput("invalid version %q: more than %d digits", v, maxVersionDigits)
	}
	if v[0] == '0' {
		return badInput("invalid version %q: want a positive integer without leading zeros", v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return badInput("invalid version %q: want a positive integer", v)
		}
	}
	return nil
}

// versionLess orders valid versions numerically (shorter is smaller, as
// valid versions have no leading zeros).
func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// ValidPath reports whether p is a valid artifact path inside a version: a
// relative, clean, slash-separated path with no ".." element, no backslash
// or control character, and not the manifest itself.
func ValidPath(p string) error {
	switch {
	case p == "":
		return badInput("invalid file path \"\": empty")
	case strings.HasPrefix(p, "/"):
		return badInput("invalid file path %q: absolute", p)
	case path.Clean(p) != p || p == ".":
		return badInput("invalid file path %q: not clean (want %q)", p, path.Clean(p))
	case p == ManifestName:
		return badInput("invalid file path %q: reserved for the manifest", p)
	case strings.ContainsRune(p, '\\'):
		return badInput("invalid file path %q: contains a backslash", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return badInput("invalid file path %q: contains \"..\"", p)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return badInput("invalid file path %q: contains a control character", p)
		}
	}
	return nil
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseManifest decodes and validates a manifest.json.
//
// Decoding is lenient about unknown fields: a manifest written by a newer
// Manta (or annotated by a person) still loads here, and fields this version
// does not know are ignored. Everything Manta uses is checked by Validate.
// Errors wrap api.ErrBadInput.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, badInput("manifest: %v", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks a manifest: id, version, a registered runtime, the
// entrypoint, and every file (clean relative path, no duplicates, sha256 as
// 64 lowercase hex digits, size >= 0). For every runtime except "go" the
// entrypoint must be one of the files. A runtime implementing
// ManifestChecker is then asked for its own checks. Errors name the field
// and wrap api.ErrBadInput.
func (m *Manifest) Validate() error {
	if m == nil {
		return badInput("manifest: nil")
	}
	if err := ValidID(m.ID); err != nil {
		return fmt.Errorf("manifest id: %w", err)
	}
	if err := ValidVersion(m.Version); err != nil {
		return fmt.Errorf("manifest %s version: %w", m.ID, err)
	}
	where := m.ID + " v" + m.Version
	if m.Runtime == "" {
		return badInput("manifest %s: runtime is required (known: %s)", where, strings.Join(Runtimes(), ", "))
	}
	rt, ok := LookupRuntime(m.Runtime)
	if !ok {
		return badInput("manifest %s: unknown runtime %q (known: %s)", where, m.Runtime, strings.Join(Runtimes(), ", "))
	}
	if m.Entrypoint == "" {
		return badInput("manifest %s: entrypoint is required", where)
	}
	if m.MemoryBytes < 0 {
		return badInput("manifest %s: memory_bytes %d is negative", where, m.MemoryBytes)
	}
	if m.Batch.MaxSize < 0 || m.Batch.MaxWaitMS < 0 {
		return badInput("manifest %s: batch max_size and max_wait_ms must be >= 0", where)
	}
	if m.MinReplicas < 0 || m.MaxReplicas < 0 {
		return badInput("manifest %s: min_replicas and max_replicas must be >= 0", where)
	}
	if m.MaxReplicas > 0 && m.MinReplicas > m.MaxReplicas {
		return badInput("manifest %s: min_replicas %d is above max_replicas %d", where, m.MinReplicas, m.MaxReplicas)
	}
	seen := make(map[string]struct{}, len(m.Files))
	for i, f := range m.Files {
		if err := ValidPath(f.Path); err != nil {
			return fmt.Errorf("manifest %s: files[%d].path: %w", where, i, err)
		}
		if _, dup := seen[f.Path]; dup {
			return badInput("manifest %s: files[%d].path %q: duplicate", where, i, f.Path)
		}
		seen[f.Path] = struct{}{}
		if f.Size < 0 {
			return badInput("manifest %s: files[%d] %s: size %d is negative", where, i, f.Path, f.Size)
		}
		if !validSHA256(f.SHA256) {
			return badInput("manifest %s: files[%d] %s: sha256 %q is not 64 lowercase hex digits", where, i, f.Path, f.SHA256)
		}
	}
	if m.Runtime != GoRuntimeName {
		if _, ok := seen[m.Entrypoint]; !ok {
			return badInput("manifest %s: entrypoint %q is not one of the files", where, m.Entrypoint)
		}
	}
	if m.Reference != "" {
		if _, ok := seen[m.Reference]; !ok {
			return badInput("manifest %s: reference %q is not one of the files", where, m.Reference)
		}
	}
	if mc, ok := rt.(ManifestChecker); ok {
		if err := mc.CheckManifest(m); err != nil {
			return fmt.Errorf("manifest %s: runtime %s: %w", where, m.Runtime, err)
		}
	}
	return nil
}

// Key is the cache key of a manifest: "id@version".
func (m *Manifest) Key() string { return m.ID + "@" + m.Version }

// FilesSize is the sum of the sizes of the manifest's files.
func (m *Manifest) FilesSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// File returns the manifest's file entry for path.
func (m *Manifest) File(path string) (File, bool) {
	for _, f := range m.Files {
		if f.Path == path {
			return f, true
		}
	}
	return File{}, false
}

// Clone returns a deep copy of m.
func (m *Manifest) Clone() *Manifest {
	c := *m
	c.Files = append([]File(nil), m.Files...)
	if m.Quality != nil {
		q := *m.Quality
		c.Quality = &q
	}
	if m.Options != nil {
		c.Options = make(map[string]string, len(m.Options))
		for k, v := range m.Options {
			c.Options[k] = v
		}
	}
	return &c
}

// EncodeManifest renders m as indented JSON with a final newline, as
// manifest.json files are written.
func EncodeManifest(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
