"""Hand-written protobuf codec for api/worker.proto (stdlib only).

Only the messages of the worker protocol are covered: WorkerRequest is
decoded, WorkerResponse is encoded. Field numbers must match
api/worker.proto; unknown fields are skipped, so the Go side may add
fields without breaking an older worker. The Go tests (wire_test.go) run
this codec against the generated Go code.

Decoded messages are plain dicts; bytes fields are memoryviews into the
frame (no copy), strings are str.
"""

import struct

# ErrorCode values of api/manta.proto.
UNSPECIFIED = 0
NOT_FOUND = 1
BAD_INPUT = 2
LOAD_FAILED = 3
TOO_LARGE = 4
OVERLOADED = 5
DEADLINE_EXCEEDED = 6
INTERNAL = 7

# DType values.
DTYPE_FLOAT64 = 1
DTYPE_FLOAT32 = 2
DTYPE_INT64 = 3

# InputKind values.
INPUT_FEATURES = 1
INPUT_RAW = 2

_HEADER = struct.Struct(">I")
_MASK64 = (1 << 64) - 1


class DecodeError(ValueError):
    """A frame that is not a valid WorkerRequest."""


# --------------------------------------------------------------- decoding

def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _fields(buf):
    """Returns the (field number, wire type, value) of one message.

    value is an int for varint and fixed fields, a memoryview for
    length-delimited ones. One-byte keys and lengths (nearly all of them)
    take a fast path: this runs for every frame.
    """
    out = []
    pos = 0
    n = len(buf)
    while pos < n:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = _varint(buf, pos)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise DecodeError("field number 0")
        if wt == 2:
            if pos < n and buf[pos] < 0x80:
                ln = buf[pos]
                pos += 1
            else:
                ln, pos = _varint(buf, pos)
            if ln > n - pos:
                raise DecodeError("truncated length-delimited field %d" % field)
            out.append((field, 2, buf[pos:pos + ln]))
            pos += ln
        elif wt == 0:
            if pos < n and buf[pos] < 0x80:
                out.append((field, 0, buf[pos]))
                pos += 1
            else:
                val, pos = _varint(buf, pos)
                out.append((field, 0, val))
        elif wt == 1:
            if pos + 8 > n:
                raise DecodeError("truncated fixed64")
            out.append((field, 1, int.from_bytes(buf[pos:pos + 8], "little")))
            pos += 8
        elif wt == 5:
            if pos + 4 > n:
                raise DecodeError("truncated fixed32")
            out.append((field, 5, int.from_bytes(buf[pos:pos + 4], "little")))
            pos += 4
        else:
            raise DecodeError("unsupported wire type %d" % wt)
    return out


def _str(v, wt):
    if wt != 2:
        raise DecodeError("string field with wire type %d" % wt)
    try:
        return bytes(v).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("invalid UTF-8 in string field") from e


def _int64(v):
    return v - (1 << 64) if v >= (1 << 63) else v


def _decode_tensor(buf):
    t = {"dtype": 0, "shape": [], "data": memoryview(b"")}
    for f, wt, v in _fields(buf):
        if f == 1 and wt == 0:
            t["dtype"] = v
        elif f == 2:
            if wt == 0:
                t["shape"].append(_int64(v))
            elif wt == 2:
                pos = 0
                while pos < len(v):
                    x, pos = _varint(v, pos)
                    t["shape"].append(_int64(x))
        elif f == 3 and wt == 2:
            t["data"] = v
    return t


def _decode_load(buf):
    m = {"handle": 0, "model_id": "", "version": "", "format": "", "dir": "",
         "entrypoint": "", "options": {}}
    for f, wt, v in _fields(buf):
        if f == 1 and wt == 0:
            m["handle"] = v
        elif f == 2:
            m["model_id"] = _str(v, wt)
        elif f == 3:
            m["version"] = _str(v, wt)
        elif f == 4:
            m["format"] = _str(v, wt)
        elif f == 5:
            m["dir"] = _str(v, wt)
        elif f == 6:
            m["entrypoint"] = _str(v, wt)
        elif f == 7 and wt == 2:
            key, val = "", ""
            for ef, ewt, ev in _fields(v):
                if ef == 1:
                    key = _str(ev, ewt)
                elif ef == 2:
                    val = _str(ev, ewt)
            m["options"][key] = val
    return m


def _decode_predict(buf):
    m = {"handle": 0, "features": None, "inputs": [], "content_types": []}
    for f, wt, v in _fields(buf):
        if f == 1 and wt == 0:
            m["handle"] = v
        elif f == 2 and wt == 2:
            m["features"] = _decode_tensor(v)
        elif f == 3 and wt == 2:
            m["inputs"].append(v)
        elif f == 4:
            m["content_types"].append(_str(v, wt))
    return m


def _decode_handle(buf):
    m = {"handle": 0}
    for f, wt, v in _fields(buf):
        if f == 1 and wt == 0:
            m["handle"] = v
    return m


