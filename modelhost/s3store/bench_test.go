package s3store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/manta-ml/manta/internal/bytesize"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// benchSize is the synthetic artifact's size: 64 MiB, or 1 GiB with
// MANTA_BENCH_BIG=1, or MANTA_BENCH_SIZE (e.g. 256MiB).
func benchSize() int64 {
	if v := os.Getenv("MANTA_BENCH_SIZE"); v != "" {
		if n, err := bytesize.Parse(v); err == nil && n > 0 {
			return n
		}
	}
	if os.Getenv("MANTA_BENCH_BIG") != "" {
		return 1 << 30
	}
	return 64 << 20
}

// benchModel pushes one artifact of size pseudo-random bytes, generated
// while uploading, and returns its manifest.
func benchModel(b *testing.B, s *Store, size int64) *modelhost.Manifest {
	b.Helper()
	ctx := context.Background()
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(mrand.NewChaCha8([32]byte{42}), size), h)
	if err := s.Put(ctx, "bench", "1", "weights.bin", src, size); err != nil {
		b.Fatal(err)
	}
	m := &modelhost.Manifest{ID: "bench", Version: "1", Runtime: testRuntime, Entrypoint: "weights.bin",
		Files: []modelhost.File{{Path: "weights.bin", Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}}}
	body, _ := json.Marshal(m)
	if err := s.Put(ctx, "bench", "1", manifestName, strings.NewReader(string(body)), int64(len(body))); err != nil {
		b.Fatal(err)
	}
	return m
}

func benchStore(b *testing.B) (*Store, *modelhost.Manifest) {
	mc := testenv.StartMinIO(b)
	// Production defaults for the fetch path (threshold, parts, workers).
	s := newStore(b, mc, func(c *Config) {
		def := DefaultConfig()
		c.ParallelThreshold, c.PartSize, c.Workers = def.ParallelThreshold, def.PartSize, def.Workers
	})
	return s, benchModel(b, s, benchSize())
}

// BenchmarkColdFetch: a cold Fetch (download to the disk cache, sha256 in
// the same pass, verified, renamed) against a raw minio-go GetObject of the
// same object copied to io.Discard, alternating in the same run. ratio is
// the median over iterations of raw time / fetch time (goal >= 0.8; the
// median because the machine is shared and single pairs vary a lot);
// ratio-total is total raw time / total fetch time. write-MiB/s is how
// fast this machine writes the same bytes from memory to a new file (not
// part of the ratio): the disk cache's floor.
func BenchmarkColdFetch(b *testing.B) {
	s, m := benchStore(b)
	ctx := context.Background()
	key := s.keys.file("bench", "1", "weights.bin")
	size := m.Files[0].Size
	var raw, fetch, write time.Duration
	var ratios []float64
	for b.Loop() {
		r0, f0 := raw, fetch
		t0 := time.Now()
		obj, err := s.Client().GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, obj); err != nil || n != size {
			b.Fatalf("raw get: %d bytes, %v", n, err)
		}
		obj.Close()
		raw += time.Since(t0)

		b.StopTimer()
		dir := b.TempDir()
		s.cache = newDiskCache(dir, 0) // cold: an empty disk cache
		b.StartTimer()
		t1 := time.Now()
		if _, err := s.Fetch(ctx, m); err != nil {
			b.Fatal(err)
		}
		fetch += time.Since(t1)
		ratios = append(ratios, (raw-r0).Seconds()/(fetch-f0).Seconds())
		if os.Getenv("MANTA_BENCH_TRACE") != "" {
			b.Logf("raw %v fetch %v", raw-r0, fetch-f0)
		}
		b.StopTimer()
		write += writeFloor(b, dir, size)
		os.RemoveAll(dir) // keep the disk (and page cache) from filling up
		b.StartTimer()
	}
	n := float64(b.N)
	mb := float64(size) / (1 << 20)
	b.ReportMetric(mb/(raw.Seconds()/n), "raw-MiB/s")
	b.ReportMetric(mb/(fetch.Seconds()/n), "fetch-MiB/s")
	b.ReportMetric(mb/(write.Seconds()/n), "write-MiB/s")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(raw.Seconds()/fetch.Seconds(), "ratio-total")
}

// writeFloor times writing size bytes from memory to a new file in dir,
// as Fetch must (the part of a cold fetch that a GET to io.Discard does
// not do), to show how much of the gap is the disk cache itself.
func writeFloor(b *testing.B, dir string, size int64) time.Duration {
	buf := make([]byte, 16<<20)
	f, err := os.CreateTemp(dir, "floor-*")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	t0 := time.Now()
	preallocate(f, size)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0)
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// BenchmarkReload: reading a model from the disk cache into memory through
// Fetch (a hit: stat + marker, no hashing) against a plain read of the same
// file; and, for reference, a reload whose marker is not trusted (after a
// reboot: the file is rehashed). ratio is the median over iterations of
// plain time / reload time.
func BenchmarkReload(b *testing.B) {
	s, m := benchStore(b)
	ctx := context.Background()
	dir, err := s.Fetch(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "weights.bin")
	buf := make([]byte, m.Files[0].Size)
	readAll := func() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(f, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	readAll() // page cache warm for both
	var plain, reload, rehash time.Duration
	var ratios []float64
	for b.Loop() {
		p0, r0 := plain, reload
		t0 := time.Now()
		readAll()
		plain += time.Since(t0)

		t1 := time.Now()
		if _, err := s.Fetch(ctx, m); err != nil {
			b.Fatal(err)
		}
		readAll()
		reload += time.Since(t1)
		ratios = append(ratios, (plain-p0).Seconds()/(reload-r0).Seconds())

		b.StopTimer()
		s2 := reopen(b, s)
		s2.cache.boot = time.Now().Add(time.Hour) // every marker predates "boot"
		b.StartTimer()
		t2 := time.Now()
		if _, err := s2.Fetch(ctx, m); err != nil {
			b.Fatal(err)
		}
		readAll()
		rehash += time.Since(t2)
	}
	if st := s.Stats(); st.Downloads != 1 {
		b.Fatalf("reload downloaded: %+v", st)
	}
	n := float64(b.N)
	mb := float64(m.Files[0].Size) / (1 << 20)
	b.ReportMetric(mb/(plain.Seconds()/n), "plain-MiB/s")
	b.ReportMetric(mb/(reload.Seconds()/n), "reload-MiB/s")
	b.ReportMetric(mb/(rehash.Seconds()/n), "rehash-reload-MiB/s")
	b.ReportMetric(median(ratios), "ratio")
}
