"""Training of the demo models (torch, CPU) and their export to ONNX model packages.

    python -m services.demo.train [--task det|seg|cls|all] [--out models/packages]

torch is only needed here (the ``[train]`` extra); nothing outside this package imports it.
"""
