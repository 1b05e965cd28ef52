"""Callers' API keys at rest: a pipeline keeps its caller's key (frames go to the gateway as the caller, and
a replica taking the pipeline over needs it too). With ``FLEET_PIPELINES_KEY_SEALING_KEY`` set (a Fernet key
every replica shares, from a Secret) the key is stored encrypted; without it, as it is (development)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from services.common.errors import FailedPrecondition

PREFIX = "fernet:"


class KeySealer:
    def __init__(self, sealing_key: str) -> None:
        self._fernet = Fernet(sealing_key.encode()) if sealing_key else None

    def seal(self, api_key: str) -> str:
        if self._fernet is None:
            return api_key
        return PREFIX + self._fernet.encrypt(api_key.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored
        if self._fernet is None:
            raise FailedPrecondition("a pipeline's key is sealed but this replica has no sealing key")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise FailedPrecondition("a pipeline's key was sealed with another sealing key") from None
