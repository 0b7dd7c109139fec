// Package pyworker serves Python models (sklearn, xgboost, plain Python
// classes) to Manta from a few supervised worker processes, loading each
// model once per member however many actors use it.
//
// Importing the package registers the modelhost runtime "python", like a
// database/sql driver:
//
//	import _ "github.com/manta-ml/manta/pyworker"
//
// A manifest then names it:
//
//	{"id": "eta-eu-road", "runtime": "python", "format": "sklearn-joblib",
//	 "entrypoint": "model.joblib", "options": {"predict_proba": "false"}}
//
// # Formats
//
//   - sklearn-joblib: a joblib (or pickle) file of an object with predict.
//     Each request is {"features": [x1, ..., xn]}; a batch becomes one numpy
//     matrix (sent as raw little-endian float64, no per-row Python loop) and
//     each row's answer is {"prediction": y}, plus "probabilities": [...]
//     when the manifest's options say "predict_proba": "true". Option
//     "mmap": "true" memory-maps the file's arrays (joblib mmap_mode="r").
//   - xgboost: a Booster file (.json, .ubj, ...) or a pickled sklearn-API
//     model, same requests and answers. Needs Debian's python3-xgboost.
//   - python-class: entrypoint "module.py:ClassName"; the class is built as
//     ClassName(model_dir) and called as predict(inputs: list) -> list, with
//     each request's JSON decoded (other content types arrive as bytes) and
//     each answer JSON-encoded (bytes pass through). An exception instance in
//     the returned list fails that row alone. A class with the attribute
//     manta_input = "features" gets the feature matrix instead, like
//     sklearn-joblib.
//
// An empty format is inferred from the entrypoint's extension.
//
// # Processes
//
// A Supervisor runs W worker processes (default: one per CPU), each
// `python3 -m manta_worker` speaking length-prefixed api.WorkerRequest /
// api.WorkerResponse frames on its stdin/stdout (api/worker.proto). The
// Python package is embedded in the Go binary and written to the user's
// cache directory at first use. The worker moves sys.stdout (and fd 1) to
// stderr before any model code runs, so a model's prints end up in the
// member's log, never in the protocol.
//
// Each model lives in exactly one worker: the one holding the least model
// memory when it is first loaded. Loads of the same id@version share it
// (reference counted; N concurrent Loads cause one load) and the last Close
// unloads it. MemoryBytes is the worker's RSS growth over the load.
// Predict calls are pipelined: several batches may be queued in a worker,
// answers are matched by id.
//
// # The protocol's Python side
//
// The worker's messages are protoc's generated code (manta_worker/
// manta_pb2.py and worker_pb2.py, from the api/*.proto the Go side is
// generated from; `make proto` writes both, TestPythonProtoGenerated fails
// when they lag the .proto files, TestWireCodec runs Go against Python both
// ways), run by Debian's python3-protobuf. It replaced a hand-written
// codec because it is faster where it matters, a batch's frame. Measured
// with /usr/bin/python3 3.11.2 and python3-protobuf 4.21.12 (its C++
// implementation), best of 7 runs of 20,000 frames, decoding the
// WorkerRequest into the model's input and encoding and framing the
// WorkerResponse, with byte-identical frames both ways:
//
//	batch frame                                        hand-written  generated
//	64 rows x 20 float64 features (-> 64 predictions      11.1-11.5     8.7-9.1 us
//	  + 64x2 probabilities)
//	64 JSON inputs of a python-class model                 174-184     140-144 us
//	  (json.loads of each -> 64 JSON outputs)
//
// Building response bodies in place matters: with a CopyFrom of the
// batch's result into the response the generated code was slower (13.9 us
// for the feature frame). protobuf's pure-Python implementation is slower
// than the hand-written codec (57 us for the feature frame), so the worker
// relies on the C++ one Debian ships. A worker without python3-protobuf
// exits at start naming it (and any other missing package) on stderr,
// which the supervisor's error quotes.
//
// # Failures
//
//   - A model that raises: ValueError, TypeError and KeyError become errors
//     wrapping api.ErrBadInput, other exceptions api.ErrInternal; both are
//     *PythonError naming the exception's type and message. When a batch
//     raises, the worker retries its rows one by one so that a bad row fails
//     alone. The worker stays up.
//   - A worker that dies (crash, OOM kill, kill -9): the requests in flight
//     on it fail at once with errors wrapping api.ErrInternal; the worker is
//     restarted with a jittered backoff (Config.RestartBackoff, doubling) and its
//     models reloaded; requests arriving meanwhile wait for the reload.
//   - A worker stuck on one request past Config.CallTimeout is killed and
//     treated the same.
//   - A worker that cannot import a required package (Config.Require:
//     numpy, sklearn, joblib; and protobuf, which the protocol needs) fails
//     to start with one error naming every missing package and the Debian
//     packages that provide them.
//
// The interpreter is Config.Python, else $MANTA_PYTHON, else
// /usr/bin/python3 when it exists (Debian's, with numpy and sklearn from
// apt), else python3.
//
// # Example
//
//	s, err := pyworker.New(pyworker.Config{Workers: 2})
//	if err != nil { ... }
//	defer s.Close()
//	m, err := s.Load(ctx, manifest, dir)
//	if err != nil { ... }
//	defer m.Close()
//	out, err := m.Predict(ctx, []modelhost.Input{{Payload: []byte(`{"features":[412.5,3,1,0,0.2]}`)}})
package pyworker
