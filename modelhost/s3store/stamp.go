package s3store

import (
	"context"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/manta-ml/manta/modelhost"
)

// VersionStamp is a fingerprint of model id's versions from one listing of
// its keys (a page per 1,000 keys, so one request for a model of a few
// versions): every version's manifest.json and LATEST, each with its ETag.
// It changes when a version becomes visible (its manifest lands last, so
// a half-pushed version changes nothing), when one is deleted, and when
// LATEST is rewritten. Version polling (actors.Host.PollVersions) asks
// it instead of resolving the version, which costs a read of LATEST, a
// stat of its manifest and, when the version moved, more. "" and an
// error both mean "check".
func (s *Store) VersionStamp(ctx context.Context, id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	var b strings.Builder
	opts := minio.ListObjectsOptions{Prefix: s.keys.model(id), Recursive: true}
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, opts) {
		if obj.Err != nil {
			return "", s.wrap(obj.Err, "list versions of %s", id)
		}
		if obj.Key == s.keys.latest(id) {
			b.WriteString("LATEST=" + obj.ETag + ";")
			continue
		}
		if p, ok := s.keys.parse(obj.Key); ok && p.ID == id && p.Path == manifestName {
			b.WriteString(p.Version + "=" + obj.ETag + ";")
		}
	}
	return b.String(), nil
}

var _ modelhost.VersionStamper = (*Store)(nil)
