from fleet.internal.v1 import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveModelRequest(_message.Message):
    __slots__ = ("model_id", "workspace")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    workspace: str
    def __init__(self, model_id: _Optional[str] = ..., workspace: _Optional[str] = ...) -> None: ...

class ResolveModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("workspace", "page_size", "page_token")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    page_size: int
    page_token: str
    def __init__(self, workspace: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_descriptor_pb2.ModelDescriptor]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RegisterModelRequest(_message.Message):
    __slots__ = ("model", "replace")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    replace: bool
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ..., replace: bool = ...) -> None: ...

class RegisterModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _descriptor_pb2.ModelDescriptor
    def __init__(self, model: _Optional[_Union[_descriptor_pb2.ModelDescriptor, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_id", "workspace")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    workspace: str
    def __init__(self, model_id: _Optional[str] = ..., workspace: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("api_key_sha256",)
    API_KEY_SHA256_FIELD_NUMBER: _ClassVar[int]
    api_key_sha256: str
    def __init__(self, api_key_sha256: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("workspace",)
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    def __init__(self, workspace: _Optional[str] = ...) -> None: ...
