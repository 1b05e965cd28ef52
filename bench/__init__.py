"""Benchmarks: the fleet against in-process ONNX Runtime on the demo detector (``python -m bench``)."""
