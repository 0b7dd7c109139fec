"""The worker loop: reads WorkerRequest frames, answers WorkerResponse frames.

One request at a time, in order: the Go supervisor pipelines requests (the
pipe holds the next batch while this one runs) and matches answers by id.
A model that raises gets an error answer, never a dead worker.
"""

import gc
import importlib
import io
import json
import os
import signal
import sys
import time
import traceback

try:
    from manta_worker import wire
except ImportError:  # no python3-protobuf: main reports it, with what else is missing
    wire = None

PROTOCOL = 1

# Debian package of each Python package the worker may import.
_DEBIAN = {
    "numpy": "python3-numpy",
    "sklearn": "python3-sklearn",
    "joblib": "python3-joblib",
    "xgboost": "python3-xgboost",
    "google.protobuf": "python3-protobuf",
}

# Exceptions that mean "the input was wrong" rather than "the model broke".
BAD_INPUT_TYPES = (ValueError, TypeError, KeyError)

_MAX_MESSAGE = 4096

try:
    _PAGE = os.sysconf("SC_PAGE_SIZE")
except (ValueError, OSError, AttributeError):
    _PAGE = 4096


def log(msg):
    sys.stderr.write("manta_worker[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def rss():
    """Resident set size of this process in bytes."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def type_name(e):
    t = type(e)
    mod = getattr(t, "__module__", "builtins")
    if mod in ("builtins", "__main__") or mod.startswith("manta_model_"):
        return t.__qualname__
    return "%s.%s" % (mod, t.__qualname__)


def message_of(e):
    try:
        msg = str(e)
    except Exception:  # noqa: BLE001 - a broken __str__ must not kill the worker
        msg = "<unprintable %s>" % type(e).__name__
    if len(msg) > _MAX_MESSAGE:
        msg = msg[:_MAX_MESSAGE] + "..."
    return msg


def error_of(e, code=None):
    """Encodes an exception as a WorkerError."""
    if code is None:
        code = wire.BAD_INPUT if isinstance(e, BAD_INPUT_TYPES) else wire.INTERNAL
    if code == wire.INTERNAL:
        log("".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip())
    return wire.error(code, type_name(e), message_of(e))


def check_imports(required):
    """Imports the required packages; returns (versions, error message or None)."""
    versions, missing = {}, []
    for name in required:
        try:
            mod = importlib.import_module(name)
            versions[name] = str(getattr(mod, "__version__", ""))
        except BaseException as e:  # noqa: BLE001 - a shadowing module may raise anything
            missing.append((name, "%s: %s" % (type(e).__name__, message_of(e))))
    if not missing:
        return versions, None
    debs = " ".join(_DEBIAN.get(n, "python3-" + n) for n, _ in missing)
    msg = "Python %s at %s cannot import required packages: %s; install them (Debian: apt-get install %s, or `make setup`) or set MANTA_PYTHON to an interpreter that has them" % (
        sys.version.split()[0],
        sys.executable,
        "; ".join("%s (%s)" % m for m in missing),
        debs,
    )
    return versions, msg


def preload(modules):
    """Imports modules most models need, so that their memory is the
    worker's, not charged to the first model that imports them."""
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException as e:  # noqa: BLE001 - optional
            log("preload %s: %s: %s" % (name, type(e).__name__, message_of(e)))


# ---------------------------------------------------------------- loaders

FORMATS = ("sklearn-joblib", "python-class", "xgboost")


def infer_format(entrypoint):
    if ":" in entrypoint and entrypoint.split(":", 1)[0].endswith(".py"):
        return "python-class"
    low = entrypoint.lower()
    if low.endswith((".joblib", ".pkl", ".pickle")):
        return "sklearn-joblib"
    if low.endswith((".json", ".ubj", ".xgb", ".model", ".bst")):
        return "xgboost"
    return ""


def truthy(v):
    return str(v).strip().lower() in ("1", "true", "yes", "on")


class Model:
    """One loaded model: what to call, and what it has done."""

    def __init__(self, req):
        self.handle = req.handle
        self.model_id = req.model_id
        self.version = req.version
        self.options = dict(req.options)
        self.obj = None
        self.module = None
        self.input_kind = wire.INPUT_FEATURES
        self.predict = None  # f(X or inputs) -> predictions
        self.proba = None  # f(X) -> [rows, classes], when asked for
        self.n_features = 0
        self.load_nanos = 0
        self.memory = 0
        self.batches = 0
        self.rows = 0
        self.errors = 0


def _load_joblib(m, path):
    import joblib

    mmap = "r" if truthy(m.options.get("mmap", "")) else None
    obj = joblib.load(path, mmap_mode=mmap)
    if not callable(getattr(obj, "predict", None)):
        raise TypeError("%s holds a %s, which has no predict method" % (os.path.basename(path), type(obj).__name__))
    m.obj = obj
    m.predict = obj.predict
    if truthy(m.options.get("predict_proba", "")):
        if not callable(getattr(obj, "predict_proba", None)):
            raise TypeError("manifest asks for predict_proba but %s has none" % type(obj).__name__)
        m.proba = obj.predict_proba
    m.n_features = int(getattr(obj, "n_features_in_", 0) or 0)


def _load_xgboost(m, path):
    low = path.lower()
    if low.endswith((".joblib", ".pkl", ".pickle")):
        import xgboost  # noqa: F401 - a clear ImportError before unpickling

        _load_joblib(m, path)
        return
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(path)
    m.obj = booster
    m.predict = lambda X: booster.predict(xgboost.DMatrix(X))
    m.n_features = int(booster.num_features())


def _load_python_class(m, model_dir, entrypoint):
    import importlib.util

    path, sep, cls_name = entrypoint.rpartition(":")
    if not sep or not path.endswith(".py") or not cls_name:
        raise ValueError("python-class entrypoint must be module.py:ClassName, got %r" % entrypoint)
    full = os.path.join(model_dir, path)
    modname = "manta_model_%d" % m.handle
    spec = importlib.util.spec_from_file_location(modname, full)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import %s" % full)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    m.module = modname
    # The model's directory is importable while its module runs, so it can
    # import helper modules shipped beside it.
    sys.path.insert(0, model_dir)
    try:
        spec.loader.exec_module(mod)
    finally:
        try:
            sys.path.remove(model_dir)
        except ValueError:
            pass
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise AttributeError("%s has no class %s" % (path, cls_name))
    obj = cls(model_dir)
    if not callable(getattr(obj, "predict", None)):
        raise TypeError("%s has no predict method" % cls_name)
    m.obj = obj
    m.predict = obj.predict
    if getattr(obj, "manta_input", "json") == "features":
        m.input_kind = wire.INPUT_FEATURES
        if callable(getattr(obj, "predict_proba", None)) and truthy(m.options.get("predict_proba", "")):
            m.proba = obj.predict_proba
        m.n_features = int(getattr(obj, "n_features_in_", 0) or 0)
    else:
        m.input_kind = wire.INPUT_RAW


# ------------------------------------------------------------ predictions

def _tensor(np, a, n):
    """Encodes a prediction array as a Tensor, or None if not numeric."""
    a = np.asarray(a)
    if a.ndim == 0 or a.shape[0] != n:
        raise RuntimeError("model returned %s predictions for %d rows" % (a.shape[0] if a.ndim else "scalar", n))
    k = a.dtype.kind
    if k == "f":
        a = np.ascontiguousarray(a, dtype="<f8")
        return wire.tensor(wire.DTYPE_FLOAT64, a.shape, a.tobytes())
    if k in "iu":
        a = np.ascontiguousarray(a, dtype="<i8")
        return wire.tensor(wire.DTYPE_INT64, a.shape, a.tobytes())
    return None


def _json_default(o):
    # numpy scalars and arrays inside a model's output
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError("%s is not JSON serializable" % type(o).__name__)


def _json_row(v):
    if hasattr(v, "tolist"):
        v = v.tolist()
    return json.dumps(v, separators=(",", ":"), allow_nan=False, default=_json_default).encode()


class Worker:
    def __init__(self, versions, import_error):
        self.versions = versions
        self.import_error = import_error
        self.models = {}
        self._np = None

    @property
    def np(self):
        if self._np is None:
            import numpy

            self._np = numpy
        return self._np

    # Each handler returns the encoded WorkerResponse.

    def handle(self, rid, kind, req):
        try:
            h = getattr(self, "do_" + kind, None) if kind else None
            if h is None:
                return wire.response(rid, wire.error(wire.INTERNAL, "ProtocolError", "unknown request kind"))
            return h(rid, req)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - the worker must survive its models
            return wire.response(rid, error_of(e, wire.INTERNAL))

    def do_ping(self, rid, _req):
        if self.import_error:
            return wire.response(rid, wire.error(wire.LOAD_FAILED, "ImportError", self.import_error))
        pong = wire.pong(os.getpid(), sys.version.split()[0] + " " + sys.executable, self.versions, rss(), PROTOCOL)
        return wire.response(rid, kind="pong", body=pong)

    def do_shutdown(self, rid, _req):
        return wire.response(rid)

    def do_stats(self, rid, _req):
        ms = [wire.model_stats(m.handle, m.model_id, m.version, m.load_nanos, m.memory, m.batches, m.rows, m.errors)
              for m in self.models.values()]
        return wire.response(rid, kind="stats", body=wire.stats(os.getpid(), rss(), ms))

    def do_unload(self, rid, req):
        m = self.models.pop(req.handle, None)
        if m is not None:
            if m.module:
                sys.modules.pop(m.module, None)
            del m
            gc.collect()
        return wire.response(rid)

    def do_load(self, rid, req):
        if req.handle in self.models:
            return wire.response(rid, wire.error(wire.INTERNAL, "ProtocolError", "handle %d already loaded" % req.handle))
        m = Model(req)
        fmt = req.format or infer_format(req.entrypoint)
        gc.collect()
        before = rss()
        t0 = time.perf_counter_ns()
        try:
            if fmt not in FORMATS:
                raise ValueError("unknown python model format %r (known: %s)" % (req.format or req.entrypoint, ", ".join(FORMATS)))
            if fmt == "python-class":
                _load_python_class(m, req.dir, req.entrypoint)
            else:
                path = os.path.join(req.dir, req.entrypoint)
                if fmt == "xgboost":
                    _load_xgboost(m, path)
                else:
                    _load_joblib(m, path)
        except (Exception, SystemExit) as e:  # noqa: BLE001
            if m.module:
                sys.modules.pop(m.module, None)
            log("load %s@%s failed: %s: %s" % (m.model_id, m.version, type_name(e), message_of(e)))
            return wire.response(rid, wire.error(wire.LOAD_FAILED, type_name(e), message_of(e)))
        m.load_nanos = time.perf_counter_ns() - t0
        gc.collect()
        after = rss()
        m.memory = max(after - before, 0)
        self.models[m.handle] = m
        res = wire.load_result(before, after, m.load_nanos, m.n_features, m.input_kind,
                                      type_name(m.obj), m.proba is not None)
        return wire.response(rid, kind="load", body=res)

    def do_predict(self, rid, req):
        m = self.models.get(req.handle)
        if m is None:
            # Not the model's fault, nor the caller's: a predict racing its
            # unload, or a supervisor bug.
            return wire.response(rid, wire.error(wire.INTERNAL, "ProtocolError", "no model loaded under handle %d" % req.handle))
        m.batches += 1
        if m.input_kind == wire.INPUT_FEATURES:
            if not req.HasField("features"):
                return wire.response(rid, wire.error(wire.BAD_INPUT, "ProtocolError", "feature model called without features"))
            X = self._array(req.features)
            n = X.shape[0]
            m.rows += n
            try:
                body = self._predict_features(m, X)
            except (Exception, SystemExit) as e:  # noqa: BLE001
                if n == 1:
                    m.errors += 1
                    return wire.response(rid, error_of(e))
                try:
                    body = self._rowwise(m, n, lambda i: self._predict_features(m, X[i:i + 1], single=True), e)
                except (Exception, SystemExit) as e2:  # noqa: BLE001
                    return wire.response(rid, error_of(e2))
        else:
            inputs, cts = req.inputs, req.content_types
            n = len(inputs)
            m.rows += n
            rows = []
            for i, b in enumerate(inputs):
                ct = cts[i] if i < len(cts) else ""
                if ct in ("", "application/json") or ct.startswith("application/json;"):
                    try:
                        rows.append(json.loads(b))
                    except ValueError as e:
                        rows.append(e)
                else:
                    rows.append(b)
            try:
                if any(isinstance(r, Exception) for r in rows):
                    raise ValueError("invalid JSON input")
                body = self._predict_raw(m, rows)
            except (Exception, SystemExit) as e:  # noqa: BLE001
                if n == 1:
                    m.errors += 1
                    err = rows[0] if isinstance(rows[0], Exception) else e
                    return wire.response(rid, error_of(err))
                try:
                    body = self._rowwise(m, n, lambda i: self._predict_raw_row(m, rows[i]), e)
                except (Exception, SystemExit) as e2:  # noqa: BLE001
                    return wire.response(rid, error_of(e2))
        return wire.response(rid, kind="predict", body=body)

    def _array(self, t):
        np = self.np
        dt = {wire.DTYPE_FLOAT64: "<f8", wire.DTYPE_FLOAT32: "<f4", wire.DTYPE_INT64: "<i8"}.get(t.dtype)
        if dt is None:
            raise ValueError("unknown tensor dtype %d" % t.dtype)
        a = np.frombuffer(t.data, dtype=dt)
        return a.reshape(tuple(t.shape)) if t.shape else a

    def _predict_features(self, m, X, single=False):
        np = self.np
        n = X.shape[0]
        y = m.predict(X)
        proba = m.proba(X) if m.proba is not None else None
        if single:
            if len(y) != n:
                raise RuntimeError("model returned %d predictions for %d rows" % (len(y), n))
            return y, proba
        pt = _tensor(np, y, n)
        if pt is not None:
            prt = None
            if proba is not None:
                prt = _tensor(np, proba, n)
                if prt is None:
                    raise RuntimeError("predict_proba returned non-numeric values")
            return wire.predict_result(prediction=pt, probabilities=prt)
        # Non-numeric predictions (class labels as strings, ...): JSON rows.
        y = np.asarray(y)
        outs = []
        for i in range(n):
            doc = {"prediction": y[i].tolist() if hasattr(y[i], "tolist") else y[i]}
            if proba is not None:
                doc["probabilities"] = np.asarray(proba[i]).tolist()
            outs.append(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode())
        return wire.predict_result(outputs=outs)

    def _predict_raw(self, m, rows, single=False):
        out = m.predict(rows)
        try:
            out = list(out)
        except TypeError:
            raise RuntimeError("predict returned %s, not a list" % type(out).__name__) from None
        if len(out) != len(rows):
            raise RuntimeError("predict returned %d outputs for %d inputs" % (len(out), len(rows)))
        if single:
            return out[0], None
        return self._encode_raw(m, out)

    def _predict_raw_row(self, m, row):
        if isinstance(row, Exception):
            raise row
        return self._predict_raw(m, [row], single=True)

    def _encode_raw(self, m, out):
        outs, errs, any_err = [], [], False
        for o in out:
            if isinstance(o, BaseException):
                outs.append(b"")
                errs.append(error_of(o))
                any_err = True
                m.errors += 1
                continue
            try:
                outs.append(bytes(o) if isinstance(o, (bytes, bytearray)) else _json_row(o))
                errs.append(None)
            except (ValueError, TypeError) as e:
                outs.append(b"")
                errs.append(error_of(RuntimeError("output is not JSON: %s" % message_of(e)), wire.INTERNAL))
                any_err = True
                m.errors += 1
        return wire.predict_result(outputs=outs, row_errors=errs if any_err else None)

    def _rowwise(self, m, n, one, batch_err):
        """The batch raised: run it row by row, so one bad row fails alone."""
        np = self.np
        results, errs, failed, first = [], [], 0, batch_err
        for i in range(n):
            try:
                results.append(one(i))
                errs.append(None)
            except (Exception, SystemExit) as e:  # noqa: BLE001
                results.append(None)
                errs.append(error_of(e))
                if not failed:
                    first = e
                failed += 1
        m.errors += failed
        if failed == n:
            # Every row fails: the batch fails as a whole, with the error a
            # single request would have got.
            raise first
        outs = []
        for i, r in enumerate(results):
            if r is None:
                outs.append(b"")
                continue
            y, proba = r
            try:
                if m.input_kind == wire.INPUT_RAW:
                    if isinstance(y, BaseException):
                        outs.append(b"")
                        errs[i] = error_of(y)
                        continue
                    outs.append(bytes(y) if isinstance(y, (bytes, bytearray)) else _json_row(y))
                else:
                    v = np.asarray(y)[0]
                    doc = {"prediction": v.tolist() if hasattr(v, "tolist") else v}
                    if proba is not None:
                        doc["probabilities"] = np.asarray(proba)[0].tolist()
                    outs.append(json.dumps(doc, separators=(",", ":"), allow_nan=False).encode())
            except (ValueError, TypeError) as e:
                outs.append(b"")
                errs[i] = error_of(RuntimeError("output is not JSON: %s" % message_of(e)), wire.INTERNAL)
        return wire.predict_result(outputs=outs, row_errors=errs)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def main(fd_in, fd_out):
    # The supervisor owns shutdown: a Ctrl-C at the terminal must not kill
    # workers under it (it closes stdin or sends Shutdown instead).
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    required = [p for p in os.environ.get("MANTA_WORKER_REQUIRE", "numpy,sklearn,joblib").split(",") if p]
    max_frame = int(os.environ.get("MANTA_WORKER_MAX_FRAME", str(256 << 20)))
    if wire is None:
        # Without the protocol's messages no answer can be sent: say what
        # is missing on stderr (the supervisor's error quotes it) and exit.
        _, import_error = check_imports(required + ["google.protobuf"])
        log(import_error)
        return 3
    versions, import_error = check_imports(required)
    if import_error:
        log(import_error)
    else:
        preload([p for p in os.environ.get("MANTA_WORKER_PRELOAD", "").split(",") if p])
    w = Worker(versions, import_error)
    rin = io.open(fd_in, "rb", buffering=1 << 16)
    while True:
        try:
            body = wire.read_frame(rin, max_frame)
            if body is None:
                return 0
            rid, kind, req = wire.decode_request(body)
        except wire.DecodeError as e:
            log("protocol error, exiting: %s" % e)
            return 2
        out = w.handle(rid, kind, req)
        _write_all(fd_out, wire.frame(out))
        if kind == "shutdown":
            return 0
