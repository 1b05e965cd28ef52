"""``fleet package``: a model package (model.json + weights) from an exported ONNX file.

``exports`` reads what the export says about itself (inputs, outputs, the exporter's metadata),
``inference`` decides the package from it (layout, classes, size, batch), ``writer`` writes and
verifies the package and can run it once on an image. ``drafted`` reads the exports that carry their own
package draft: those of ``openclip_export`` and ``sam_export`` (OpenCLIP, Segment Anything; torch, the
``reference`` extra, only there and in ``torch_export``).
"""
