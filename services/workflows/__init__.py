"""The workflow engine: Roboflow Workflows JSON definitions (version "1.0") run across the fleet.

Transport-free and inside the gateway: ``definition`` parses and bounds a definition, ``compiler``
checks it (selectors, kinds, cycles, dimensions) into a graph once per content hash, ``executor`` runs
that graph per request (independent steps concurrently; CPU work such as crops and drawing in a thread
pool). Model steps go through ``ModelRunner``, which the gateway binds to ``Gateway.infer_images`` and ``infer_batch``, so
they get ``Infer``'s routing, batching, copies and failover; model loads happen on workers and never
block other runs. Blocks live in ``services.workflows.blocks``, one small module per kind.
"""
