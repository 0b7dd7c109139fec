"""Manta's Python worker: serves models to the Go supervisor (package pyworker).

Run as ``python3 -m manta_worker``; it speaks the frame protocol of
api/worker.proto on stdin/stdout. This file stays empty of imports so that
__main__ can move stdout out of the way before anything else runs.
"""