def _decode_empty(buf):
    for _ in _fields(buf):
        pass
    return {}


_KINDS = {
    2: ("load", _decode_load),
    3: ("predict", _decode_predict),
    4: ("unload", _decode_handle),
    5: ("stats", _decode_empty),
    6: ("ping", _decode_empty),
    7: ("shutdown", _decode_empty),
}


def decode_request(buf):
    """Decodes a WorkerRequest: returns (id, kind, body dict).

    kind is None when the request holds no known kind.
    """
    buf = memoryview(buf)
    rid, kind, body = 0, None, None
    for f, wt, v in _fields(buf):
        if f == 1 and wt == 0:
            rid = v
        elif f in _KINDS and wt == 2:
            kind, dec = _KINDS[f]
            body = dec(v)
    return rid, kind, body


# --------------------------------------------------------------- encoding

def _uvarint(n):
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(field, wt):
    return _uvarint((field << 3) | wt)


def _enc_int(field, n):
    if not n:
        return b""
    return _key(field, 0) + _uvarint(n & _MASK64)


def _enc_bytes(field, b):
    if not b:
        return b""
    return _key(field, 2) + _uvarint(len(b)) + b


def _enc_str(field, s):
    if not s:
        return b""
    return _enc_bytes(field, s.encode("utf-8"))


def _enc_msg(field, body):
    # A set sub-message is written even when empty.
    return _key(field, 2) + _uvarint(len(body)) + body


def encode_error(code, type_="", message=""):
    return _enc_int(1, code) + _enc_str(2, type_) + _enc_str(3, message)


def encode_tensor(dtype, shape, data):
    packed = b"".join(_uvarint(d & _MASK64) for d in shape)
    return _enc_int(1, dtype) + (_enc_bytes(2, packed) if packed else b"") + _enc_bytes(3, data)


def encode_load_result(rss_before, rss_after, load_nanos, n_features, input_kind,
                       model_class, probabilities):
    return (_enc_int(1, rss_before) + _enc_int(2, rss_after) + _enc_int(3, load_nanos)
            + _enc_int(4, n_features) + _enc_int(5, input_kind) + _enc_str(6, model_class)
            + _enc_int(7, 1 if probabilities else 0))


def encode_predict_result(prediction=None, probabilities=None, outputs=None, row_errors=None):
    """prediction/probabilities are encoded tensors; outputs a list of bytes;
    row_errors a list of encoded WorkerErrors (b"" for a row that succeeded)."""
    parts = []
    if prediction is not None:
        parts.append(_enc_msg(1, prediction))
    if probabilities is not None:
        parts.append(_enc_msg(2, probabilities))
    if outputs:
        k = _key(3, 2)
        for o in outputs:
            parts.append(k + _uvarint(len(o)) + o)
    if row_errors:
        for e in row_errors:
            parts.append(_enc_msg(4, e))
    return b"".join(parts)


def encode_model_stats(handle, model_id, version, load_nanos, memory_bytes, batches, rows, errors):
    return (_enc_int(1, handle) + _enc_str(2, model_id) + _enc_str(3, version)
            + _enc_int(4, load_nanos) + _enc_int(5, memory_bytes) + _enc_int(6, batches)
            + _enc_int(7, rows) + _enc_int(8, errors))


def encode_stats(pid, rss, models):
    return _enc_int(1, pid) + _enc_int(2, rss) + b"".join(_enc_msg(3, m) for m in models)


def encode_pong(pid, python, packages, rss, protocol):
    parts = [_enc_int(1, pid), _enc_str(2, python)]
    for k in sorted(packages):
        parts.append(_enc_msg(3, _enc_str(1, k) + _enc_str(2, packages[k])))
    parts.append(_enc_int(4, rss))
    parts.append(_enc_int(5, protocol))
    return b"".join(parts)


_KIND_FIELDS = {"load": 3, "predict": 4, "stats": 5, "pong": 6}


def encode_response(rid, error=None, kind=None, body=None):
    """Encodes a WorkerResponse. error is an encoded WorkerError (or None);
    kind one of load/predict/stats/pong with its encoded body."""
    parts = [_enc_int(1, rid)]
    if error is not None:
        parts.append(_enc_msg(2, error))
    if kind is not None:
        parts.append(_enc_msg(_KIND_FIELDS[kind], body or b""))
    return b"".join(parts)


def frame(msg):
    return _HEADER.pack(len(msg)) + msg


def read_frame(stream, max_size):
    """Reads one frame from a binary stream; returns None at a clean EOF."""
    hdr = stream.read(4)
    if not hdr:
        return None
    if len(hdr) < 4:
        raise DecodeError("truncated frame header")
    (n,) = _HEADER.unpack(hdr)
    if n > max_size:
        raise DecodeError("frame of %d bytes exceeds the %d byte limit" % (n, max_size))
    body = stream.read(n)
    if len(body) < n:
        raise DecodeError("truncated frame: %d of %d bytes" % (len(body), n))
    return body
