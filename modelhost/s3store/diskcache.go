package s3store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/manta-ml/manta/modelhost"
)

// diskCache is the second-level cache of fetched versions on local disk:
//
//	<dir>/models/<id>/<version>/<files>   what Fetch returns (only artifacts)
//	<dir>/meta/<id>/<version>.json        verified marker per file; mtime = last use
//	<dir>/known/<id>/LATEST, <v>.json     last resolved LATEST and manifests,
//	                                      answered while the server is unreachable
//	<dir>/tmp/                            downloads in progress (emptied at start)
//
// A file is trusted without rehashing when its marker records the
// manifest's sha256 and size, the file still has the recorded size and
// modification time, and the marker was written since the machine booted
// (the file was written through the page cache, not fsynced: after a crash
// of the machine it is hashed again before use; after a crash of the
// process it is not). Anything else is rehashed or downloaded again.
//
// Versions are evicted least recently used first when the bytes held pass
// the budget, except versions being fetched (pinned). One member per
// directory: two processes sharing it would evict each other's files.
type diskCache struct {
	dir    string
	budget int64 // 0: unlimited
	boot   time.Time

	initOnce sync.Once
	initErr  error

	mu        sync.Mutex
	entries   map[string]*cacheEntry // "id/version"
	used      int64
	evictions int64
}

type cacheEntry struct {
	id, version string
	files       map[string]fileMark
	lastUse     time.Time
	pins        int
}

// fileMark is one file's verified marker.
type fileMark struct {
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256,omitempty"` // "" : on disk, never verified
	ModTimeNS  int64  `json:"mtime_ns"`
	VerifiedNS int64  `json:"verified_ns"`
}

func (e *cacheEntry) bytes() int64 {
	var n int64
	for _, f := range e.files {
		n += f.Size
	}
	return n
}

func newDiskCache(dir string, budget int64) *diskCache {
	return &diskCache{dir: dir, budget: budget, boot: bootTime(), entries: make(map[string]*cacheEntry)}
}

func (c *diskCache) versionDir(id, version string) string {
	return filepath.Join(c.dir, "models", id, version)
}
func (c *diskCache) metaPath(id, version string) string {
	return filepath.Join(c.dir, "meta", id, version+".json")
}
func (c *diskCache) tmpDir() string { return filepath.Join(c.dir, "tmp") }

// init creates the directories, removes leftovers of interrupted
// downloads, and rebuilds the index from disk (once).
func (c *diskCache) init() error {
	c.initOnce.Do(func() { c.initErr = c.load() })
	return c.initErr
}

func (c *diskCache) load() error {
	for _, d := range []string{"models", "meta", "known", "tmp"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return fmt.Errorf("s3store: disk cache: %w", err)
		}
	}
	if ents, err := os.ReadDir(c.tmpDir()); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(c.tmpDir(), e.Name()))
		}
	}
	ids, err := os.ReadDir(filepath.Join(c.dir, "models"))
	if err != nil {
		return fmt.Errorf("s3store: disk cache: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, idEnt := range ids {
		id := idEnt.Name()
		if checkID(id) != nil || !idEnt.IsDir() {
			continue
		}
		vers, _ := os.ReadDir(filepath.Join(c.dir, "models", id))
		for _, vEnt := range vers {
			v := vEnt.Name()
			if checkVersion(v) != nil || !vEnt.IsDir() {
				continue
			}
			e := &cacheEntry{id: id, version: v, files: make(map[string]fileMark)}
			marks := map[string]fileMark{}
			if b, err := os.ReadFile(c.metaPath(id, v)); err == nil {
				_ = json.Unmarshal(b, &marks)
			}
			if st, err := os.Stat(c.metaPath(id, v)); err == nil {
				e.lastUse = st.ModTime()
			}
			root := c.versionDir(id, v)
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return nil
				}
				rel, _ := filepath.Rel(root, p)
				rel = filepath.ToSlash(rel)
				info, err := d.Info()
				if err != nil {
					return nil
				}
				m, ok := marks[rel]
				if !ok || m.Size != info.Size() || m.ModTimeNS != info.ModTime().UnixNano() {
					m = fileMark{Size: info.Size()} // present, not trusted
				}
				e.files[rel] = m
				return nil
			})
			c.entries[id+"/"+v] = e
			c.used += e.bytes()
		}
	}
	return nil
}

// entry returns (creating) the entry of id/version; c.mu held.
func (c *diskCache) entry(id, version string) *cacheEntry {
	k := id + "/" + version
	e, ok := c.entries[k]
	if !ok {
		e = &cacheEntry{id: id, version: version, files: make(map[string]fileMark)}
		c.entries[k] = e
	}
	return e
}

func (c *diskCache) pin(id, version string) {
	c.mu.Lock()
	e := c.entry(id, version)
	e.pins++
	e.lastUse = time.Now()
	c.mu.Unlock()
}

func (c *diskCache) unpin(id, version string) {
	c.mu.Lock()
	if e, ok := c.entries[id+"/"+version]; ok {
		e.pins--
		if e.pins == 0 && len(e.files) == 0 {
			delete(c.entries, id+"/"+version)
		}
	}
	c.mu.Unlock()
}

