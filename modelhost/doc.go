// Package modelhost turns a model id into a loaded, callable model within a
// memory budget. It knows nothing of actors and is tested without a cluster.
//
// It holds:
//
//   - the manifest (ParseManifest, Manifest.Validate, ValidID, ValidVersion);
//   - the Store contract and DirStore, a local directory with the layout
//     <root>/<id>/<version>/{manifest.json,files} and <root>/<id>/LATEST,
//     and OpenStore, which opens a directory, a file:// URL or any scheme
//     registered with RegisterStore (s3:// by modelhost/s3store);
//   - Push, which publishes a directory as the next version of a model
//     (artifacts first, manifest last), and FetchTo/VerifyFile, which copy
//     and check files against their sha256;
//   - the Runtime registry (RegisterRuntime, like database/sql drivers) with
//     two built-ins: "linear" (JSON weights, see LinearSpec) and "go"
//     (RegisterFunc: Go code that builds a Model in-process);
//   - Cache, the member's memory-budgeted set of loaded models, with
//     single-flight loading, pinning by Lease and GDSF eviction (LRU on request).
//
// Every artifact is verified against its manifest sha256 before a runtime
// sees it. Errors wrap the sentinels of package api (api.ErrNotFound,
// api.ErrBadInput, api.ErrLoadFailed, api.ErrTooLarge, api.ErrOverloaded),
// so callers classify them with errors.Is or api.CodeOf.
//
// A member's use, in short:
//
//	store, err := modelhost.OpenStore(ctx, "./models")
//	cache, err := modelhost.NewCache(store, modelhost.CacheConfig{BudgetBytes: 4 << 30})
//	version, err := store.Latest(ctx, "fraud-lr")
//	m, err := store.Manifest(ctx, "fraud-lr", version)
//	lease, err := cache.Acquire(ctx, m) // loads once, however many callers
//	defer lease.Release()
//	out, err := lease.Model().Predict(ctx, []modelhost.Input{{Payload: []byte(`{"features":[1,2,3]}`)}})
package modelhost
