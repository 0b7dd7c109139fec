// Package s3store is Manta's model store in an S3 bucket (MinIO or any S3
// server), with the layout of docs/ARCHITECTURE.md §9 under an
// optional prefix:
//
//	<prefix>/<model_id>/<version>/manifest.json
//	<prefix>/<model_id>/<version>/<artifact files>
//	<prefix>/<model_id>/LATEST
//
// A *Store implements modelhost.Store and modelhost.Fetcher. Importing the
// package registers the "s3" scheme with modelhost.OpenStore:
//
//	import _ "github.com/manta-ml/manta/modelhost/s3store"
//	store, err := modelhost.OpenStore(ctx, "s3://models/prod?endpoint=127.0.0.1:9000&secure=false")
//
// or, with the concrete type (for WebhookHandler, Stats, EnsureBucket):
//
//	s, err := s3store.OpenURL(ctx, "s3://models/prod?endpoint=127.0.0.1:9000&secure=false&cache_budget=20GiB")
//
// Credentials come from Config fields or the environment
// (MANTA_S3_ACCESS_KEY/MANTA_S3_SECRET_KEY, AWS_ACCESS_KEY_ID/
// AWS_SECRET_ACCESS_KEY, MINIO_ROOT_USER/MINIO_ROOT_PASSWORD; each may be
// given as X_FILE naming a file, e.g. a Kubernetes secret mount), never from
// the URL, and are never printed: not by Config's String, not in errors.
// Every model id, version and file path is validated (modelhost.ValidID,
// ValidVersion, ValidPath) before a key is built from it, so a bad one is
// refused with api.ErrBadInput before any request.
//
// # Fetch and the disk cache
//
// Fetch makes a version's files available in a local directory, every file
// verified against the manifest's sha256. Downloads stream to a temporary
// file while being hashed in the same pass (large files with parallel
// ranged GETs, hashed in order as the bytes arrive), and are renamed into
// the cache only once verified; a mismatch deletes the temporary file and
// fails with a *modelhost.VerifyError naming the file (api.ErrLoadFailed).
// Concurrent fetches of one file share one download. The disk cache has
// its own byte budget (least recently used versions go first), survives a
// restart (a verified marker per file; files without a trusted marker are
// rehashed, not downloaded), and serves models while the server is down:
// Latest and Manifest then answer what was last read (Stats.Offline counts
// it), and a file that is not on disk fails fast with an error wrapping
// api.ErrLoadFailed and ErrUnreachable.
//
// # Uploads
//
// Put uploads large files as parallel multipart uploads; modelhost.Push
// writes manifest.json last, so a version is never visible half-pushed. A
// context from WithProgress receives the bytes sent, rate and ETA of each
// file (a modelhost.Progress from a modelhost.ProgressMeter, the project's
// one progress reporter), for a progress bar.
//
// # Change notifications
//
// MinIO's streaming ListenBucketNotification does not deliver on the
// server build used here; its webhook target does. Point the server's
// webhook target at a member (MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>=on,
// MINIO_NOTIFY_WEBHOOK_ENDPOINT_<ID>=http://member:port/v1/hooks/minio),
// subscribe the bucket once with SubscribeWebhook(ctx,
// "arn:minio:sqs::<ID>:webhook"), and mount WebhookHandler on the member's
// HTTP server: it calls back with the model id whenever a manifest.json or
// LATEST is created or removed. Polling stays the fallback, and costs one
// listing per active model and interval: the store is a
// modelhost.VersionStamper (VersionStamp: every manifest's and LATEST's
// ETag from one listing of the model's keys), so a model whose stamp did
// not move is not resolved again.
package s3store
