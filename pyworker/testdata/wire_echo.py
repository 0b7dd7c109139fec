"""Codec check for wire_test.go: decodes every WorkerRequest frame on stdin
with manta_worker.wire and answers with two frames: a WorkerResponse whose
predict.outputs[0] is the decoded request as JSON, and a WorkerResponse the
Go test expects field for field (every message builder used)."""

import base64
import json
import os
import sys

from manta_worker import wire


def jsonable(msg):
    """A message as a dict of every field (unset sub-messages as None), by
    the generated descriptor: what the worker reads of a request."""
    if msg is None:
        return None
    out = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            out[f.name] = dict(v)
        elif f.label == f.LABEL_REPEATED:
            out[f.name] = [base64.b64encode(x).decode() if isinstance(x, bytes) else x for x in v]
        elif f.message_type is not None:
            out[f.name] = jsonable(v) if msg.HasField(f.name) else None
        elif isinstance(v, bytes):
            out[f.name] = base64.b64encode(v).decode()
        else:
            out[f.name] = v
    return out


def main():
    rin = os.fdopen(0, "rb")
    out = os.fdopen(1, "wb")
    while True:
        body = wire.read_frame(rin, 1 << 20)
        if body is None:
            return
        try:
            rid, kind, req = wire.decode_request(body)
            doc = {"id": rid, "kind": kind, "body": jsonable(req)}
        except wire.DecodeError as e:
            doc = {"error": type(e).__name__}
        echo = wire.response(rid if "id" in doc else 0, kind="predict",
                             body=wire.predict_result(outputs=[json.dumps(doc, sort_keys=True).encode()]))
        out.write(wire.frame(echo))
        full = wire.response(
            2**63 + 5,
            error=wire.error(wire.BAD_INPUT, "ValueError", "bad \u00e9"),
            kind="predict",
            body=wire.predict_result(
                prediction=wire.tensor(wire.DTYPE_FLOAT64, [2, 1], bytes(16)),
                probabilities=wire.tensor(wire.DTYPE_INT64, [2, 3], bytes(48)),
                outputs=[b"{}", b""],
                row_errors=[None, wire.error(wire.INTERNAL, "ZeroDivisionError", "division by zero")],
            ),
        )
        out.write(wire.frame(full))
        for kind, body in (
            ("load", wire.load_result(100, 2**40, 12345, 8, wire.INPUT_RAW, "sklearn.linear_model.LinearRegression", True)),
            ("stats", wire.stats(42, 1 << 30, [wire.model_stats(7, "m", "3", 9, 10, 11, 12, 13)])),
            ("pong", wire.pong(42, "3.11.2", {"numpy": "1.24.2", "sklearn": "1.2.1"}, 123456, 1)),
        ):
            out.write(wire.frame(wire.response(9, kind=kind, body=body)))
        out.flush()


if __name__ == "__main__":
    main()