// trusted reports whether the file at p may be used without hashing it.
func (c *diskCache) trusted(id, version string, f modelhost.File, p string) bool {
	c.mu.Lock()
	e, ok := c.entries[id+"/"+version]
	var m fileMark
	if ok {
		m, ok = e.files[f.Path]
	}
	c.mu.Unlock()
	if !ok || m.SHA256 != f.SHA256 || m.Size != f.Size || m.VerifiedNS < c.boot.UnixNano() {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() == m.Size && st.ModTime().UnixNano() == m.ModTimeNS
}

// record marks the file at p verified against f and persists the marker.
func (c *diskCache) record(id, version string, f modelhost.File, p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(id, version)
	c.used -= e.files[f.Path].Size
	e.files[f.Path] = fileMark{Size: st.Size(), SHA256: f.SHA256, ModTimeNS: st.ModTime().UnixNano(), VerifiedNS: time.Now().UnixNano()}
	c.used += st.Size()
	return c.writeMeta(e)
}

// forgetFile drops a file that failed verification; c.mu not held.
func (c *diskCache) forgetFile(id, version, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id+"/"+version]; ok {
		if m, ok := e.files[path]; ok {
			c.used -= m.Size
			delete(e.files, path)
			_ = c.writeMeta(e)
		}
	}
}

// writeMeta persists e's markers atomically; c.mu held.
func (c *diskCache) writeMeta(e *cacheEntry) error {
	marks := make(map[string]fileMark, len(e.files))
	for p, m := range e.files {
		if m.SHA256 != "" {
			marks[p] = m
		}
	}
	b, err := json.Marshal(marks)
	if err != nil {
		return err
	}
	return writeAtomic(c.metaPath(e.id, e.version), b)
}

// touch records a use of id/version (the meta file's mtime persists it).
func (c *diskCache) touch(id, version string) {
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.entries[id+"/"+version]; ok {
		e.lastUse = now
	}
	c.mu.Unlock()
	_ = os.Chtimes(c.metaPath(id, version), now, now)
}

// evict removes least recently used, unpinned versions other than keep
// until the bytes held fit the budget. A single version larger than the
// budget stays (it is in use); the budget is then exceeded by it alone.
func (c *diskCache) evict(keepID, keepVersion string) {
	if c.budget <= 0 {
		return
	}
	keep := keepID + "/" + keepVersion
	for {
		c.mu.Lock()
		if c.used <= c.budget {
			c.mu.Unlock()
			return
		}
		var victim *cacheEntry
		var vk string
		for k, e := range c.entries {
			if k == keep || e.pins > 0 || len(e.files) == 0 {
				continue
			}
			if victim == nil || e.lastUse.Before(victim.lastUse) {
				victim, vk = e, k
			}
		}
		if victim == nil {
			c.mu.Unlock()
			return
		}
		c.used -= victim.bytes()
		delete(c.entries, vk)
		c.evictions++
		// Removed under the lock so a concurrent Fetch of the victim
		// cannot interleave with the removal; only ever small metadata
		// and unlinks.
		os.Remove(c.metaPath(victim.id, victim.version))
		os.RemoveAll(c.versionDir(victim.id, victim.version))
		c.mu.Unlock()
	}
}

func (c *diskCache) usage() (used, evictions int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.evictions
}

// rememberLatest, knownLatest, rememberManifest and knownManifest keep
// what was last read from the store, for answering during an outage.
func (c *diskCache) knownDir(id string) string { return filepath.Join(c.dir, "known", id) }

func (c *diskCache) rememberLatest(id, v string) {
	if c.init() != nil {
		return
	}
	p := filepath.Join(c.knownDir(id), latestName)
	if b, err := os.ReadFile(p); err == nil && string(b) == v {
		return
	}
	_ = writeAtomic(p, []byte(v))
}

func (c *diskCache) forgetLatest(id string) {
	os.Remove(filepath.Join(c.knownDir(id), latestName))
}

func (c *diskCache) knownLatest(id string) (string, bool) {
	if c.init() != nil {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(c.knownDir(id), latestName))
	if err != nil || checkVersion(string(b)) != nil {
		return "", false
	}
	return string(b), true
}

func (c *diskCache) rememberManifest(id, v string, data []byte) {
	if c.init() != nil {
		return
	}
	p := filepath.Join(c.knownDir(id), v+".json")
	if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, data) {
		return
	}
	_ = writeAtomic(p, data)
}

func (c *diskCache) knownManifest(id, v string) (*modelhost.Manifest, bool) {
	if c.init() != nil {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(c.knownDir(id), v+".json"))
	if err != nil {
		return nil, false
	}
	m, err := parseManifest(b, id, v)
	return m, err == nil
}

// writeAtomic writes a small file through a temporary name and a rename.
func writeAtomic(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// bootTime is when the machine booted (Linux /proc/stat btime). Where it
// cannot be read, it is "now": every marker from before this process is
// then distrusted and its file rehashed once, which is safe.
func bootTime() time.Time {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return time.Now()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil {
				// btime has one-second resolution: round up so a marker
				// written in the boot second is not trusted by mistake.
				return time.Unix(n+1, 0)
			}
		}
	}
	return time.Now()
}
