"""The worker protocol's messages (api/worker.proto) and its frames.

The messages are protoc's generated code (worker_pb2.py, manta_pb2.py:
`make proto` regenerates them from the .proto files the Go side is
generated from), run by Debian's python3-protobuf. Its C++ implementation
decodes and encodes a batch frame faster than the hand-written codec this
replaced (pyworker/doc.go has the measurement). This module builds the
response messages the worker sends and does the framing: a uint32
big-endian length, then the message.

decode_request returns the request's kind and its body, a generated
message (WorkerLoad, WorkerPredict, ...); the builders (load_result,
predict_result, stats, pong) return a WorkerResponse holding that kind,
and response sets its id and error and encodes it.
"""

import struct

from google.protobuf.message import DecodeError as _PBDecodeError

from manta_worker import manta_pb2, worker_pb2 as pb

# ErrorCode values of api/manta.proto.
UNSPECIFIED = manta_pb2.ERROR_CODE_UNSPECIFIED
NOT_FOUND = manta_pb2.ERROR_CODE_NOT_FOUND
BAD_INPUT = manta_pb2.ERROR_CODE_BAD_INPUT
LOAD_FAILED = manta_pb2.ERROR_CODE_LOAD_FAILED
TOO_LARGE = manta_pb2.ERROR_CODE_TOO_LARGE
OVERLOADED = manta_pb2.ERROR_CODE_OVERLOADED
DEADLINE_EXCEEDED = manta_pb2.ERROR_CODE_DEADLINE_EXCEEDED
INTERNAL = manta_pb2.ERROR_CODE_INTERNAL

DTYPE_FLOAT64 = pb.DTYPE_FLOAT64
DTYPE_FLOAT32 = pb.DTYPE_FLOAT32
DTYPE_INT64 = pb.DTYPE_INT64

INPUT_FEATURES = pb.INPUT_KIND_FEATURES
INPUT_RAW = pb.INPUT_KIND_RAW

_HEADER = struct.Struct(">I")


class DecodeError(ValueError):
    """A frame that is not a valid WorkerRequest."""


def decode_request(buf):
    """Decodes a WorkerRequest: returns (id, kind, body).

    kind is the name of the request's oneof field (load, predict, unload,
    stats, ping, shutdown) and body that message; both are None when the
    request holds no kind this worker knows.
    """
    req = pb.WorkerRequest()
    try:
        req.ParseFromString(buf)
    except _PBDecodeError as e:
        raise DecodeError("invalid WorkerRequest: %s" % e) from e
    kind = req.WhichOneof("kind")
    return req.id, kind, (getattr(req, kind) if kind else None)


def error(code, type_="", message=""):
    return pb.WorkerError(code=code, type=type_, message=message)


def tensor(dtype, shape, data):
    """A Tensor's fields, written into the response by predict_result (no
    intermediate message to copy)."""
    return dtype, shape, data


def _set_tensor(t, fields):
    t.dtype, shape, t.data = fields
    t.shape.extend(shape)


# The builders below return a WorkerResponse holding their kind, which
# response completes (id, error) and encodes: the body is written once,
# where it is sent from, never copied between messages (CopyFrom of a
# batch's result cost more than the hand-written codec it replaced).

def load_result(rss_before, rss_after, load_nanos, n_features, input_kind, model_class, probabilities):
    return pb.WorkerResponse(load=pb.WorkerLoadResult(
        rss_before=rss_before, rss_after=rss_after, load_nanos=load_nanos, n_features=n_features,
        input_kind=input_kind, model_class=model_class, probabilities=bool(probabilities)))


def predict_result(prediction=None, probabilities=None, outputs=None, row_errors=None):
    """prediction/probabilities are tensor()s; outputs a list of bytes;
    row_errors a list of WorkerErrors, None for a row that succeeded."""
    r = pb.WorkerResponse()
    p = r.predict
    p.SetInParent()
    if prediction is not None:
        _set_tensor(p.prediction, prediction)
    if probabilities is not None:
        _set_tensor(p.probabilities, probabilities)
    if outputs:
        p.outputs.extend(outputs)
    if row_errors:
        for e in row_errors:
            if e is None:
                p.row_errors.add()
            else:
                p.row_errors.append(e)
    return r


def model_stats(handle, model_id, version, load_nanos, memory_bytes, batches, rows, errors):
    return pb.WorkerModelStats(handle=handle, model_id=model_id, version=version, load_nanos=load_nanos,
                               memory_bytes=memory_bytes, batches=batches, rows=rows, errors=errors)


def stats(pid, rss, models):
    return pb.WorkerResponse(stats=pb.WorkerStats(pid=pid, rss=rss, models=models))


def pong(pid, python, packages, rss, protocol):
    return pb.WorkerResponse(pong=pb.WorkerPong(pid=pid, python=python, packages=packages, rss=rss, protocol=protocol))


def response(rid, error=None, kind=None, body=None):
    """Encodes a WorkerResponse: body is what a builder above returned (or
    None: no kind, or an empty one of kind); error a WorkerError (or None)."""
    r = body if body is not None else pb.WorkerResponse()
    r.id = rid
    if kind is not None and body is None:
        getattr(r, kind).SetInParent()
    if error is not None:
        r.error.CopyFrom(error)
    return r.SerializeToString()


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
