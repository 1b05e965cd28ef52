"""OIP protobuf messages <-> the data plane's tensors and parameters (package ``inference``)."""

from __future__ import annotations

import numpy as np

from fleet_oip.v2 import grpc_service_pb2 as pb
from services.common.errors import InvalidArgument
from services.gateway.oip.dataplane import InferResult, ModelMetadata, Scalar
from services.gateway.oip.tensors import NUMPY_TYPES, Tensor, TensorSpec


def unpack_bytes(buf: bytes) -> list[bytes]:
    """BYTES tensor data on the wire: each element a 4-byte little-endian length, then its bytes."""
    items, i, n, view = [], 0, len(buf), memoryview(buf)
    while i < n:
        if i + 4 > n:
            raise InvalidArgument("BYTES tensor data is truncated (an element's 4-byte length is cut short)")
        length = int.from_bytes(view[i:i + 4], "little")
        i += 4
        if i + length > n:
            raise InvalidArgument(f"BYTES tensor data is truncated (an element of {length} bytes is cut short)")
        items.append(bytes(view[i:i + length]))
        i += length
    return items


def pack_bytes(items: list[bytes]) -> bytes:
    return b"".join(len(item).to_bytes(4, "little") + item for item in items)


def parameters(params: object) -> dict[str, object]:
    """A map<string, InferParameter> as plain values."""
    out: dict[str, object] = {}
    for key, value in params.items():  # type: ignore[attr-defined]
        kind = value.WhichOneof("parameter_choice")
        if kind is not None:
            out[key] = getattr(value, kind)
    return out


def _set_parameter(target: pb.InferParameter, value: Scalar) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    else:
        target.string_param = str(value)


def _fill(params: object, values: dict[str, Scalar]) -> None:
    for key, value in values.items():
        _set_parameter(params[key], value)  # type: ignore[index]


def _numeric(datatype: str, raw: bytes | None, contents: pb.InferTensorContents) -> np.ndarray:
    dtype = NUMPY_TYPES.get(datatype)
    if dtype is None:
        raise InvalidArgument(f"input datatype {datatype!r} is not supported here; send BYTES or UINT8")
    if raw is not None:
        if len(raw) % np.dtype(dtype).itemsize:
            raise InvalidArgument(f"raw {datatype} input of {len(raw)} bytes is not a whole number of elements")
        return np.frombuffer(raw, dtype=dtype)
    values = contents.uint_contents if datatype == "UINT8" else []
    array = np.asarray(values, dtype=np.int64)
    if array.size and (array.min() < 0 or array.max() > 255):
        raise InvalidArgument("UINT8 input values must lie between 0 and 255")
    return array.astype(dtype)


def inputs(request: pb.ModelInferRequest) -> list[Tensor]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    tensors = []
    for index, tensor in enumerate(request.inputs):
        data_raw = raw[index] if raw else None
        if tensor.datatype == "BYTES":
            data: np.ndarray | list[bytes] = (unpack_bytes(data_raw) if data_raw is not None
                                              else list(tensor.contents.bytes_contents))
        else:
            data = _numeric(tensor.datatype, data_raw, tensor.contents)
        tensors.append(Tensor(tensor.name, tensor.datatype, list(tensor.shape), data))
    return tensors


def infer_response(result: InferResult) -> pb.ModelInferResponse:
    """Outputs as Triton answers them: shapes in ``outputs``, data in ``raw_output_contents``."""
    response = pb.ModelInferResponse(model_name=result.model_name, model_version=result.model_version, id=result.id)
    _fill(response.parameters, result.parameters)
    for tensor in result.outputs:
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if tensor.datatype == "BYTES":
            response.raw_output_contents.append(pack_bytes(tensor.data))  # type: ignore[arg-type]
        else:
            response.raw_output_contents.append(np.ascontiguousarray(tensor.data).tobytes())  # type: ignore[arg-type]
    return response


def _tensor_metadata(spec: TensorSpec, values: dict[str, Scalar] | None = None) -> pb.ModelMetadataResponse.TensorMetadata:
    meta = pb.ModelMetadataResponse.TensorMetadata(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))
    _fill(meta.parameters, values or {})
    return meta


def metadata_response(meta: ModelMetadata) -> pb.ModelMetadataResponse:
    response = pb.ModelMetadataResponse(
        name=meta.name, versions=meta.versions, platform=meta.platform,
        inputs=[_tensor_metadata(s, meta.input_parameters) for s in meta.inputs],
        outputs=[_tensor_metadata(s) for s in meta.outputs],
    )
    _fill(response.parameters, meta.parameters)
    return response
