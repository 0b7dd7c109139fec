"""Entry point: protect the protocol's pipes, then run the worker loop.

Before any other import (numpy, sklearn, model code) the protocol's file
descriptors are duplicated away from 0 and 1: fd 1 and sys.stdout then point
at stderr, and fd 0 at /dev/null, so a model that prints (from Python or C)
or reads stdin cannot corrupt or steal frames.
"""

import os
import sys


def _protect_pipes():
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)
    return proto_in, proto_out


if __name__ == "__main__":
    _in, _out = _protect_pipes()
    from manta_worker.worker import main

    sys.exit(main(_in, _out))
