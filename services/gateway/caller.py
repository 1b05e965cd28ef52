"""Who is calling: the identity the edge authenticates once per call and hands to the core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. ``key_id`` names the credential (never the secret or its hash)."""

    workspace: str
    key_id: str = ""
    admin: bool = False

    def owns(self, workspace: str) -> bool:
        """May act as the owner of ``workspace``'s models (its own workspace, or any for an admin)."""
        return self.admin or workspace == self.workspace
