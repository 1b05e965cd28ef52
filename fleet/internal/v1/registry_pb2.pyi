from fleet.internal.v1 import descriptor_pb2 as _descriptor_pb2
from fleet.v1 import admin_pb2 as _admin_pb2
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

class AuthenticateRequest(_message.Message):
    __slots__ = ("api_key_sha256",)
    API_KEY_SHA256_FIELD_NUMBER: _ClassVar[int]
    api_key_sha256: str
    def __init__(self, api_key_sha256: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("workspace", "key_id", "admin")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    key_id: str
    admin: bool
    def __init__(self, workspace: _Optional[str] = ..., key_id: _Optional[str] = ..., admin: bool = ...) -> None: ...

class RegistryAdminServiceApplyCatalogRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.ApplyCatalogRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.ApplyCatalogRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceApplyCatalogResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.ApplyCatalogResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.ApplyCatalogResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceRegisterModelRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.RegisterModelRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.RegisterModelRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceRegisterModelResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.RegisterModelResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.RegisterModelResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceDeleteModelRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.DeleteModelRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.DeleteModelRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceDeleteModelResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.DeleteModelResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.DeleteModelResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceListModelsRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.ListModelsRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.ListModelsRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceListModelsResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.ListModelsResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.ListModelsResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceSetAliasRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.SetAliasRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.SetAliasRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceSetAliasResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.SetAliasResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.SetAliasResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceDeleteAliasRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.DeleteAliasRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.DeleteAliasRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceDeleteAliasResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.DeleteAliasResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.DeleteAliasResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceCreateApiKeyRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.CreateApiKeyRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.CreateApiKeyRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceCreateApiKeyResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.CreateApiKeyResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.CreateApiKeyResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceListApiKeysRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.ListApiKeysRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.ListApiKeysRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceListApiKeysResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.ListApiKeysResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.ListApiKeysResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceRevokeApiKeyRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.RevokeApiKeyRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.RevokeApiKeyRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceRevokeApiKeyResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.RevokeApiKeyResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.RevokeApiKeyResponse, _Mapping]] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("workspace", "owner", "workflow_id", "version_id")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    owner: str
    workflow_id: str
    version_id: str
    def __init__(self, workspace: _Optional[str] = ..., owner: _Optional[str] = ..., workflow_id: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("definition_json", "version_id")
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    definition_json: str
    version_id: str
    def __init__(self, definition_json: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class RegistryAdminServicePutWorkflowRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.PutWorkflowRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.PutWorkflowRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServicePutWorkflowResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.PutWorkflowResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.PutWorkflowResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceListWorkflowsRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.ListWorkflowsRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.ListWorkflowsRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceListWorkflowsResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.ListWorkflowsResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.ListWorkflowsResponse, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceDeleteWorkflowRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _admin_pb2.DeleteWorkflowRequest
    def __init__(self, request: _Optional[_Union[_admin_pb2.DeleteWorkflowRequest, _Mapping]] = ...) -> None: ...

class RegistryAdminServiceDeleteWorkflowResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _admin_pb2.DeleteWorkflowResponse
    def __init__(self, response: _Optional[_Union[_admin_pb2.DeleteWorkflowResponse, _Mapping]] = ...) -> None: ...
