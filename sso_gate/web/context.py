"""What the gate publishes to the app in ``scope["sso_gate"]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sso_gate.models import Profile, Session

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["SSOContext", "get_context"]


class SSOContext:
    """Per-request view of the SSO state: ``session`` and ``profile`` are None when anonymous."""

    __slots__ = ("gate", "session")

    def __init__(self, gate: SSOGate, session: Session | None) -> None:
        self.gate = gate
        self.session = session

    @property
    def profile(self) -> Profile | None:
        return None if self.session is None else self.session.profile

    @property
    def authenticated(self) -> bool:
        return self.session is not None

    def __repr__(self) -> str:
        who = self.session.profile.email if self.session else "anonymous"
        return f"SSOContext({who})"


def get_context(scope: dict[str, Any] | Any) -> SSOContext | None:
    ctx = scope.get("sso_gate") if hasattr(scope, "get") else None
    return ctx if isinstance(ctx, SSOContext) else None
