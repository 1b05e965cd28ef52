"""Who is calling: the identity the edge authenticates once per call and hands to the core."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import PermissionDenied


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. ``key_id`` names the credential (never the secret or its hash)."""

    workspace: str
    key_id: str = ""
    admin: bool = False

    def owns(self, workspace: str) -> bool:
        """May act as the owner of ``workspace``'s models (its own workspace, or any for an admin)."""
        return self.admin or workspace == self.workspace

    def in_workspace(self) -> Caller:
        """This caller, for calls that act in a workspace (run or load its models); the admin token has none."""
        if self.admin:
            raise PermissionDenied("the admin token has no workspace: use a workspace API key for this call")
        return self
