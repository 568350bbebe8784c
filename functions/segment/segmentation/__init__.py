"""The segment function's code, by stage: decode, runtime (ONNX Runtime), postprocess,
render; the job logic (service), tiling, settings and the storage adapter.

A package (not loose modules next to app.py) so that several functions' code can be
imported into one process, as the local runtime and the tests do, without name clashes.
"""
