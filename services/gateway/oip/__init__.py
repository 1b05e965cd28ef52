"""The Open Inference Protocol (KServe v2 / Triton) edge: tensors, data plane and the gRPC servicer."""
