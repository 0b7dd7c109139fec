"""Codec check for wire_test.go: decodes every WorkerRequest frame on stdin
with manta_worker.wire and answers with two frames: a WorkerResponse whose
predict.outputs[0] is the decoded request as JSON, and a WorkerResponse the
Go test expects field for field (every encoder used)."""

import base64
import json
import os
import sys

from manta_worker import wire


def jsonable(v):
    if isinstance(v, memoryview):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


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
            doc = {"error": str(e)}
        echo = wire.encode_response(rid if "id" in doc else 0, kind="predict",
                                    body=wire.encode_predict_result(outputs=[json.dumps(doc, sort_keys=True).encode()]))
        out.write(wire.frame(echo))
        full = wire.encode_response(
            2**63 + 5,
            error=wire.encode_error(wire.BAD_INPUT, "ValueError", "bad \u00e9"),
            kind="predict",
            body=wire.encode_predict_result(
                prediction=wire.encode_tensor(wire.DTYPE_FLOAT64, [2, 1], (1.5).hex().encode()[:0] + bytes(16)),
                probabilities=wire.encode_tensor(wire.DTYPE_INT64, [2, 3], bytes(48)),
                outputs=[b"{}", b""],
                row_errors=[b"", wire.encode_error(wire.INTERNAL, "ZeroDivisionError", "division by zero")],
            ),
        )
        out.write(wire.frame(full))
        for kind, body in (
            ("load", wire.encode_load_result(100, 2**40, 12345, 8, wire.INPUT_RAW, "sklearn.linear_model.LinearRegression", True)),
            ("stats", wire.encode_stats(42, 1 << 30, [wire.encode_model_stats(7, "m", "3", 9, 10, 11, 12, 13)])),
            ("pong", wire.encode_pong(42, "3.11.2", {"numpy": "1.24.2", "sklearn": "1.2.1"}, 123456, 1)),
        ):
            out.write(wire.frame(wire.encode_response(9, kind=kind, body=body)))
        out.flush()


if __name__ == "__main__":
    main()
