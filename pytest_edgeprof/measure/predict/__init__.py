"""Latency predictions for boards one does not have, per runtime, calibrated on published measurements.

``calibration.py`` reads the latencies measured on real boards (``board_latencies.csv``), ``graph.py``
turns a model into what a runtime runs (every eager op, or TensorRT's fused kernels), ``latency.py``
is the time model and its physical floor, ``fit.py`` fits it per board and runtime with models held
out, and ``predictor.py`` answers ``edgeprof predict`` and ``--emulate`` with the fitted table
(``fitted.json``, written by ``python tools/check_predict.py --write``).
"""
