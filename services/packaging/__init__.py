"""``fleet package``: a model package (model.json + weights) from an exported ONNX file.

``exports`` reads what the export says about itself (inputs, outputs, the exporter's metadata),
``inference`` decides the package from it (layout, classes, size, batch), ``writer`` writes and
verifies the package and can run it once on an image.
"""
