"""The one error hierarchy of pgpt (``kinds``) and the one table that turns any error into a user message
(``messages``); callers import both from here, as ``pgpt.runtime.errors``."""

from pgpt.runtime.errors.kinds import (
    AnswerTooLongError, Cancelled, ConfigError, ContextLengthError, DiskFullError, DiskSpaceError, EngineClosedError,
    FolderPermissionError, HubAccessError, IndexModelMismatchError, IngestLockedError, InvalidRequestError,
    MemoryNeedError, ModelDamagedError, ModelIntegrityError, ModelLoadError, ModelNotFoundError, NotIndexedError,
    OutputExistsError,
    PgptError, ProviderError, QualityError, ReadOnlyError, RemoteCodeError, RequestRefusedError, ServerAuthError,
    ServerBusyError, ServerError, ServerStoppingError, ServerUnreachableError, ServerUsageError, SourceError,
    SourceNotFoundError, StorageError, TemplateError, TensorShapeError, UnsafeWeightsError, UnsupportedModelError,
    UsageError, VersionNotFoundError,
)
from pgpt.runtime.errors.messages import (
    APP_CONTEXT_HINT, INDEX_DAMAGED, INDEX_DAMAGED_HINT, USER_MISTAKES, UserMessage, app_message, http_code,
    http_status, known_titles,
    usage_titles, user_message,
)

__all__ = [
    "AnswerTooLongError", "Cancelled", "ConfigError", "ContextLengthError", "DiskFullError", "DiskSpaceError",
    "EngineClosedError", "FolderPermissionError", "HubAccessError", "IndexModelMismatchError", "IngestLockedError",
    "InvalidRequestError", "MemoryNeedError", "ModelDamagedError", "ModelIntegrityError", "ModelLoadError",
    "ModelNotFoundError", "NotIndexedError",
    "OutputExistsError", "PgptError", "ProviderError", "QualityError", "ReadOnlyError", "RemoteCodeError",
    "RequestRefusedError", "ServerAuthError", "ServerBusyError", "ServerError", "ServerStoppingError",
    "ServerUnreachableError", "ServerUsageError", "SourceError", "SourceNotFoundError", "StorageError", "TemplateError",
    "TensorShapeError", "UnsafeWeightsError", "UnsupportedModelError", "UsageError", "VersionNotFoundError",
    "APP_CONTEXT_HINT", "app_message", "INDEX_DAMAGED", "INDEX_DAMAGED_HINT", "USER_MISTAKES", "UserMessage",
    "http_code", "http_status", "known_titles",
    "usage_titles", "user_message",
]
